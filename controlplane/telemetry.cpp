#include "controlplane/telemetry.hpp"

#include <rte_telemetry.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstdlib>
#include <fmt/format.h>

#include "dht/directory.hpp"

namespace lm {

namespace {

std::atomic<ControlPlane*> g_cp{nullptr};
std::atomic<int> g_inflight{0};  // handlers running right now (telemetry_unregister waits for them)

// Every handler holds one while it may touch the control plane or the workers' counters.
struct InFlight {
    InFlight() { g_inflight.fetch_add(1); }
    ~InFlight() { g_inflight.fetch_sub(1); }
};

// Sum a counter over all workers.
template <typename F>
uint64_t sum(const ControlPlane& cp, F f) {
    uint64_t s = 0;
    for (auto& w : cp.workers()) s += f(*w.counters);
    return s;
}

bool parse_index(const char* params, unsigned long& out) {
    if (!params || !*params) return false;
    char* end;
    out = std::strtoul(params, &end, 10);
    return *end == 0 && out < (1UL << 32);  // also keeps page * page size from overflowing
}

// A paged listing: {"total", "page", "pages", "entries": [one page of lines]}.
int paged_reply(rte_tel_data* d, size_t total, unsigned long page, std::vector<std::string>::const_iterator first,
                std::vector<std::string>::const_iterator last) {
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "total", total);
    rte_tel_data_add_dict_u64(d, "page", page);
    rte_tel_data_add_dict_u64(d, "pages", (total + kTelemetryPageSize - 1) / kTelemetryPageSize);
    rte_tel_data* arr = rte_tel_data_alloc();
    if (!arr) return -1;
    rte_tel_data_start_array(arr, RTE_TEL_STRING_VAL);
    for (auto it = first; it != last; ++it) rte_tel_data_add_array_string(arr, it->substr(0, RTE_TEL_MAX_STRING_LEN - 1).c_str());
    rte_tel_data_add_dict_container(d, "entries", arr, 0);
    return 0;
}

int cmd_info(const char*, const char*, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    auto& c = cp->config();
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "name", c.name.c_str());
    rte_tel_data_add_dict_string(d, "version", LM_VERSION);
    rte_tel_data_add_dict_u64(d, "workers", cp->workers().size());
    rte_tel_data_add_dict_u64(d, "udp_port", c.udp_port);
    if (c.locator_v4) rte_tel_data_add_dict_string(d, "locator_v4", c.locator_v4->str().c_str());
    if (c.locator_v6) rte_tel_data_add_dict_string(d, "locator_v6", c.locator_v6->str().c_str());
    rte_tel_data_add_dict_u64(d, "ports", c.ports.size());
    return 0;
}

int cmd_stats(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    unsigned long w = 0;
    const bool one = parse_index(params, w);
    if (one && w >= cp->workers().size()) return -1;
    auto get = [&](auto f) { return one ? f(*cp->workers()[w].counters) : sum(*cp, f); };
    rte_tel_data_start_dict(d);
#define X(e, s) rte_tel_data_add_dict_u64(d, s, get([](const WorkerCounters& c) { return c.e.get(); }));
    LM_PATH_COUNTERS(X)
#undef X
    uint64_t drops = 0;
    for (size_t i = 0; i < size_t(Drop::Count); ++i)
        if (Drop(i) != Drop::IcmpRateLimited) drops += get([i](const WorkerCounters& c) { return c.drops[i].get(); });
    rte_tel_data_add_dict_u64(d, "dropped", drops);
    if (!one) {
        auto& cc = cp->counters();
        rte_tel_data_add_dict_u64(d, "control_misses", cc.misses.get());
        rte_tel_data_add_dict_u64(d, "control_misses_unresolved", cc.misses_unresolved.get());
        rte_tel_data_add_dict_u64(d, "control_punts", cc.punts.get());
        rte_tel_data_add_dict_u64(d, "control_punt_unhandled", cc.punt_unhandled.get());
        rte_tel_data_add_dict_u64(d, "control_echo_replies", cc.echo_replies.get());
        rte_tel_data_add_dict_u64(d, "control_updates_sent", cc.updates_sent.get());
        rte_tel_data_add_dict_u64(d, "control_updates_retried", cc.updates_retried.get());
        rte_tel_data_add_dict_u64(d, "control_update_backlog", cp->backlog());
        rte_tel_data_add_dict_u64(d, "control_tx_ring_full", cc.tx_ring_full.get());
        rte_tel_data_add_dict_u64(d, "control_neighbor_probes", cc.neighbor_probes.get());
    }
    return 0;
}

