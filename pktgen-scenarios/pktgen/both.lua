-- Scenario "both ways": pcaps replayed on ports 0 and 1 at once, every received packet counted.
--
-- Single router (setup A): an encap pcap on port 0 (access side), a decap pcap on port 1 (core):
--   pktgen ... -- -P -m "[1:2].0,[3:4].1" -s 0:pcaps/encap-v4-64B-250-uniform.pcap \
--          -s 1:pcaps/decap-4in4-64B-250-uniform.pcap -f pktgen/both.lua
-- Router pair (setup B): an encap pcap on port 0 (ar1's access), a return pcap on port 1
-- (ar2's access): port 0 -> ar1 -> ar2 -> port 1 and back, the whole tunnel both ways:
--   pktgen ... -s 0:pcaps/encap-v4-64B-250-uniform.pcap -s 1:pcaps/return-v4-64B-250-uniform.pcap \
--          -f pktgen/both.lua
-- Settings: lm.lua (LM_DURATION, LM_WARMUP, LM_RATE, LM_QUIT); in setup B give the LM directory
-- a longer warm-up (LM_WARMUP=10) so the first packets' lookups are done before measuring.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local lm = dofile(here .. "lm.lua")

lm.use_pcaps({ 0, 1 })
lm.measure({ label = "both ways", tx = { 0, 1 }, rx = { 0, 1 } })
