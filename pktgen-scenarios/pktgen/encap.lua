-- Scenario "encap", single router (setup A): plain UDP from the local MOs to the remote MOs
-- into the router's access port (pktgen port 0); it comes back encapsulated on port 1.
--
-- pcap mode (default): replay one of the encap pcaps
--   pktgen -l 0-4 -a <port0> -a <port1> -- -P -m "[1:2].0,[3:4].1" \
--          -s 0:pcaps/encap-v6-78B-1k-zipf.pcap -f pktgen/encap.lua
-- range mode (IPv4 only, no pcap): pktgen builds the packets, any size, LM_EIDS remote MOs
--   LM_MODE=range LM_SIZE=128 LM_EIDS=250 pktgen ... -f pktgen/encap.lua
-- Other settings: lm.lua (LM_DURATION, LM_WARMUP, LM_RATE, LM_QUIT).

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local lm = dofile(here .. "lm.lua")

if lm.env("LM_MODE", "pcap") == "range" then
    local n = lm.num("LM_EIDS", lm.plan.v4_max)
    local size = lm.num("LM_SIZE", 64)
    if n < 1 or n > lm.plan.v4_max then
        error("LM_EIDS: 1.." .. lm.plan.v4_max .. " (IPv4 remote MOs; use a v6 pcap or TRex for more)")
    end
    if size < 64 or size > 1518 then error("LM_SIZE: 64..1518 (frame size with FCS)") end
    -- Local MO i sends to remote MO i, i = 0..n-1 round robin: addresses step together.
    pktgen.set_type("0", "ipv4")
    pktgen.set_proto("0", "udp")
    pktgen.set("0", "size", size)
    pktgen.set_mac("0", "dst", lm.plan.gateway_mac)
    pktgen.range.ip_proto("0", "udp")
    pktgen.range.dst_mac("0", "start", lm.plan.gateway_mac)
    for _, w in ipairs({ { pktgen.range.dst_ip, lm.plan.remote_v4 }, { pktgen.range.src_ip, lm.plan.local_v4 } }) do
        local set, addr = w[1], w[2]
        set("0", "start", addr(0))
        set("0", "min", addr(0))
        set("0", "max", addr(n - 1))
        set("0", "inc", "0.0.0.1")
    end
    for _, w in ipairs({ { pktgen.range.src_port, lm.plan.src_port }, { pktgen.range.dst_port, lm.plan.dst_port },
                         { pktgen.range.ttl, 64 }, { pktgen.range.pkt_size, size } }) do
        local set, v = w[1], w[2]
        set("0", "start", v)
        set("0", "min", v)
        set("0", "max", v)
        set("0", "inc", 0)
    end
    pktgen.set_range("0", "on")
else
    lm.use_pcaps({ 0 })
end

lm.measure({ label = "encap", tx = { 0 }, rx = { 1 } })
