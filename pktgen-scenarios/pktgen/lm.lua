-- lm.lua: what the LM Router pktgen scripts share (they load it with dofile; run none by itself).
--
-- A scenario script configures its ports, then calls lm.measure{tx = {...}, rx = {...}}: clear
-- the counters, start the tx ports, print one line per second (packets/s sent and received per
-- port, and the NIC's rx drop counters), stop, wait for the last packets, print a summary:
-- sent, received, lost (and %), average rates.
--
-- Settings come from the environment (pktgen scripts take no arguments):
--   LM_DURATION  seconds of measurement (default 30)
--   LM_WARMUP    seconds of traffic before the counters are cleared (default 2): lets the router
--                fill its caches, and the DHT resolve in the router pair
--   LM_RATE      tx rate in % of line rate, each tx port (default 100)
--   LM_QUIT      1: quit pktgen at the end (batch runs)
-- Written for the pktgen Lua API of pktgen-dpdk 21.x to 24.x (pktgen.set, pktgen.portStats, ...);
-- Lua 5.3 or later.

local lm = {}

local function say(fmt, ...)
    print(string.format(fmt, ...))
end
lm.say = say

function lm.env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    return v
end

function lm.num(name, default)
    local v = lm.env(name, nil)
    if v == nil then return default end
    local n = tonumber(v)
    if n == nil then error(name .. " must be a number, not '" .. v .. "'") end
    return n
end

-- The addressing plan (pktgen-scenarios/lmplan.py, README.md), as far as the scripts need it.
lm.plan = {
    gateway_mac = "02:00:5e:00:00:01",   -- destination of everything sent into an access port
    dut_core_mac = "02:00:00:00:01:01",  -- destination of everything sent into the core port
    local_v4 = function(i) return "192.0.2." .. (1 + i) end,      -- local MO i, i < 250
    remote_v4 = function(i) return "203.0.113." .. (1 + i) end,   -- remote MO i, i < 250
    v4_max = 250,
    dst_port = 9,
    src_port = 1024,
}

local function portlist(ports)
    local s = {}
    for _, p in ipairs(ports) do s[#s + 1] = tostring(p) end
    return table.concat(s, ",")
end
lm.portlist = portlist

-- Replay the pcaps pktgen was started with (-s P:FILE) on these ports.
function lm.use_pcaps(ports)
    pktgen.pcap(portlist(ports), "on")
end

local function snapshot(ports)
    local st = pktgen.portStats(portlist(ports), "port")
    local out = {}
    for _, p in ipairs(ports) do
        local s = st[p]
        out[p] = { tx = s.opackets, rx = s.ipackets, txb = s.obytes, rxb = s.ibytes,
                   missed = (s.imissed or 0) + (s.rx_nombuf or 0) + (s.ierrors or 0) }
    end
    return out
end

local function union(a, b)
    local seen, out = {}, {}
    for _, l in ipairs({ a, b }) do
        for _, p in ipairs(l) do
            if not seen[p] then seen[p] = true; out[#out + 1] = p end
        end
    end
    table.sort(out)
    return out
end

local function mpps(n, secs)
    if secs <= 0 then return 0 end
    return n / secs / 1e6
end

-- opts: tx = ports that send, rx = ports whose received packets are the router's output,
-- label = scenario name, before_clear = function run after the warm-up (e.g. start the storm).
function lm.measure(opts)
    local duration = lm.num("LM_DURATION", 30)
    local warmup = lm.num("LM_WARMUP", 2)
    local rate = lm.num("LM_RATE", 100)
    local all = union(opts.tx, opts.rx)
    local tx = portlist(opts.tx)

    pktgen.set(tx, "rate", rate)
    pktgen.clr()
    say("[lm] %s: tx ports %s, rx ports %s, rate %s%%, warm-up %ss, %ss measured",
           opts.label, tx, portlist(opts.rx), rate, warmup, duration)
    pktgen.start(tx)
    if warmup > 0 then pktgen.delay(warmup * 1000) end
    if opts.before_clear then opts.before_clear() end
    pktgen.clr()

    local first = snapshot(all)
    local prev = first
    for t = 1, duration do
        pktgen.delay(1000)
        local now = snapshot(all)
        local line = string.format("[lm] t=%3ds", t)
        for _, p in ipairs(all) do
            line = line .. string.format("  p%d tx %7.3f rx %7.3f Mpps drop %d", p,
                                         mpps(now[p].tx - prev[p].tx, 1), mpps(now[p].rx - prev[p].rx, 1),
                                         now[p].missed - prev[p].missed)
        end
        print(line)
        prev = now
    end
    pktgen.stop(tx)
    pktgen.delay(500)   -- packets still in the router and on the wire
    local last = snapshot(all)

    local sent, got, nic = 0, 0, 0
    for _, p in ipairs(opts.tx) do sent = sent + last[p].tx - first[p].tx end
    for _, p in ipairs(opts.rx) do
        got = got + last[p].rx - first[p].rx
        nic = nic + last[p].missed - first[p].missed
    end
    local lost = sent - got
    say("[lm] %s summary: sent %d (%.3f Mpps), received %d (%.3f Mpps), lost %d (%.4f%%), "
        .. "generator rx drops %d", opts.label, sent, mpps(sent, duration), got, mpps(got, duration), lost,
        sent > 0 and 100.0 * lost / sent or 0.0, nic)
    print("[lm] the router's view: lmctl -f <prefix> stats | drops | ports")
    if lm.env("LM_QUIT", "0") == "1" then pktgen.quit() end
    return { sent = sent, received = got, lost = lost }
end

return lm