int cmd_drops(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    unsigned long w = 0;
    const bool one = parse_index(params, w);
    if (one && w >= cp->workers().size()) return -1;
    rte_tel_data_start_dict(d);
    for (size_t i = 0; i < size_t(Drop::Count); ++i) {
        auto f = [i](const WorkerCounters& c) { return c.drops[i].get(); };
        std::string name(kDropNames[i]);
        rte_tel_data_add_dict_u64(d, name.c_str(), one ? f(*cp->workers()[w].counters) : sum(*cp, f));
    }
    return 0;
}

int cmd_port(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    auto& c = cp->config();
    unsigned long p = 0;
    if (!parse_index(params, p)) {  // no index: list the ports
        rte_tel_data_start_dict(d);
        for (size_t i = 0; i < c.ports.size(); ++i) rte_tel_data_add_dict_u64(d, c.ports[i].name.c_str(), i);
        return 0;
    }
    if (p >= c.ports.size()) return -1;
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "name", c.ports[p].name.c_str());
    rte_tel_data_add_dict_string(d, "device", c.ports[p].device.c_str());
    rte_tel_data_add_dict_string(d, "role", c.ports[p].role == PortRole::Core ? "core" : "access");
    rte_tel_data_add_dict_u64(d, "rx_packets", sum(*cp, [p](const WorkerCounters& w) { return w.ports[p].rx_packets.get(); }));
    rte_tel_data_add_dict_u64(d, "rx_bytes", sum(*cp, [p](const WorkerCounters& w) { return w.ports[p].rx_bytes.get(); }));
    rte_tel_data_add_dict_u64(d, "tx_packets", sum(*cp, [p](const WorkerCounters& w) { return w.ports[p].tx_packets.get(); }));
    rte_tel_data_add_dict_u64(d, "tx_bytes", sum(*cp, [p](const WorkerCounters& w) { return w.ports[p].tx_bytes.get(); }));
    return 0;
}

int cmd_mappings(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    unsigned long page = 0;
    if (params && *params && !parse_index(params, page)) return -1;
    size_t total = 0;
    std::vector<std::string> lines;
    for (auto& r : cp->mappings_page(page * kTelemetryPageSize, kTelemetryPageSize, &total))
        lines.push_back(r.value.flags & MappingValue::kLocal
                            ? fmt::format("tenant {} {} mo {:#x} local port {} mac {}", r.key.tenant(), r.key.ip().str(),
                                          r.value.mo_id, r.value.port_index, r.value.mac.str())
                            : fmt::format("tenant {} {} mo {:#x} locator {} epoch {}", r.key.tenant(), r.key.ip().str(),
                                          r.value.mo_id, r.value.locator.str(), r.value.epoch));
    return paged_reply(d, total, page, lines.begin(), lines.end());
}

int cmd_nexthop(const char*, const char*, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    rte_tel_data_start_dict(d);
    for (auto f : {Family::V4, Family::V6}) {
        auto st = cp->neighbor(f);
        if (!st.configured) continue;
        const char* k = f == Family::V4 ? "v4" : "v6";
        std::string s = fmt::format("{} {} {}", st.ip.str(), st.resolved ? st.mac.str() : "unresolved",
                                    st.static_mac ? "static" : fmt::format("probes {}", st.probes));
        rte_tel_data_add_dict_string(d, k, s.c_str());
    }
    return 0;
}

