-- A stand-in for pktgen-dpdk's Lua API, to run the scenario scripts without pktgen and NICs:
--
--   LM_DURATION=3 lua5.4 test/scenarios/pktgen_stub.lua pktgen-scenarios/pktgen/decap.lua
--
-- Each pktgen.* function checks its arguments the way lpktgenlib.c does (count, port lists,
-- keywords, addresses), so a script calling something pktgen would refuse fails here. Sending
-- ports move 1,000 packets per simulated millisecond to the other port of the pair (0 <-> 1):
-- a lossless "router". At the end the stub prints what the script did, one "STUB key value"
-- line each, for check_scenarios.py to judge; it exits non-zero when the script left a port
-- sending or sent from a port with nothing to send.
--
-- Environment: LM_STUB_PCAPS = ports started with -s P:FILE (default "0,1"); the scripts' own
-- LM_* settings pass through.

local NPORTS = 2
local script = arg[1] or error("usage: lua5.4 pktgen_stub.lua SCRIPT")

local state = { clock = 0, started = {}, pcap = {}, range = {}, ranges = {}, rate = {}, size = {}, cmds = {} }
local ports = {}
for p = 0, NPORTS - 1 do ports[p] = { tx = 0, rx = 0, sending = false } end
local pcap_loaded = {}
for p in string.gmatch(os.getenv("LM_STUB_PCAPS") or "0,1", "%d+") do pcap_loaded[tonumber(p)] = true end

local function fail(fmt, ...) error(string.format(fmt, ...), 3) end

local function nargs(name, want, ...)
    local n = select("#", ...)
    if n ~= want then fail("pktgen.%s: wrong number of arguments (%d, pktgen takes %d)", name, n, want) end
end

