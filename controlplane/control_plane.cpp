#include "controlplane/control_plane.hpp"

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <fmt/format.h>

#include "common/log.hpp"
#include "dht/directory.hpp"

namespace lm {

ControlPlane::ControlPlane(const Config& cfg, std::vector<PortRuntime> ports, std::vector<WorkerHandle> workers,
                           rte_mempool* pool, rte_ring* miss_ring, rte_ring* punt_ring, dir::Directory* dir)
    : cfg_(cfg),
      ports_(std::move(ports)),
      workers_(std::move(workers)),
      pool_(pool),
      miss_ring_(miss_ring),
      punt_ring_(punt_ring),
      backlog_(workers_.size()),
      dir_(dir) {
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

ControlPlane::~ControlPlane() = default;

void ControlPlane::send_to(uint32_t w, const UpdateMsg& u) {
    if (w >= workers_.size()) return;
    // Keep order per worker: once something waits, everything after it waits too.
    if (backlog_[w].empty() && rte_ring_enqueue_elem(workers_[w].updates, const_cast<UpdateMsg*>(&u), sizeof u) == 0) {
        ctr_.updates_sent.add();
        return;
    }
    std::lock_guard g(mu_);
    backlog_[w].push_back(u);
}

void ControlPlane::answer_no_mapping(const EidKey& k, uint64_t worker_mask) {
    UpdateMsg u{};
    u.op = UpdateOp::MissFailed;
    u.key = k;
    for (uint32_t w = 0; w < workers_.size() && w < 64; ++w)
        if (worker_mask >> w & 1) send_to(w, u);
}

void ControlPlane::push(const UpdateMsg& u) {
    for (uint32_t w = 0; w < workers_.size(); ++w) send_to(w, u);
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

void ControlPlane::set_next_hop(Family f, const MacAddr& mac) {
    UpdateMsg u{};
    u.op = UpdateOp::SetNextHop;
    u.family = f;
    u.mac = mac;
    push(u);
}

void ControlPlane::start() {
    for (auto& a : cfg_.static_attachments)
        if (auto err = attach(a); !err.empty()) log::error("control: static attachment of MO {:#x}: {}", a.mo_id, err);
    for (auto& m : cfg_.static_mappings) {
        MappingValue v;
        v.mo_id = m.mo_id;
        v.epoch = m.epoch;
        v.locator = m.locator;
        upsert_mapping(EidKey::make(m.tenant, m.eid), v);
    }
    for (int f = 0; f < 2; ++f)
        if (nh_[f].st.configured && nh_[f].st.static_mac) set_next_hop(f ? Family::V6 : Family::V4, nh_[f].st.mac);
    UpdateMsg ready{};  // after everything above, through the same ordered rings and backlogs
    ready.op = UpdateOp::Ready;
    push(ready);
    log::info("control: pushed {} mappings, {} attachments to {} workers", mappings_.size(), cfg_.static_attachments.size(),
              workers_.size());
    if (dir_ && !dir_->can_publish()) log::warn("control: the directory has no identity: attached MOs are not published");
}

void ControlPlane::handle_misses() {
    MissMsg mm[32];
    unsigned n = rte_ring_dequeue_burst_elem(miss_ring_, mm, sizeof(MissMsg), 32, nullptr);
    for (unsigned i = 0; i < n; ++i) {
        if (mm[i].refresh) {
            refresh_used(mm[i].key);
            continue;
        }
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
            send_to(mm[i].worker, u);
            ctr_.miss_repushed.add();
        } else if (mm[i].worker < workers_.size()) {
            const EidKey& k = mm[i].key;
            const uint64_t bit = uint64_t(1) << (mm[i].worker & 63);
            if (auto it = inflight_.find(k); it != inflight_.end()) {
                it->second.workers |= bit;  // already asked: answer everyone together
                ctr_.dht_coalesced.add();
                continue;
            }
            if (auto it = negative_.find(k); it != negative_.end()) {
                if (rte_get_tsc_cycles() < it->second) {
                    ctr_.dht_negative_hits.add();
                    answer_no_mapping(k, bit);
                    continue;
                }
                negative_.erase(it);
            }
            if (!dir_) {
                // Static mappings only: the answer is "no mapping", so the worker drops what it
                // holds for this EID now instead of at its timeout.
                ctr_.misses_unresolved.add();
                log::debug("control: no mapping for tenant {} {}", k.tenant(), k.ip().str());
                answer_no_mapping(k, bit);
                continue;
            }
            const uint64_t cookie = next_cookie_++;
            inflight_[k] = InFlight{cookie, bit};
            cookies_[cookie] = k;
            ctr_.dht_resolves.add();
            dir_->resolve(k.tenant(), k.ip(), cookie);
        }
    }
}

// Packets the control lcore sends queue behind each other: when worker 0's tx ring is full
// (the gateway announcements for a thousand MOs at start-up, a move notification to many
// peers) they wait in tx_backlog_ and go out in order at the next polls. Only past
// kTxBacklog packets (which would starve the mbuf pool) are they dropped and counted.
bool ControlPlane::transmit(rte_mbuf* m, uint8_t port_index) {
    m->port = port_index;
    if (!workers_.empty() && tx_backlog_.empty() && rte_ring_enqueue_elem(workers_[0].tx, &m, sizeof m) == 0)
        return true;
    if (workers_.empty() || tx_backlog_.size() >= kTxBacklog) {
        ctr_.tx_ring_full.add();
        rte_pktmbuf_free(m);
        return false;
    }
    tx_backlog_.push_back(m);
    return true;
}

void ControlPlane::flush_tx_backlog() {
    while (!tx_backlog_.empty() && rte_ring_enqueue_elem(workers_[0].tx, &tx_backlog_.front(), sizeof(rte_mbuf*)) == 0)
        tx_backlog_.pop_front();
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
            if (!core) return handle_announcement(p.port_index, m);  // gratuitous ARP: attach detection
            ctr_.punt_unhandled.add();
            break;
        case PuntReason::Nd:
            if (core && nh_[1].st.configured) {
                if (auto mac = na_target_mac(m, nh_[1].st.ip)) {
                    if (learn_next_hop(Family::V6, *mac)) ctr_.nd_learned.add();
                    break;
                }
            }
            if (!core) return handle_announcement(p.port_index, m);  // unsolicited NA
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
        case PuntReason::LmControl: return handle_lm_control(m);
        case PuntReason::Rarp:
            if (!core) return handle_announcement(p.port_index, m);
            ctr_.punt_unhandled.add();
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

// ---- LM directory --------------------------------------------------------------------------

void ControlPlane::forget(const EidKey& k) {
    learned_.erase(k);
    {
        std::lock_guard g(mu_);
        if (auto it = mappings_.find(k); it != mappings_.end() && (it->second.flags & MappingValue::kLocal)) return;
    }
    erase_mapping(k);
    uint64_t id = 0;
    {
        std::lock_guard g(mu_);
        if (auto w = watches_.find(k); w != watches_.end()) {
            id = w->second;
            watch_keys_.erase(id);
            watches_.erase(w);
        }
    }
    if (id) dir_->unwatch(id);
}

// Mappings learned from the directory live dht.cache_ttl_s while traffic uses them: the
// workers carry refresh_s = learned + TTL, and the first packet after it asks for a refresh
// (refresh_used): the DHT is asked again and the TTL starts over -- or the mapping leaves the
// caches (and loses its watch) when nobody publishes it any more. A mapping no packet used
// since its TTL ran out is not asked for: it leaves the caches here, max(10 s, TTL/10) later.
void ControlPlane::learned(const EidKey& k, MappingValue& v) {
    const uint64_t now = rte_get_tsc_cycles(), hz = rte_get_tsc_hz();
    const uint32_t ttl = cfg_.dht ? cfg_.dht->cache_ttl_s : 300;
    v.refresh_s = tsc_seconds(now, hz) + ttl;
    learned_[k] = now + hz * (ttl + std::max<uint32_t>(10, ttl / 10));
}

void ControlPlane::refresh_used(const EidKey& k) {
    if (!dir_ || !learned_.count(k)) return;
    if (!refreshing_.insert(k).second) return;  // asked already (another worker, or a retry): the answer comes
    ctr_.dht_refreshes.add();
    const uint64_t cookie = next_cookie_++;
    refresh_cookies_[cookie] = k;
    dir_->resolve(k.tenant(), k.ip(), cookie);
}

void ControlPlane::refresh_learned() {
    const uint64_t now = rte_get_tsc_cycles();
    if (now < next_refresh_scan_) return;
    next_refresh_scan_ = now + rte_get_tsc_hz();  // once a second is plenty
    std::erase_if(negative_, [now](const auto& kv) { return kv.second <= now; });
    std::vector<EidKey> idle;
    for (auto& [k, due] : learned_)
        if (now >= due) idle.push_back(k);
    for (auto& k : idle) {
        ctr_.dht_expired_idle.add();
        log::debug("control: tenant {} {}: unused for dht.cache_ttl_s, leaves the caches", k.tenant(), k.ip().str());
        forget(k);
    }
}

size_t ControlPlane::watches() const {
    std::lock_guard g(mu_);
    return watches_.size();
}

// Publishes the MO's record (fresh epoch) and returns the epoch, or 0 without a directory
// identity. The local cache entries and the attachment carry that epoch (stale-sender detection).
Epoch ControlPlane::publish(const Attached& at) {
    if (!dir_ || !dir_->can_publish()) return 0;
    dir::Record r;
    r.mo = at.a.mo_id;
    r.tenant = at.a.tenant;
    r.eids = at.a.eids;
    r.mac = at.a.mac;
    r.loc4 = cfg_.locator_v4;
    r.loc6 = cfg_.locator_v6;
    const Epoch e = dir_->publish(r);
    ctr_.dht_published.add();
    log::info("control: published MO {:#x} (tenant {}, {} EIDs) with epoch {:#x}", at.a.mo_id, at.a.tenant,
              at.a.eids.size(), e);
    return e;
}

MappingValue ControlPlane::local_value(const StaticAttachment& a, uint8_t port_index) const {
    MappingValue v;
    v.mo_id = a.mo_id;
    v.flags = MappingValue::kLocal;
    v.port_index = port_index;
    v.mac = a.mac;
    return v;
}

std::string ControlPlane::attach(const StaticAttachment& a) { return attach_impl(a, nullptr); }

// previous: the MO's record as last published by another AR (attach detection found it), so
// that AR gets our signed record directly; nullptr: look in the directory's cache.
std::string ControlPlane::attach_impl(const StaticAttachment& a, const dir::Record* previous) {
    const PortConfig* pc = cfg_.find_port(a.port);
    if (!pc) return fmt::format("attach: no port named '{}'", a.port);
    if (pc->role != PortRole::Access) return fmt::format("attach: port '{}' is not an access port", a.port);
    if (pc->tenant != a.tenant)
        return fmt::format("attach: port '{}' carries tenant {}, not {}", a.port, pc->tenant, a.tenant);
    if (a.eids.empty()) return "attach: no EID given";
    if (a.mac.is_zero() || a.mac.is_multicast()) return fmt::format("attach: {} is not a unicast MAC", a.mac.str());
    const auto id = std::make_pair(a.tenant, a.mo_id);
    {
        std::lock_guard g(mu_);
        for (auto& [k, other] : attached_) {
            if (k == id || other.state == AttachState::Forward) continue;
            for (auto& e : a.eids)
                for (auto& oe : other.a.eids)
                    if (k.first == a.tenant && e == oe)
                        return fmt::format("attach: EID {} belongs to attached MO {:#x}", e.str(), k.second);
        }
    }
    uint8_t pi = 0;
    for (size_t i = 0; i < cfg_.ports.size(); ++i)
        if (cfg_.ports[i].name == a.port) pi = uint8_t(i);
    // Where the MO was before, to tell that AR at once (a move notification with our record).
    std::vector<IpAddr> notify;
    auto add_target = [&](const dir::Record& r) {
        if (!dir_ || r.publisher.empty() || r.publisher == dir_->name() || r.withdrawn) return;
        if (auto loc = usable_locator(r); loc && std::find(notify.begin(), notify.end(), *loc) == notify.end())
            notify.push_back(*loc);
    };
    if (previous) add_target(*previous);
    else if (dir_)
        for (auto& eid : a.eids)
            if (auto r = dir_->cached(a.tenant, eid)) add_target(*r);
    Attached* at;
    std::vector<EidKey> gone;  // re-attach: EIDs no longer listed leave
    {
        std::lock_guard g(mu_);
        auto old = attached_.find(id);
        if (old != attached_.end()) {
            for (auto& e : old->second.a.eids)
                if (std::find(a.eids.begin(), a.eids.end(), e) == a.eids.end()) gone.push_back(EidKey::make(a.tenant, e));
            // Coming back to the AR it had left: the AR we forward to must learn it, too.
            if (old->second.state == AttachState::Forward &&
                std::find(notify.begin(), notify.end(), old->second.fwd_locator) == notify.end())
                notify.push_back(old->second.fwd_locator);
        }
        at = &attached_[id];  // std::map: the node stays put while other entries come and go
        at->a = a;
        at->port_index = pi;
        at->state = AttachState::Deliver;
        at->fwd_epoch = 0;
        at->forward_until_tsc = 0;
        at->since_tsc = rte_get_tsc_cycles();
        at->notify_to = notify;
    }
    for (auto& k : gone) erase_mapping(k);
    const Epoch e = publish(*at);
    {
        std::lock_guard g(mu_);
        at->epoch = e;
    }
    // Mappings first, then the attachment: packets released from a hold see the new mappings.
    for (auto& eid : a.eids) learned_.erase(EidKey::make(a.tenant, eid));  // attached here now: not a remote mapping
    push_local_mappings(*at);
    push_attachment(*at);
    announce_gateway(*at);
    log::info("control: MO {:#x} attached on {} (tenant {}, mac {}){}", a.mo_id, a.port, a.tenant, a.mac.str(),
              notify.empty() ? "" : fmt::format(", notifying its previous AR {}", notify[0].str()));
    return "";
}

std::string ControlPlane::detach(TenantId t, MoId mo, bool withdraw) {
    Attached at;
    {
        std::lock_guard g(mu_);
        auto it = attached_.find(std::make_pair(t, mo));
        if (it == attached_.end()) return fmt::format("detach: MO {:#x} of tenant {} is not attached here", mo, t);
        at = it->second;
        attached_.erase(it);
    }
    if (at.state != AttachState::Forward)  // a forwarding pointer's EIDs map to the new AR now
        for (auto& eid : at.a.eids) erase_mapping(EidKey::make(t, eid));
    UpdateMsg u{};
    u.op = UpdateOp::DeleteAttachment;
    u.tenant = t;
    u.mo_id = mo;
    push(u);
    if (dir_ && dir_->can_publish()) {
        // Moved away: stop refreshing (the new AR's newer record wins). Gone: signed tombstone.
        if (withdraw) dir_->withdraw(t, mo);
        else dir_->release(t, mo);
    }
    log::info("control: MO {:#x} (tenant {}) detached{}", mo, t, withdraw ? ", record withdrawn" : "");
    return "";
}

std::string ControlPlane::run_on_control(std::function<std::string()> job, std::chrono::milliseconds timeout) {
    auto q = std::make_shared<Job>();
    q->fn = std::move(job);
    std::unique_lock lk(query_mu_);
    if (stopping_) return "error: the router is stopping";
    jobs_.push_back(q);
    if (!query_cv_.wait_for(lk, timeout, [&] { return q->done || stopping_; })) {
        q->cancelled = true;  // too late for the caller: do not run it
        return "error: the control lcore did not answer in time";
    }
    return q->done ? q->result : "error: the router is stopping";
}

void ControlPlane::serve_jobs() {
    std::deque<std::shared_ptr<Job>> jobs;
    {
        std::lock_guard g(query_mu_);
        jobs.swap(jobs_);
    }
    for (auto& j : jobs) {
        {
            std::lock_guard g(query_mu_);
            if (j->cancelled) continue;
        }
        std::string r;
        try {
            r = j->fn();
        } catch (const std::exception& e) {  // an operator's request must never stop the router
            r = std::string("error: ") + e.what();
        }
        std::lock_guard g(query_mu_);
        j->result = std::move(r);
        j->done = true;
    }
    if (!jobs.empty()) query_cv_.notify_all();
}

// A record for EID k (a resolve answer or a watch update): install it if it is newer and
// usable, keep watching it so the next move reaches us without a TTL.
void ControlPlane::accept_record(const EidKey& k, const dir::Event& e) {
    const dir::Record& r = e.record;
    MappingValue cur;
    bool have = false;
    {
        std::lock_guard g(mu_);
        if (auto it = mappings_.find(k); it != mappings_.end()) cur = it->second, have = true;
    }
    if (have && (cur.flags & MappingValue::kLocal)) {
        maybe_moved(r);  // attached here: only a newer record of another AR (the MO moved) counts
        return;
    }
    if (e.answer == dir::Answer::Withdrawn || r.withdrawn) {
        if (have && r.epoch > cur.epoch) forget(k);
        return;
    }
    const std::optional<IpAddr> loc = usable_locator(r);
    if (!loc) {
        ctr_.dht_no_locator.add();
        return;
    }
    if (have && cur.epoch >= r.epoch) {
        ctr_.dht_stale_ignored.add();
        return;
    }
    MappingValue v;
    v.mo_id = r.mo;
    v.epoch = r.epoch;
    v.locator = *loc;
    learned(k, v);
    upsert_mapping(k, v);
    ensure_watch(k);
}

// A record for an EID we did not ask about just now (a refined answer, a move notification):
// it only updates a mapping we hold, through the same epoch-ordered path.
void ControlPlane::accept_if_held(const EidKey& k, const dir::Event& e) {
    bool have;
    {
        std::lock_guard g(mu_);
        have = mappings_.count(k) != 0;
    }
    if (have) accept_record(k, e);
}

// Watches k in the directory (push updates) unless it is watched already or the bound
// (dht.max_watches) is reached. The watch goes with forget().
void ControlPlane::ensure_watch(const EidKey& k) {
    if (!dir_ || !cfg_.dht) return;
    {
        std::lock_guard g(mu_);
        if (watches_.count(k) || watches_.size() >= cfg_.dht->max_watches) return;
    }
    const uint64_t id = dir_->watch(k.tenant(), k.ip());
    std::lock_guard g(mu_);
    watches_[k] = id;
    watch_keys_[id] = k;
}

void ControlPlane::serve_operator_queries() {
    std::lock_guard g(query_mu_);
    while (!query_queue_.empty()) {
        auto q = query_queue_.front();
        query_queue_.pop_front();
        const uint64_t cookie = uint64_t(1) << 63 | next_cookie_++;  // top bit: operator lookups
        query_cookies_[cookie] = q;
        dir_->resolve(q->tenant, q->eid, cookie);
    }
}

std::string ControlPlane::resolve_for_operator(TenantId t, const IpAddr& eid, std::chrono::milliseconds timeout) {
    if (!dir_) return "no LM directory configured (no dht section)";
    auto q = std::make_shared<OperatorQuery>();
    q->tenant = t;
    q->eid = eid;
    std::unique_lock lk(query_mu_);
    if (stopping_) return "the router is stopping";
    query_queue_.push_back(q);
    if (!query_cv_.wait_for(lk, timeout, [&] { return q->done || stopping_; })) {
        // The control lcore still owns the cookie; it drops the answer when it comes.
        return fmt::format("no answer for tenant {} {} within {} ms", t, eid.str(), timeout.count());
    }
    return q->done ? q->answer : "the router is stopping";
}

std::vector<std::string> ControlPlane::attached_lines() const {
    std::lock_guard g(mu_);
    std::vector<std::string> out;
    for (auto& [id, at] : attached_) {
        std::string eids;
        for (auto& e : at.a.eids) eids += (eids.empty() ? "" : ",") + e.str();
        std::string state = at.state == AttachState::Hold      ? " leaving (holding packets)"
                            : at.state == AttachState::Forward ? fmt::format(" moved to {} (epoch {:#x}), forwarding",
                                                                             at.fwd_locator.str(), at.fwd_epoch)
                                                               : "";
        out.push_back(fmt::format("tenant {} mo {:#x} mac {} port {} eids {} {}{}", at.a.tenant, at.a.mo_id, at.a.mac.str(),
                                  at.a.port, eids,
                                  at.epoch ? fmt::format("published epoch {:#x}", at.epoch) : std::string("not published"),
                                  state));
    }
    return out;
}

void ControlPlane::on_dir_event(dir::Event&& e) {
    using T = dir::Event::Type;
    if (e.type == T::Resolved && (e.cookie >> 63)) {
        std::lock_guard g(query_mu_);
        auto it = query_cookies_.find(e.cookie);
        if (it == query_cookies_.end()) return;
        auto q = it->second;
        query_cookies_.erase(it);
        q->answer = e.answer == dir::Answer::NotFound
                        ? fmt::format("tenant {} {}: not found ({} us{})", q->tenant, q->eid.str(), e.elapsed_us,
                                      e.ok ? "" : ", search incomplete")
                        : fmt::format("tenant {} {}: {} {} ({} us)", q->tenant, q->eid.str(), dir::to_string(e.answer),
                                      e.record.str(), e.elapsed_us);
        q->done = true;
        query_cv_.notify_all();
        return;
    }
    if (e.type == T::Resolved) {
        if (detect_cookies_.count(e.cookie)) return on_detect_answer(e.cookie, e);
        if (auto h = hint_cookies_.find(e.cookie); h != hint_cookies_.end()) {
            const EidKey k = h->second;
            hint_cookies_.erase(h);
            if (e.answer != dir::Answer::NotFound) accept_record(k, e);  // epoch-ordered: a hint cannot redirect
            return;
        }
        if (auto r = refresh_cookies_.find(e.cookie); r != refresh_cookies_.end()) {
            const EidKey k = r->second;
            refresh_cookies_.erase(r);
            refreshing_.erase(k);
            if (!learned_.count(k)) return;  // attached here (or forgotten) since the question
            if (e.answer == dir::Answer::Found) {
                std::optional<MappingValue> cur;
                {
                    std::lock_guard g(mu_);
                    if (auto it = mappings_.find(k); it != mappings_.end() && !(it->second.flags & MappingValue::kLocal))
                        cur = it->second;
                }
                if (cur && cur->epoch == e.record.epoch) {  // the same record: the TTL starts again, in the workers too
                    learned(k, *cur);
                    upsert_mapping(k, *cur);
                } else {
                    accept_record(k, e);  // a newer record replaces the mapping (with a new TTL)
                }
            } else if (e.ok) {
                forget(k);  // nobody publishes it any more
            }
            return;
        }
        auto c = cookies_.find(e.cookie);
        if (c == cookies_.end()) return;
        const EidKey k = c->second;
        cookies_.erase(c);
        uint64_t waiting = 0;
        if (auto it = inflight_.find(k); it != inflight_.end()) {
            waiting = it->second.workers;
            inflight_.erase(it);
        }
        if (e.answer == dir::Answer::Found) {
            ctr_.dht_found.add();
            accept_record(k, e);
            bool known;
            {
                std::lock_guard g(mu_);
                known = mappings_.count(k) != 0;
            }
            if (known) return;  // the upsert releases the held packets in every worker
        } else {
            ctr_.dht_not_found.add();
        }
        // Not found, withdrawn, or no usable locator: remember it briefly so a scan of a mobile
        // prefix cannot turn into a flood of DHT lookups.
        const uint32_t ttl = cfg_.dht ? cfg_.dht->negative_ttl_ms : 0;
        if (ttl) negative_[k] = rte_get_tsc_cycles() + rte_get_tsc_hz() / 1000 * ttl;
        answer_no_mapping(k, waiting);
    } else if (e.type == T::Signed) {
        on_signed(e);
    } else if (e.type == T::Refined) {
        // A newer record for a lookup answered earlier (a stale replica answered first): the
        // same epoch-ordered path as any answer. MAC lookups (attach detection) used the first
        // answer for the MO's identity; a newer record only matters if it moves an MO of ours.
        if (e.answer == dir::Answer::NotFound) return;
        if (e.kind == dir::KeyKind::Eid) {
            accept_if_held(EidKey::make(e.tenant, e.eid), e);
        } else {
            maybe_moved(e.record);
        }
    } else if (e.type == T::WatchUpdate) {
        auto w = watch_keys_.find(e.cookie);
        if (w == watch_keys_.end()) return;
        ctr_.dht_watch_updates.add();
        if (e.answer != dir::Answer::NotFound) accept_record(w->second, e);
    }
}

NeighborState ControlPlane::neighbor(Family f) const {
    std::lock_guard g(mu_);
    return nh_[f == Family::V6].st;
}

void ControlPlane::poll() {
    flush_tx_backlog();
    serve_jobs();
    handover_tick();
    retry_backlog();
    if (dir_) {
        serve_operator_queries();
        refresh_learned();
        dir_->poll([this](dir::Event&& e) { on_dir_event(std::move(e)); }, 256);
    }
    handle_misses();
    handle_punts();
    neighbor_tick();
}

void ControlPlane::run(const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
        poll();
        idle_wait(std::chrono::microseconds(200));  // the control lcore shares a core in tests
    }
}

void ControlPlane::idle_wait(std::chrono::microseconds max) const {
    // Misses, punts and lmctl requests wait for the end of the back-off (rings have no fd), but a
    // DHT answer wakes the loop at once: it is the last step before held packets can go.
    if (!dir_) {
        rte_delay_us_sleep(unsigned(max.count()));
        return;
    }
    pollfd pfd{dir_->event_fd(), POLLIN, 0};
    wait_readable({&pfd, 1}, max);
}

void ControlPlane::wait_readable(std::span<pollfd> fds, std::chrono::microseconds max) {
    const timespec ts{time_t(max.count() / 1'000'000), long(max.count() % 1'000'000) * 1000};
    ppoll(fds.data(), fds.size(), &ts, nullptr);
}

void ControlPlane::shutdown() {
    {
        std::lock_guard g(query_mu_);
        stopping_ = true;
    }
    query_cv_.notify_all();
}

void ControlPlane::drain() {
    for (rte_mbuf* m : tx_backlog_) rte_pktmbuf_free(m);
    tx_backlog_.clear();
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