int cmd_dht(const char*, const char*, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    rte_tel_data_start_dict(d);
    auto& cc = cp->counters();
    rte_tel_data_add_dict_u64(d, "enabled", cp->directory() != nullptr);
    rte_tel_data_add_dict_u64(d, "resolves", cc.dht_resolves.get());
    rte_tel_data_add_dict_u64(d, "coalesced", cc.dht_coalesced.get());
    rte_tel_data_add_dict_u64(d, "negative_hits", cc.dht_negative_hits.get());
    rte_tel_data_add_dict_u64(d, "found", cc.dht_found.get());
    rte_tel_data_add_dict_u64(d, "not_found", cc.dht_not_found.get());
    rte_tel_data_add_dict_u64(d, "no_usable_locator", cc.dht_no_locator.get());
    rte_tel_data_add_dict_u64(d, "watch_updates", cc.dht_watch_updates.get());
    rte_tel_data_add_dict_u64(d, "stale_ignored", cc.dht_stale_ignored.get());
    rte_tel_data_add_dict_u64(d, "published", cc.dht_published.get());
    rte_tel_data_add_dict_u64(d, "cache_refreshed", cc.dht_refreshes.get());
    rte_tel_data_add_dict_u64(d, "cache_expired_idle", cc.dht_expired_idle.get());
    rte_tel_data_add_dict_u64(d, "watches", cp->watches());
    if (auto* dir = cp->directory()) {
        auto c = dir->counters();
        rte_tel_data_add_dict_u64(d, "known_nodes", dir->known_nodes());
        rte_tel_data_add_dict_u64(d, "records_accepted", c.accepted);
        rte_tel_data_add_dict_u64(d, "rejected_malformed", c.rejected_malformed);
        rte_tel_data_add_dict_u64(d, "rejected_unsigned", c.rejected_unsigned);
        rte_tel_data_add_dict_u64(d, "rejected_forged", c.rejected_forged());
        rte_tel_data_add_dict_u64(d, "rejected_expired", c.rejected_expired);
        rte_tel_data_add_dict_u64(d, "rejected_wrong_key", c.rejected_wrong_key);
        rte_tel_data_add_dict_u64(d, "rejected_stale", c.rejected_stale);
        rte_tel_data_add_dict_u64(d, "store_edit_refused", c.store_edit_refused);
        rte_tel_data_add_dict_u64(d, "publish_failed", c.publish_failed);
        rte_tel_data_add_dict_u64(d, "refreshed", c.refreshed);
    }
    return 0;
}

// /lm/resolve,TENANT,EID: asks the LM directory (blocks this telemetry client up to 3 s).
int cmd_resolve(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp || !params) return -1;
    std::string p(params);
    auto comma = p.find(',');
    if (comma == std::string::npos) return -1;
    char* end;
    unsigned long tenant = std::strtoul(p.c_str(), &end, 10);  // decimal: "010" is ten, not eight
    auto eid = IpAddr::parse(std::string_view(p).substr(comma + 1));
    if (end != p.c_str() + comma || tenant > kMaxTenant || !eid) return -1;
    std::string answer = cp->resolve_for_operator(TenantId(tenant), *eid, std::chrono::milliseconds(3000));
    rte_tel_data_string(d, answer.substr(0, RTE_TEL_MAX_SINGLE_STRING_LEN - 1).c_str());
    return 0;
}

std::vector<std::string> split_params(const char* params) {
    std::vector<std::string> out;
    if (!params) return out;
    std::string cur;
    for (const char* p = params; *p; ++p) {
        if (*p == ',') out.push_back(std::move(cur)), cur.clear();
        else cur += *p;
    }
    out.push_back(cur);
    return out;
}

bool parse_u64(const std::string& s, uint64_t max, uint64_t& out, int base = 10) {
    if (s.empty()) return false;
    char* end;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, base);
    if (*end || errno || v > max) return false;
    out = v;
    return true;
}

