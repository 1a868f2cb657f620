-- Migration storm: traffic to a hot set of MOs while migration-storm.sh (next to pcaps/) moves them.
--
-- Single router (setup A): decap traffic with a hot set on port 1 (the Zipf pcaps: MO 0 is the
-- hottest) and encap traffic on port 0; the storm holds and releases the hot MOs' packets:
--   LM_STORM="./migration-storm.sh --old dut --hot 32 --duration 20 >storm.log 2>&1" \
--   pktgen ... -s 0:pcaps/encap-v4-64B-250-uniform.pcap -s 1:pcaps/decap-4in4-64B-250-zipf.pcap \
--          -f pktgen/migration.lua
-- Router pair (setup B): encap pcap on port 0 (ar1), a return Zipf pcap on port 1 (ar2, toward
-- the local MOs); the storm moves the hot MOs between ar1 and ar2:
--   LM_STORM="./migration-storm.sh --old ar1 --new ar2 --hot 32 --duration 20 >storm.log 2>&1" \
--   pktgen ... -s 0:pcaps/encap-v4-64B-250-uniform.pcap -s 1:pcaps/return-v4-64B-250-zipf.pcap \
--          -f pktgen/migration.lua
-- LM_STORM is started in the background right after the warm-up (leave it unset to run the storm
-- by hand). The per-second lines show what the moves cost; the router counts the rest
-- (lmctl handover, lmctl stats: handover_held / handover_released / handover_forwarded,
-- lmctl drops: hold_full, hold_timeout, lm_unknown_mo).
-- Settings: lm.lua (LM_DURATION, LM_WARMUP, LM_RATE, LM_QUIT).

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local lm = dofile(here .. "lm.lua")

local storm = lm.env("LM_STORM", nil)
lm.use_pcaps({ 0, 1 })
lm.measure({
    label = "migration storm", tx = { 0, 1 }, rx = { 0, 1 },
    before_clear = function()
        if storm then
            lm.say("[lm] starting the storm: %s", storm)
            os.execute(storm .. " &")
        else
            lm.say("[lm] LM_STORM is not set: start migration-storm.sh now")
        end
    end,
})