local function portlist(name, s)
    if type(s) ~= "string" then fail("pktgen.%s: the port list must be a string, got %s", name, type(s)) end
    if s == "all" then
        local t = {}
        for p = 0, NPORTS - 1 do t[#t + 1] = p end
        return t
    end
    local t = {}
    for item in string.gmatch(s, "[^,]+") do
        local a, b = string.match(item, "^(%d+)%-(%d+)$")
        if a then
            for p = tonumber(a), tonumber(b) do t[#t + 1] = p end
        elseif string.match(item, "^%d+$") then
            t[#t + 1] = tonumber(item)
        else
            fail("pktgen.%s: bad port list '%s'", name, s)
        end
    end
    for _, p in ipairs(t) do
        if p >= NPORTS then fail("pktgen.%s: port %d does not exist", name, p) end
    end
    return t
end

local function oneof(name, v, allowed)
    for _, a in ipairs(allowed) do
        if v == a then return v end
    end
    fail("pktgen.%s: '%s' is not one of %s", name, tostring(v), table.concat(allowed, "|"))
end

local function ipv4(name, s)
    local a, b, c, d = string.match(tostring(s), "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a or tonumber(a) > 255 or tonumber(b) > 255 or tonumber(c) > 255 or tonumber(d) > 255 then
        fail("pktgen.%s: '%s' is not an IPv4 address", name, tostring(s))
    end
    return s
end

local function mac(name, s)
    if not string.match(tostring(s), "^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$") then
        fail("pktgen.%s: '%s' is not a MAC address", name, tostring(s))
    end
    return s
end

local function note(fmt, ...) state.cmds[#state.cmds + 1] = string.format(fmt, ...) end

pktgen = {}

function pktgen.set(...)
    nargs("set", 3, ...)
    local pl, what, v = ...
    oneof("set", what, { "count", "size", "rate", "burst", "sport", "dport", "ttl", "prime" })
    if type(v) ~= "number" then fail("pktgen.set: the value must be a number") end
    for _, p in ipairs(portlist("set", pl)) do
        if what == "rate" then
            if v <= 0 or v > 100 then fail("pktgen.set: rate %s is not a percentage", v) end
            state.rate[p] = v
        elseif what == "size" then
            if v < 64 or v > 9618 then fail("pktgen.set: size %d", v) end
            state.size[p] = v
        end
    end
end

function pktgen.set_mac(...)
    nargs("set_mac", 3, ...)
    local pl, which, m = ...
    portlist("set_mac", pl)
    oneof("set_mac", which, { "src", "dst" })
    note("set_mac %s %s %s", pl, which, mac("set_mac", m))
end

function pktgen.set_type(...)
    nargs("set_type", 2, ...)
    local pl, t = ...
    portlist("set_type", pl)
    oneof("set_type", t, { "ipv4", "ipv6", "vlan", "arp" })
end

function pktgen.set_proto(...)
    nargs("set_proto", 2, ...)
    local pl, t = ...
    portlist("set_proto", pl)
    oneof("set_proto", t, { "udp", "tcp", "icmp" })
end

function pktgen.pcap(...)
    nargs("pcap", 2, ...)
    local pl, onoff = ...
    oneof("pcap", onoff, { "on", "off", "enable", "disable" })
    for _, p in ipairs(portlist("pcap", pl)) do
        if not pcap_loaded[p] then fail("pktgen.pcap: no pcap was loaded on port %d (-s %d:FILE)", p, p) end
        state.pcap[p] = (onoff == "on" or onoff == "enable")
    end
end

function pktgen.set_range(...)
    nargs("set_range", 2, ...)
    local pl, onoff = ...
    oneof("set_range", onoff, { "on", "off", "enable", "disable" })
    for _, p in ipairs(portlist("set_range", pl)) do state.range[p] = (onoff == "on" or onoff == "enable") end
end

local function range_fn(field, check)
    return function(...)
        nargs("range." .. field, 3, ...)
        local pl, smmi, v = ...
        oneof("range." .. field, smmi, { "start", "min", "max", "inc" })
        check("range." .. field, v)
        for _, p in ipairs(portlist("range." .. field, pl)) do
            state.ranges[string.format("%d %s %s", p, field, smmi)] = tostring(v)
        end
    end
end

local function number(name, v)
    if type(v) ~= "number" then fail("pktgen.%s: '%s' is not a number", name, tostring(v)) end
end

pktgen.range = {
    dst_ip = range_fn("dst_ip", ipv4), src_ip = range_fn("src_ip", ipv4),
    dst_mac = range_fn("dst_mac", mac), src_mac = range_fn("src_mac", mac),
    dst_port = range_fn("dst_port", number), src_port = range_fn("src_port", number),
    ttl = range_fn("ttl", number), pkt_size = range_fn("pkt_size", number),
}

function pktgen.range.ip_proto(...)
    nargs("range.ip_proto", 2, ...)
    local pl, proto = ...
    portlist("range.ip_proto", pl)
    oneof("range.ip_proto", proto, { "udp", "tcp" })
end

function pktgen.start(...)
    nargs("start", 1, ...)
    for _, p in ipairs(portlist("start", ...)) do
        if not (state.pcap[p] or state.range[p]) then
            io.stderr:write(string.format("stub: port %d started in single-packet mode (no pcap, no range)\n", p))
            os.exit(3)
        end
        ports[p].sending = true
        state.started[p] = true
    end
end

function pktgen.stop(...)
    nargs("stop", 1, ...)
    for _, p in ipairs(portlist("stop", ...)) do ports[p].sending = false end
end

function pktgen.delay(...)
    nargs("delay", 1, ...)
    local ms = ...
    number("delay", ms)
    state.clock = state.clock + ms
    for p = 0, NPORTS - 1 do
        if ports[p].sending then
            local n = math.floor(1000 * ms * (state.rate[p] or 100) / 100)
            ports[p].tx = ports[p].tx + n
            ports[1 - p].rx = ports[1 - p].rx + n
        end
    end
end

function pktgen.clr(...)
    nargs("clr", 0, ...)
    -- pktgen clears its displayed counters; the scripts work on differences, so keep counting
end

function pktgen.quit(...)
    nargs("quit", 0, ...)
    state.quit = true
end

function pktgen.portStats(...)
    nargs("portStats", 2, ...)
    local pl, kind = ...
    oneof("portStats", kind, { "port", "rate" })
    local t, n = {}, 0
    for _, p in ipairs(portlist("portStats", pl)) do
        t[p] = { ipackets = ports[p].rx, opackets = ports[p].tx, ibytes = 64 * ports[p].rx, obytes = 64 * ports[p].tx,
                 ierrors = 0, oerrors = 0, rx_nombuf = 0, imissed = 0 }
        n = n + 1
    end
    t.n = n
    return t
end

-- The storm is started with os.execute: record it, run nothing.
os.execute = function(cmd)
    note("os.execute %s", cmd)
    return true
end

dofile(script)

local bad = false
for p = 0, NPORTS - 1 do
    if ports[p].sending then
        io.stderr:write(string.format("stub: port %d still sending at the end\n", p))
        bad = true
    end
end
local function keys(t)
    local out = {}
    for k, v in pairs(t) do
        if v then out[#out + 1] = tostring(k) end
    end
    table.sort(out)
    return table.concat(out, ",")
end
print("STUB started " .. keys(state.started))
print("STUB pcap " .. keys(state.pcap))
print("STUB range " .. keys(state.range))
print("STUB clock_ms " .. state.clock)
local rk = {}
for k in pairs(state.ranges) do rk[#rk + 1] = k end
table.sort(rk)
for _, k in ipairs(rk) do print("STUB range_value " .. k .. " " .. state.ranges[k]) end
for _, c in ipairs(state.cmds) do print("STUB cmd " .. c) end
if bad then os.exit(4) end
