#include "controlplane/control_plane.hpp"

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "common/log.hpp"

namespace lm {

ControlPlane::ControlPlane(const Config& cfg, std::vector<PortRuntime> ports, std::vector<WorkerHandle> workers,
                           rte_mempool* pool, rte_ring* miss_ring, rte_ring* punt_ring)
    : cfg_(cfg),
      ports_(std::move(ports)),
      workers_(std::move(workers)),
      pool_(pool),
      miss_ring_(miss_ring),
      punt_ring_(punt_ring),
      backlog_(workers_.size()) {
    for (size_t i = 0; i < cfg.ports.size(); ++i)
        if (cfg.ports[i].name == cfg.core_port) core_index_ = uint8_t(i);
    auto init_nh = [&](Neighbor& n, const std::optional<IpAddr>& ip, bool have_locator) {
        n.st.configured = ip.has_value() && have_locator;
        if (ip) n.st.ip = *ip;
        if (cfg.next_hop.mac) {
            n.st.mac = *cfg.next_hop.mac;
            n.st.resolved = n.st.static_mac = true;
        }
    };
    init_nh(nh_[0], cfg.next_hop.ipv4, true);
    init_nh(nh_[1], cfg.next_hop.ipv6, true);
}

void ControlPlane::push(const UpdateMsg& u) {
    for (size_t w = 0; w < workers_.size(); ++w) {
        auto& q = backlog_[w];
        // Keep order per worker: once something waits, everything after it waits too.
        if (q.empty() && rte_ring_enqueue_elem(workers_[w].updates, const_cast<UpdateMsg*>(&u), sizeof u) == 0) {
            ctr_.updates_sent.add();
            continue;
        }
        std::lock_guard g(mu_);
        q.push_back(u);
    }
}

void ControlPlane::retry_backlog() {
    for (size_t w = 0; w < workers_.size(); ++w) {
        auto& q = backlog_[w];
        while (!q.empty()) {
            if (rte_ring_enqueue_elem(workers_[w].updates, &q.front(), sizeof(UpdateMsg)) != 0) break;
            ctr_.updates_retried.add();
            ctr_.updates_sent.add();
            std::lock_guard g(mu_);
            q.pop_front();
        }
    }
}

size_t ControlPlane::backlog() const {
    std::lock_guard g(mu_);
    size_t n = 0;
    for (auto& q : backlog_) n += q.size();
    return n;
}

void ControlPlane::upsert_mapping(const EidKey& k, const MappingValue& v) {
    {
        std::lock_guard g(mu_);
        mappings_[k] = v;
    }
    UpdateMsg u{};
    u.op = UpdateOp::UpsertMapping;
    u.key = k;
    u.value = v;
    push(u);
}

void ControlPlane::erase_mapping(const EidKey& k) {
    {
        std::lock_guard g(mu_);
        mappings_.erase(k);
    }
    UpdateMsg u{};
    u.op = UpdateOp::DeleteMapping;
    u.key = k;
    push(u);
}

void ControlPlane::upsert_attachment(TenantId t, MoId mo, uint8_t port_index, const MacAddr& mac) {
    UpdateMsg u{};
    u.op = UpdateOp::UpsertAttachment;
    u.tenant = t;
    u.mo_id = mo;
    u.port_index = port_index;
    u.mac = mac;
    push(u);
}

void ControlPlane::set_next_hop(Family f, const MacAddr& mac) {
    UpdateMsg u{};
    u.op = UpdateOp::SetNextHop;
    u.family = f;
    u.mac = mac;
    push(u);
}

void ControlPlane::start() {
    for (auto& a : cfg_.static_attachments) {
        uint8_t pi = 0;
        for (size_t i = 0; i < cfg_.ports.size(); ++i)
            if (cfg_.ports[i].name == a.port) pi = uint8_t(i);
        upsert_attachment(a.tenant, a.mo_id, pi, a.mac);
        for (auto& eid : a.eids) {
            MappingValue v;
            v.mo_id = a.mo_id;
            v.flags = MappingValue::kLocal;
            v.port_index = pi;
            v.mac = a.mac;
            v.locator = eid.is_v4() ? cfg_.locator_v4.value_or(IpAddr{}) : cfg_.locator_v6.value_or(IpAddr{});
            upsert_mapping(EidKey::make(a.tenant, eid), v);
        }
    }
    for (auto& m : cfg_.static_mappings) {
        MappingValue v;
        v.mo_id = m.mo_id;
        v.epoch = m.epoch;
        v.locator = m.locator;
        upsert_mapping(EidKey::make(m.tenant, m.eid), v);
    }
    for (int f = 0; f < 2; ++f)
        if (nh_[f].st.configured && nh_[f].st.static_mac) set_next_hop(f ? Family::V6 : Family::V4, nh_[f].st.mac);
    log::info("control: pushed {} mappings, {} attachments to {} workers", mappings_.size(), cfg_.static_attachments.size(),
              workers_.size());
}

void ControlPlane::handle_misses() {
    MissMsg mm[32];
    unsigned n = rte_ring_dequeue_burst_elem(miss_ring_, mm, sizeof(MissMsg), 32, nullptr);
    for (unsigned i = 0; i < n; ++i) {
        ctr_.misses.add();
        MappingValue v;
        bool known = false;
        {
            std::lock_guard g(mu_);
            auto it = mappings_.find(mm[i].key);
            if (it != mappings_.end()) v = it->second, known = true;
        }
        if (known && mm[i].worker < workers_.size()) {
            // The worker lost an update (its cache was full): offer it again to that worker only.
            UpdateMsg u{};
            u.op = UpdateOp::UpsertMapping;
            u.key = mm[i].key;
            u.value = v;
            if (backlog_[mm[i].worker].empty() &&
                rte_ring_enqueue_elem(workers_[mm[i].worker].updates, &u, sizeof u) == 0)
                ctr_.miss_repushed.add();
        } else if (mm[i].worker < workers_.size()) {
            // No directory to ask yet (static mappings only): the answer is "no mapping", so the
            // worker drops what it holds for this EID now instead of at its timeout.
            ctr_.misses_unresolved.add();
            log::debug("control: no mapping for tenant {} {}", mm[i].key.tenant(), mm[i].key.ip().str());
            UpdateMsg u{};
            u.op = UpdateOp::MissFailed;
            u.key = mm[i].key;
            if (!backlog_[mm[i].worker].empty() ||
                rte_ring_enqueue_elem(workers_[mm[i].worker].updates, &u, sizeof u) != 0) {
                std::lock_guard g(mu_);
                backlog_[mm[i].worker].push_back(u);
            }
        }
    }
}

bool ControlPlane::transmit(rte_mbuf* m, uint8_t port_index) {
    m->port = port_index;
    if (workers_.empty() || rte_ring_enqueue_elem(workers_[0].tx, &m, sizeof m) != 0) {
        ctr_.tx_ring_full.add();
        rte_pktmbuf_free(m);
        return false;
    }
    return true;
}

void ControlPlane::handle_punt(const PuntMsg& p) {
    ctr_.punts.add();
    rte_mbuf* m = p.mbuf;
    const bool core = p.port_index == core_index_;
    const MacAddr& our_mac = core ? ports_[p.port_index].mac : cfg_.gateway_mac;
    switch (p.reason) {
        case PuntReason::Arp:
            if (core && nh_[0].st.configured) {
                if (auto mac = arp_sender_mac(m, nh_[0].st.ip)) {
                    if (learn_next_hop(Family::V4, *mac)) ctr_.arp_learned.add();
                    break;
                }
            }
            ctr_.punt_unhandled.add();  // gratuitous ARP / RARP: attach detection comes with the handover work
            break;
        case PuntReason::Nd:
            if (core && nh_[1].st.configured) {
                if (auto mac = na_target_mac(m, nh_[1].st.ip)) {
                    if (learn_next_hop(Family::V6, *mac)) ctr_.nd_learned.add();
                    break;
                }
            }
            ctr_.punt_unhandled.add();
            break;
        case PuntReason::LocalIcmp:
            if (make_echo_reply(m, our_mac)) {
                ctr_.echo_replies.add();
                transmit(m, p.port_index);
                return;  // mbuf now owned by the worker
            }
            ctr_.punt_unhandled.add();
            break;
        case PuntReason::LmControl:
            ctr_.punt_unhandled.add();  // refresh hints: handover work
            break;
    }
    rte_pktmbuf_free(m);
}

void ControlPlane::handle_punts() {
    PuntMsg pm[32];
    unsigned n = rte_ring_dequeue_burst_elem(punt_ring_, pm, sizeof(PuntMsg), 32, nullptr);
    for (unsigned i = 0; i < n; ++i) handle_punt(pm[i]);
}

void ControlPlane::neighbor_tick() {
    const uint64_t now = rte_get_tsc_cycles(), hz = rte_get_tsc_hz();
    for (int f = 0; f < 2; ++f) {
        auto& n = nh_[f];
        if (!n.st.configured || n.st.static_mac || now < n.next_probe_tsc) continue;
        // Unresolved: probe every 200 ms; resolved: refresh every 30 s (answers update the MAC).
        n.next_probe_tsc = now + (n.st.resolved ? 30 * hz : hz / 5);
        {
            std::lock_guard g(mu_);
            ++n.st.probes;
        }
        const auto& port = ports_[core_index_];
        rte_mbuf* m = f == 0 ? (cfg_.locator_v4 ? build_arp_request(pool_, port.mac, *cfg_.locator_v4, n.st.ip) : nullptr)
                             : (cfg_.locator_v6 ? build_neighbor_solicit(pool_, port.mac, *cfg_.locator_v6, n.st.ip) : nullptr);
        if (!m) continue;
        ctr_.neighbor_probes.add();
        transmit(m, core_index_);
    }
}

bool ControlPlane::learn_next_hop(Family f, const MacAddr& mac) {
    auto& n = nh_[f == Family::V6];
    if (n.st.static_mac || (n.st.resolved && n.st.mac == mac)) return false;
    {
        std::lock_guard g(mu_);
        n.st.mac = mac;
        n.st.resolved = true;
    }
    set_next_hop(f, mac);
    log::info("control: core next hop {} is at {}", n.st.ip.str(), mac.str());
    return true;
}

NeighborState ControlPlane::neighbor(Family f) const {
    std::lock_guard g(mu_);
    return nh_[f == Family::V6].st;
}

void ControlPlane::poll() {
    retry_backlog();
    handle_misses();
    handle_punts();
    neighbor_tick();
}

void ControlPlane::run(const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
        poll();
        rte_delay_us_sleep(200);  // the control lcore shares a core in tests; 200 us is plenty
    }
}

void ControlPlane::drain() {
    PuntMsg pm[32];
    unsigned n;
    while ((n = rte_ring_dequeue_burst_elem(punt_ring_, pm, sizeof(PuntMsg), 32, nullptr)) > 0)
        for (unsigned i = 0; i < n; ++i) rte_pktmbuf_free(pm[i].mbuf);
    for (auto& w : workers_) {
        rte_mbuf* ms[32];
        while ((n = rte_ring_dequeue_burst_elem(w.tx, ms, sizeof(rte_mbuf*), 32, nullptr)) > 0)
            for (unsigned i = 0; i < n; ++i) rte_pktmbuf_free(ms[i]);
    }
}

std::vector<ControlPlane::MappingRow> ControlPlane::mappings_page(size_t first, size_t count, size_t* total) const {
    std::lock_guard g(mu_);
    std::vector<MappingRow> out;
    if (total) *total = mappings_.size();
    size_t i = 0;
    for (auto& [k, v] : mappings_) {
        if (i >= first + count) break;
        if (i++ >= first) out.push_back({k, v});
    }
    return out;
}

}  // namespace lm
