// The control lcore's side of a live migration (docs/architecture.md, "Handover"):
//
//   old AR                                   new AR
//   migrate_begin: workers hold the MO's     the MO's announcement (GARP / unsolicited NA /
//   packets (AttachState::Hold)              RARP) is punted -> DHT lookup by MAC -> policy
//                                            and SAVI checks -> attach: publish a newer record,
//                                            announce the gateway to the MO
//   MoveNotify (our signed record) <-------- send the signed record to the old locator
//   verify it like a DHT read -> Forward:
//   held packets and late arrivals are
//   re-encapsulated to the new AR for
//   forward_time_s, then the entry goes.
//
// The DHT watch on an attached MO's EID is the second way the old AR learns of the move (an
// unannounced one, or a lost notification). Refresh hints from a peer only trigger a DHT lookup:
// what moves traffic is always a verified, newer record.
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <fmt/format.h>

#include "common/log.hpp"
#include "controlplane/control_plane.hpp"
#include "controlplane/lm_control.hpp"
#include "dht/directory.hpp"

namespace lm {

namespace {
uint64_t ms_to_tsc(uint64_t ms) { return rte_get_tsc_hz() / 1000 * ms; }
double tsc_to_ms(uint64_t dt) { return double(dt) * 1000.0 / double(rte_get_tsc_hz()); }
}  // namespace

void ControlPlane::push_attachment(const Attached& at) {
    UpdateMsg u{};
    u.op = UpdateOp::UpsertAttachment;
    u.tenant = at.a.tenant;
    u.mo_id = at.a.mo_id;
    u.port_index = at.port_index;
    u.mac = at.a.mac;
    u.state = at.state;
    u.epoch = at.state == AttachState::Forward ? at.fwd_epoch : at.epoch;
    u.fwd_epoch = at.fwd_epoch;
    u.fwd_locator = at.fwd_locator;
    push(u);
}

void ControlPlane::push_local_mappings(const Attached& at) {
    for (auto& eid : at.a.eids) {
        MappingValue v = local_value(at.a, at.port_index);
        v.epoch = at.epoch;
        if (at.state == AttachState::Hold) v.flags |= MappingValue::kHold;
        upsert_mapping(EidKey::make(at.a.tenant, eid), v);
    }
}

// Outer family toward a record's AR: IPv4 when both ends have it (20 bytes less), else IPv6.
std::optional<IpAddr> ControlPlane::usable_locator(const dir::Record& r) const {
    if (r.loc4 && cfg_.locator_v4) return r.loc4;
    if (r.loc6 && cfg_.locator_v6) return r.loc6;
    return std::nullopt;
}

ControlPlane::Attached* ControlPlane::find_attached_by_mac(TenantId t, const MacAddr& mac) {
    for (auto& [id, at] : attached_)
        if (id.first == t && at.a.mac == mac) return &at;
    return nullptr;
}

std::string ControlPlane::migrate_begin(TenantId t, MoId mo) {
    Attached* at;
    {
        std::lock_guard g(mu_);
        auto it = attached_.find({t, mo});
        if (it == attached_.end()) return fmt::format("migrate-begin: MO {:#x} of tenant {} is not attached here", mo, t);
        at = &it->second;
        if (at->state == AttachState::Forward)
            return fmt::format("migrate-begin: MO {:#x} already moved to {}", mo, at->fwd_locator.str());
        if (at->state == AttachState::Hold) return "";  // idempotent: hooks may call twice
        at->state = AttachState::Hold;
        at->since_tsc = rte_get_tsc_cycles();
    }
    ctr_.migrate_begins.add();
    push_local_mappings(*at);  // local correspondents' packets wait too
    push_attachment(*at);
    // Learn the new locator from the DHT as well as from the new AR's notification.
    ensure_watch(EidKey::make(t, at->a.eids.front()));
    log::info("control: MO {:#x} (tenant {}) is leaving: holding its packets", mo, t);
    return "";
}

std::string ControlPlane::migrate_abort(TenantId t, MoId mo) {
    Attached* at;
    {
        std::lock_guard g(mu_);
        auto it = attached_.find({t, mo});
        if (it == attached_.end()) return fmt::format("migrate-abort: MO {:#x} of tenant {} is not attached here", mo, t);
        at = &it->second;
        if (at->state != AttachState::Hold)
            return fmt::format("migrate-abort: MO {:#x} is not leaving (no migrate-begin, or it already moved)", mo);
        at->state = AttachState::Deliver;
        at->since_tsc = rte_get_tsc_cycles();
    }
    ctr_.migrate_cancelled.add();
    push_local_mappings(*at);
    push_attachment(*at);  // leaving Hold: the held packets are delivered
    log::info("control: MO {:#x} (tenant {}) stays: delivering again", mo, t);
    return "";
}

// A verified record for an MO attached here. If another AR published it with a newer epoch, the
// MO has moved there: switch to forwarding.
void ControlPlane::maybe_moved(const dir::Record& r) {
    if (r.withdrawn || (dir_ && r.publisher == dir_->name())) return;
    Attached* at;
    {
        std::lock_guard g(mu_);
        auto it = attached_.find({r.tenant, r.mo});
        if (it == attached_.end()) return;
        at = &it->second;
    }
    if (at->state == AttachState::Forward ? r.epoch <= at->fwd_epoch : r.epoch <= at->epoch) return;
    move_away(*at, r);
}

void ControlPlane::move_away(Attached& at, const dir::Record& r) {
    const auto loc = usable_locator(r);
    if (!loc) {
        ctr_.dht_no_locator.add();
        log::warn("control: MO {:#x} moved to {}, which has no locator of a family we have", r.mo, r.publisher);
        return;
    }
    const uint64_t now = rte_get_tsc_cycles();
    const bool was_holding = at.state == AttachState::Hold;
    const double since = tsc_to_ms(now - at.since_tsc);
    {
        std::lock_guard g(mu_);
        at.state = AttachState::Forward;
        at.fwd_locator = *loc;
        at.fwd_epoch = r.epoch;
        at.since_tsc = now;
        at.forward_until_tsc = now + rte_get_tsc_hz() * cfg_.forward_time_s;
        at.notify_to.clear();
    }
    ctr_.moved_away.add();
    // The EIDs now map to the new AR (pushed before the attachment: released packets that came
    // from a local correspondent then encapsulate); they are refreshed and watched like any
    // learned mapping.
    for (auto& eid : at.a.eids) {
        const EidKey k = EidKey::make(at.a.tenant, eid);
        MappingValue v;
        v.mo_id = r.mo;
        v.epoch = r.epoch;
        v.locator = *loc;
        if (dir_) learned(k, v);
        upsert_mapping(k, v);
        ensure_watch(k);  // its next move must reach us too (we may still forward to it)
    }
    push_attachment(at);
    if (dir_ && dir_->can_publish()) dir_->release(at.a.tenant, at.a.mo_id);  // the newer record wins
    log::info("control: MO {:#x} (tenant {}) moved to {} ({}), epoch {:#x}: forwarding for {} s{}", r.mo, r.tenant,
              loc->str(), r.publisher, r.epoch, cfg_.forward_time_s,
              was_holding ? fmt::format(", {:.1f} ms after migrate-begin", since) : std::string());
}

// The gateway announces itself to an MO that just attached, so a neighbour cache entry for the
// gateway that went stale during the move (other AR, same anycast MAC) is confirmed at once.
void ControlPlane::announce_gateway(const Attached& at) {
    const auto& port = cfg_.ports[at.port_index];
    bool v4 = false, v6 = false;
    for (auto& e : at.a.eids) (e.is_v4() ? v4 : v6) = true;
    for (uint32_t i = 0; i < cfg_.announce_count; ++i) {
        if (v4 && cfg_.gateway_v4)
            if (rte_mbuf* m = build_gratuitous_arp(pool_, cfg_.gateway_mac, *cfg_.gateway_v4, port.vlan))
                if (transmit(m, at.port_index)) ctr_.gateway_announced.add();
        if (v6 && cfg_.gateway_v6)
            if (rte_mbuf* m = build_unsolicited_na(pool_, cfg_.gateway_mac, *cfg_.gateway_v6, port.vlan))
                if (transmit(m, at.port_index)) ctr_.gateway_announced.add();
    }
}

// ---- attach detection ------------------------------------------------------------------------

void ControlPlane::handle_announcement(uint8_t port_index, rte_mbuf* m) {
    auto ann = parse_announcement(m);
    rte_pktmbuf_free(m);
    if (!ann) {
        ctr_.punt_unhandled.add();
        return;
    }
    ctr_.announcements.add();
    if (!cfg_.detect_attach) {
        ctr_.attach_detect_off.add();
        return;
    }
    const PortConfig& pc = cfg_.ports[port_index];
    const TenantId tenant = pc.tenant;
    // A link-local address is never an EID, but its NA still names the host's MAC: look the MO
    // up by MAC, as for a RARP (a migrated VM's guest announces fe80:: next to its EIDs).
    if (ann->ip && ann->ip->is_v6() && ann->ip->b[0] == 0xfe && (ann->ip->b[1] & 0xc0) == 0x80) ann->ip.reset();
    const std::string ip_str = ann->ip ? ann->ip->str() : std::string("-");
    if (!ann->mac_matches_frame) {  // SAVI: a host announces only its own MAC
        ctr_.attach_refused_savi.add();
        log::warn("control: {} on {} announces MAC {} from another source MAC: refused", to_string(ann->kind), pc.name,
                  ann->mac.str());
        return;
    }
    // An EID attached here under another MAC cannot be claimed.
    if (ann->ip) {
        std::lock_guard g(mu_);
        for (auto& [id, at] : attached_)
            if (id.first == tenant && at.state != AttachState::Forward && !(at.a.mac == ann->mac) &&
                std::find(at.a.eids.begin(), at.a.eids.end(), *ann->ip) != at.a.eids.end()) {
                ctr_.attach_refused_savi.add();
                log::warn("control: {} on {}: MAC {} claims {}, which belongs to MO {:#x} (MAC {}): refused",
                          to_string(ann->kind), pc.name, ann->mac.str(), ip_str, id.second, at.a.mac.str());
                return;
            }
    }
    if (Attached* at = find_attached_by_mac(tenant, ann->mac)) {
        if (ann->ip && std::find(at->a.eids.begin(), at->a.eids.end(), *ann->ip) == at->a.eids.end()) {
            ctr_.attach_refused_savi.add();
            log::warn("control: MO {:#x} (MAC {}) announces {}, not one of its EIDs: refused", at->a.mo_id,
                      ann->mac.str(), ip_str);
            return;
        }
        if (at->state == AttachState::Deliver && at->port_index == port_index) return;  // already here
        if (at->state == AttachState::Hold && at->port_index == port_index) {
            // It never left (the migration failed or was cancelled): deliver what we hold.
            migrate_abort(at->a.tenant, at->a.mo_id);
            return;
        }
        // Back from the AR we forward to, or moved to another port of ours: attach again.
        StaticAttachment a = at->a;
        a.port = pc.name;
        if (auto err = attach(a); !err.empty()) log::warn("control: re-attach of MO {:#x}: {}", a.mo_id, err);
        else ctr_.attach_detected.add();
        return;
    }
    if (!dir_) {
        ctr_.attach_unknown.add();
        return;
    }
    const uint64_t now = rte_get_tsc_cycles();
    const auto key = std::make_pair(tenant, ann->mac);
    if (auto it = detect_until_.find(key); it != detect_until_.end() && now < it->second) {
        ctr_.attach_holddown.add();  // a lookup is in flight, or the last one found nothing
        return;
    }
    const uint64_t cookie = next_cookie_++;
    detect_cookies_[cookie] = Detect{port_index, tenant, ann->mac, ann->ip, now};
    detect_until_[key] = now + ms_to_tsc(5000);  // until the answer (or the DHT gives up)
    ctr_.attach_lookups.add();
    log::info("control: {} from {} ({}) on {}: looking the MO up", to_string(ann->kind), ann->mac.str(), ip_str, pc.name);
    dir_->resolve_mac(tenant, ann->mac, cookie);
}

void ControlPlane::on_detect_answer(uint64_t cookie, const dir::Event& e) {
    auto it = detect_cookies_.find(cookie);
    if (it == detect_cookies_.end()) return;
    const Detect d = it->second;
    detect_cookies_.erase(it);
    const auto key = std::make_pair(d.tenant, d.mac);
    const uint64_t now = rte_get_tsc_cycles();
    const PortConfig& pc = cfg_.ports[d.port_index];
    const dir::Record& r = e.record;
    if (e.answer != dir::Answer::Found) {
        ctr_.attach_unknown.add();
        const uint32_t ms = cfg_.dht ? std::max<uint32_t>(cfg_.dht->negative_ttl_ms, 100) : 1000;
        detect_until_[key] = now + ms_to_tsc(ms);  // a chatty unknown host cannot flood the DHT
        log::info("control: MAC {} on {}: {} in the LM directory, not attached", d.mac.str(), pc.name,
                  e.answer == dir::Answer::Withdrawn ? "withdrawn" : "not found");
        return;
    }
    detect_until_.erase(key);
    auto refuse = [&](Counter& c, const std::string& why) {
        c.add();
        detect_until_[key] = now + ms_to_tsc(1000);
        log::warn("control: MO {:#x} (MAC {}) on {}: {}: not attached", r.mo, d.mac.str(), pc.name, why);
    };
    if (!(r.mac == d.mac) || r.tenant != d.tenant) return refuse(ctr_.attach_refused_savi, "its record names another MAC or tenant");
    if (d.ip && std::find(r.eids.begin(), r.eids.end(), *d.ip) == r.eids.end())
        return refuse(ctr_.attach_refused_savi, fmt::format("it announced {}, which its record does not list", d.ip->str()));
    // Policy: the port's tenant may host only EIDs inside that tenant's mobile prefixes.
    for (auto& eid : r.eids) {
        bool ok = false;
        for (auto& mp : cfg_.mobile_prefixes)
            if ((!mp.tenant || *mp.tenant == d.tenant) && mp.prefix.contains(eid)) ok = true;
        if (!ok) return refuse(ctr_.attach_refused_policy, fmt::format("EID {} is outside the mobile prefixes of tenant {}", eid.str(), d.tenant));
    }
    StaticAttachment a;
    a.tenant = r.tenant;
    a.mo_id = r.mo;
    a.eids = r.eids;
    a.mac = r.mac;
    a.port = pc.name;
    if (auto err = attach_impl(a, &r); !err.empty()) return refuse(ctr_.attach_refused_policy, err);
    ctr_.attach_detected.add();
    log::info("control: MO {:#x} detected on {} and attached in {:.1f} ms (was at {})", r.mo, pc.name,
              tsc_to_ms(now - d.start_tsc), r.publisher);
}

// ---- LM control packets ----------------------------------------------------------------------

bool ControlPlane::send_lm_control(const IpAddr& to, wire::LmType type, TenantId t, MoId mo, Epoch epoch,
                                   std::span<const uint8_t> payload, uint8_t frag_index, uint8_t frag_count) {
    const bool v6 = to.is_v6();
    const auto& src = v6 ? cfg_.locator_v6 : cfg_.locator_v4;
    const auto& nh = nh_[v6].st;
    if (!src || !nh.resolved) return false;
    LmControlAddr a;
    a.src_mac = ports_[core_index_].mac;
    a.dst_mac = nh.mac;
    a.src = *src;
    a.dst = to;
    a.udp_port = cfg_.udp_port;
    rte_mbuf* m = build_lm_control(pool_, a, type, t, mo, epoch, payload, frag_index, frag_count);
    return m && transmit(m, core_index_);
}

void ControlPlane::send_move_notify(const Attached& at, const std::vector<uint8_t>& env) {
    const unsigned parts = unsigned((env.size() + kMoveNotifyChunk - 1) / kMoveNotifyChunk);
    if (parts == 0 || parts > 15) {
        log::warn("control: signed record of MO {:#x} is {} bytes: too big for a move notification", at.a.mo_id, env.size());
        return;
    }
    for (auto& to : at.notify_to) {
        bool ok = true;
        for (unsigned i = 0; i < parts; ++i) {
            const size_t off = size_t(i) * kMoveNotifyChunk;
            const size_t len = std::min<size_t>(kMoveNotifyChunk, env.size() - off);
            ok &= send_lm_control(to, wire::LmType::MoveNotify, at.a.tenant, at.a.mo_id, at.epoch,
                                  std::span<const uint8_t>(env.data() + off, len), uint8_t(i), uint8_t(parts));
        }
        if (ok) ctr_.move_notify_sent.add();
        log::info("control: move notification for MO {:#x} to {} ({} bytes in {} packet{}){}", at.a.mo_id, to.str(),
                  env.size(), parts, parts > 1 ? "s" : "", ok ? "" : ": not sent (no locator, next hop or mbuf)");
    }
}

void ControlPlane::handle_lm_control(rte_mbuf* m) {
    const auto c = parse_lm_control(m);
    if (!c) {
        ctr_.punt_unhandled.add();
        rte_pktmbuf_free(m);
        return;
    }
    if (c->type == wire::LmType::RefreshHint) on_refresh_hint(*c);
    else on_move_notify(*c);
    rte_pktmbuf_free(m);  // c's payload pointed into m: used up above
}

void ControlPlane::on_move_notify(const LmControl& c) {
    ctr_.move_notify_received.add();
    if (!dir_) {
        ctr_.move_notify_rejected.add();
        return;
    }
    std::vector<uint8_t> env;
    if (c.frag_count == 1) {
        env.assign(c.payload.begin(), c.payload.end());
    } else {
        const auto key = std::make_tuple(c.outer_src, c.tenant, c.mo, c.epoch);
        auto it = notify_parts_.find(key);
        if (it == notify_parts_.end()) {
            if (notify_parts_.size() >= 64) {  // bounded: a flood of first parts cannot grow it
                ctr_.move_notify_rejected.add();
                return;
            }
            it = notify_parts_.emplace(key, Parts{}).first;
            it->second.parts.resize(c.frag_count);
            it->second.deadline_tsc = rte_get_tsc_cycles() + ms_to_tsc(1000);
        }
        Parts& p = it->second;
        if (p.parts.size() != c.frag_count || c.payload.empty()) {
            notify_parts_.erase(it);
            ctr_.move_notify_rejected.add();
            return;
        }
        if (p.parts[c.frag_index].empty()) {
            p.parts[c.frag_index].assign(c.payload.begin(), c.payload.end());
            ++p.have;
        }
        if (p.have < p.parts.size()) return;
        for (auto& part : p.parts) env.insert(env.end(), part.begin(), part.end());
        notify_parts_.erase(it);
    }
    dir::Verdict why = dir::Verdict::Ok;
    const uint64_t t0 = rte_get_tsc_cycles();
    auto r = dir_->accept_envelope(env.data(), env.size(), &why);
    const double verify_ms = tsc_to_ms(rte_get_tsc_cycles() - t0);
    // The header must say what the signed record says: a valid record of another MO or epoch
    // pasted under this header is not a notification for this MO.
    if (!r || r->tenant != c.tenant || r->mo != c.mo || r->epoch != c.epoch || r->withdrawn) {
        ctr_.move_notify_rejected.add();
        log::warn("control: move notification for MO {:#x} from {} rejected: {}", c.mo, c.outer_src.str(),
                  r ? "header and record disagree" : dir::to_string(why));
        return;
    }
    ctr_.move_notify_accepted.add();
    // When it arrived and what verifying it cost: the old AR's part of the handover timeline.
    log::info("control: move notification for MO {:#x} from {} accepted (epoch {:#x}, verified in {:.2f} ms)", c.mo,
              c.outer_src.str(), c.epoch, verify_ms);
    // The record also updates any cache entry we hold for its EIDs, and moves an MO attached here.
    dir::Event ev;
    ev.type = dir::Event::Type::WatchUpdate;
    ev.answer = dir::Answer::Found;
    ev.record = *r;
    for (auto& eid : r->eids) accept_if_held(EidKey::make(r->tenant, eid), ev);
    maybe_moved(*r);
}

void ControlPlane::on_refresh_hint(const LmControl& c) {
    ctr_.hints_received.add();
    if (!dir_) {
        ctr_.hints_ignored.add();
        return;
    }
    const uint64_t now = rte_get_tsc_cycles();
    auto& last = hint_last_[{c.tenant, c.mo}];
    if (last && now - last < ms_to_tsc(cfg_.hint_min_interval_ms)) {
        ctr_.hints_ignored.add();  // acted on recently: the answer is on its way
        return;
    }
    if (hint_last_.size() > 65536) std::erase_if(hint_last_, [&](auto& kv) { return now - kv.second > ms_to_tsc(10000); });
    // EIDs of that MO we hold with an older epoch than the hint claims. The hint is only a hint:
    // the DHT answer (signed, epoch-ordered) decides.
    std::vector<EidKey> ask;
    {
        std::lock_guard g(mu_);
        for (auto& [k, v] : mappings_)
            if (k.tenant() == c.tenant && v.mo_id == c.mo && v.epoch < c.epoch) ask.push_back(k);
    }
    if (ask.empty()) {
        ctr_.hints_ignored.add();
        return;
    }
    last = now;
    ctr_.hints_acted.add();
    for (auto& k : ask) {
        const uint64_t cookie = next_cookie_++;
        hint_cookies_[cookie] = k;
        dir_->resolve(k.tenant(), k.ip(), cookie);
    }
}

void ControlPlane::on_signed(const dir::Event& e) {
    Attached* at;
    {
        std::lock_guard g(mu_);
        auto it = attached_.find({e.record.tenant, e.record.mo});
        if (it == attached_.end()) return;
        at = &it->second;
    }
    if (at->notify_to.empty() || at->epoch != e.record.epoch || at->state == AttachState::Forward) return;
    send_move_notify(*at, e.envelope);
    at->notify_to.clear();
}

void ControlPlane::handover_tick() {
    const uint64_t now = rte_get_tsc_cycles();
    if (now < next_handover_tick_) return;
    next_handover_tick_ = now + ms_to_tsc(50);
    std::erase_if(notify_parts_, [now](auto& kv) { return kv.second.deadline_tsc <= now; });
    std::erase_if(detect_until_, [now](auto& kv) { return kv.second <= now; });
    std::vector<std::pair<TenantId, MoId>> expired;
    {
        std::lock_guard g(mu_);
        for (auto& [id, at] : attached_)
            if (at.state == AttachState::Forward && now >= at.forward_until_tsc) expired.push_back(id);
    }
    for (auto& [t, mo] : expired) {
        ctr_.forward_expired.add();
        detach(t, mo, false);
    }
}

}  // namespace lm