// /lm/attach,TENANT,MO_ID,MAC,PORT,EID[,EID...]: the MO is here now (orchestrator hook, lmctl).
int cmd_attach(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    auto f = split_params(params);
    std::string err;
    StaticAttachment a;
    uint64_t t = 0, mo = 0;
    if (f.size() < 5) err = "usage: /lm/attach,TENANT,MO_ID,MAC,PORT,EID[,EID...]";
    else if (!parse_u64(f[0], kMaxTenant, t)) err = "bad tenant '" + f[0] + "'";
    else if (!parse_u64(f[1], UINT64_MAX, mo, 0) || mo == 0) err = "bad MO id '" + f[1] + "'";
    else if (!MacAddr::parse(f[2])) err = "bad MAC '" + f[2] + "'";
    if (err.empty()) {
        a.tenant = TenantId(t);
        a.mo_id = mo;
        a.mac = *MacAddr::parse(f[2]);
        a.port = f[3];
        for (size_t i = 4; i < f.size() && err.empty(); ++i) {
            auto e = IpAddr::parse(f[i]);
            if (!e) err = "bad EID '" + f[i] + "'";
            else a.eids.push_back(*e);
        }
    }
    if (err.empty()) err = cp->run_on_control([cp, a] { return cp->attach(a); }, std::chrono::milliseconds(3000));
    rte_tel_data_string(d, err.empty() ? "ok" : ("error: " + err).c_str());
    return 0;
}

// TENANT,MO_ID[,extra]: the parameters of detach and migrate-begin/abort. Returns "" or the error.
std::string parse_tenant_mo(const std::vector<std::string>& f, const std::string& usage, uint64_t& t, uint64_t& mo) {
    if (f.size() < 2) return usage;
    if (!parse_u64(f[0], kMaxTenant, t)) return "bad tenant '" + f[0] + "'";
    if (!parse_u64(f[1], UINT64_MAX, mo, 0) || mo == 0) return "bad MO id '" + f[1] + "'";
    return "";
}

// /lm/detach,TENANT,MO_ID[,withdraw]: the MO left (moved away, or gone for good with withdraw).
int cmd_detach(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    auto f = split_params(params);
    uint64_t t = 0, mo = 0;
    const std::string usage = "usage: /lm/detach,TENANT,MO_ID[,withdraw]";
    const bool withdraw = f.size() == 3 && f[2] == "withdraw";
    std::string err = f.size() > 3 || (f.size() == 3 && !withdraw) ? usage : parse_tenant_mo(f, usage, t, mo);
    if (err.empty())
        err = cp->run_on_control([cp, t, mo, withdraw] { return cp->detach(TenantId(t), mo, withdraw); },
                                 std::chrono::milliseconds(3000));
    rte_tel_data_string(d, err.empty() ? "ok" : ("error: " + err).c_str());
    return 0;
}

// /lm/migrate_begin,TENANT,MO_ID and /lm/migrate_abort,TENANT,MO_ID (orchestrator hooks).
template <bool kBegin>
int cmd_migrate(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    auto f = split_params(params);
    uint64_t t = 0, mo = 0;
    const std::string usage = kBegin ? "usage: /lm/migrate_begin,TENANT,MO_ID" : "usage: /lm/migrate_abort,TENANT,MO_ID";
    std::string err = f.size() != 2 ? usage : parse_tenant_mo(f, usage, t, mo);
    if (err.empty())
        err = cp->run_on_control(
            [cp, t, mo] { return kBegin ? cp->migrate_begin(TenantId(t), mo) : cp->migrate_abort(TenantId(t), mo); },
            std::chrono::milliseconds(3000));
    rte_tel_data_string(d, err.empty() ? "ok" : ("error: " + err).c_str());
    return 0;
}

