-- Scenario "decap", single router (setup A): LM-encapsulated UDP from the peer AR into the
-- router's core port (pktgen port 1, playing the peer AR and the core next hop); the router
-- delivers the inner packets to the local MOs on its access port (pktgen port 0).
--
--   pktgen -l 0-4 -a <port0> -a <port1> -- -P -m "[1:2].0,[3:4].1" \
--          -s 1:pcaps/decap-4in4-64B-250-uniform.pcap -f pktgen/decap.lua
-- Settings: lm.lua (LM_DURATION, LM_WARMUP, LM_RATE, LM_QUIT).

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local lm = dofile(here .. "lm.lua")

lm.use_pcaps({ 1 })
lm.measure({ label = "decap", tx = { 1 }, rx = { 0 } })
