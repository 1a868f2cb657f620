-- Scenario "miss storm", single router (setup A): plain UDP into the access port (port 0) toward
-- EIDs nobody publishes, so every packet misses the cache and asks the control lcore.
--
--   pure storm: nothing comes out; read the router's drops (unresolved, pending_full):
--     pktgen ... -s 0:pcaps/miss-v6-78B-4k-uniform.pcap -f pktgen/miss.lua
--   half hits (mix50): the hits come out on port 1 while the misses storm:
--     pktgen ... -s 0:pcaps/miss-v6-78B-2k-mix50.pcap -f pktgen/miss.lua
--   with decap traffic on port 1 (LM_WITH_DECAP=1): does the storm slow the other direction?
--     LM_WITH_DECAP=1 pktgen ... -s 0:pcaps/miss-v4-64B-126-uniform.pcap \
--          -s 1:pcaps/decap-4in4-64B-250-uniform.pcap -f pktgen/miss.lua
-- Settings: lm.lua (LM_DURATION, LM_WARMUP, LM_RATE, LM_QUIT).

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local lm = dofile(here .. "lm.lua")

if lm.env("LM_WITH_DECAP", "0") == "1" then
    lm.use_pcaps({ 0, 1 })
    lm.measure({ label = "miss storm + decap", tx = { 0, 1 }, rx = { 0, 1 } })
else
    lm.use_pcaps({ 0 })
    lm.measure({ label = "miss storm", tx = { 0 }, rx = { 1 } })
end
lm.say("[lm] misses are dropped by design: 'lost' counts them; compare lmctl drops (unresolved, pending_full)")