int cmd_handover(const char*, const char*, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    rte_tel_data_start_dict(d);
    auto& c = cp->counters();
    const std::pair<const char*, const Counter*> rows[] = {
        {"announcements", &c.announcements},
        {"attach_detected", &c.attach_detected},
        {"attach_lookups", &c.attach_lookups},
        {"attach_unknown", &c.attach_unknown},
        {"attach_refused_savi", &c.attach_refused_savi},
        {"attach_refused_policy", &c.attach_refused_policy},
        {"attach_detect_off", &c.attach_detect_off},
        {"attach_holddown", &c.attach_holddown},
        {"migrate_begins", &c.migrate_begins},
        {"migrate_cancelled", &c.migrate_cancelled},
        {"moved_away", &c.moved_away},
        {"move_notify_sent", &c.move_notify_sent},
        {"move_notify_received", &c.move_notify_received},
        {"move_notify_accepted", &c.move_notify_accepted},
        {"move_notify_rejected", &c.move_notify_rejected},
        {"hints_received", &c.hints_received},
        {"hints_acted", &c.hints_acted},
        {"hints_ignored", &c.hints_ignored},
        {"gateway_announced", &c.gateway_announced},
        {"forward_expired", &c.forward_expired},
    };
    for (auto& [name, ctr] : rows) rte_tel_data_add_dict_u64(d, name, ctr->get());
    return 0;
}

int cmd_attached(const char*, const char* params, rte_tel_data* d) {
    InFlight in_flight;
    auto* cp = g_cp.load();
    if (!cp) return -1;
    unsigned long page = 0;
    if (params && *params && !parse_index(params, page)) return -1;
    auto lines = cp->attached_lines();
    const size_t first = std::min(lines.size(), size_t(page) * kTelemetryPageSize);
    const size_t last = std::min(lines.size(), first + kTelemetryPageSize);
    return paged_reply(d, lines.size(), page, lines.begin() + first, lines.begin() + last);
}

}  // namespace

void telemetry_register(ControlPlane* cp) {
    g_cp.store(cp);
    static bool registered = false;  // commands cannot be unregistered in DPDK 22.11
    if (registered) return;
    registered = true;
    rte_telemetry_register_cmd("/lm/info", cmd_info, "Router identity. No parameters");
    rte_telemetry_register_cmd("/lm/stats", cmd_stats, "Path counters, all workers or one. Parameter: optional worker id");
    rte_telemetry_register_cmd("/lm/drops", cmd_drops, "Drops per reason, all workers or one. Parameter: optional worker id");
    rte_telemetry_register_cmd("/lm/port", cmd_port, "Port counters. Parameter: port index (none: list ports)");
    rte_telemetry_register_cmd("/lm/mappings", cmd_mappings, "EID mappings pushed to workers, 64 per page. Parameter: page");
    rte_telemetry_register_cmd("/lm/nexthop", cmd_nexthop, "Core next hop resolution state. No parameters");
    rte_telemetry_register_cmd("/lm/resolve", cmd_resolve, "Resolve an EID in the LM directory. Parameters: tenant,address");
    rte_telemetry_register_cmd("/lm/attach", cmd_attach, "Attach an MO here. Parameters: tenant,mo_id,mac,port,eid[,eid...]");
    rte_telemetry_register_cmd("/lm/detach", cmd_detach, "Detach an MO. Parameters: tenant,mo_id[,withdraw]");
    rte_telemetry_register_cmd("/lm/attached", cmd_attached, "MOs attached here and their published epochs, 64 per page. Parameter: page");
    rte_telemetry_register_cmd("/lm/migrate_begin", cmd_migrate<true>,
                               "The MO is about to leave: hold its packets. Parameters: tenant,mo_id");
    rte_telemetry_register_cmd("/lm/migrate_abort", cmd_migrate<false>,
                               "The MO stays: deliver its held packets. Parameters: tenant,mo_id");
    rte_telemetry_register_cmd("/lm/handover", cmd_handover, "Handover counters (attach detection, moves, hints). No parameters");
    rte_telemetry_register_cmd("/lm/dht", cmd_dht, "LM directory: lookups, answers, watches, rejected records. No parameters");
}

void telemetry_unregister() {
    g_cp.store(nullptr);
    // Handlers that loaded the pointer before may still be running: wait for them, so the
    // control plane and the workers can be destroyed after this returns.
    while (g_inflight.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace lm
