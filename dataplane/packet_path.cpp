#include "dataplane/packet_path.hpp"

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include <algorithm>
#include <cstring>

#include "common/lm_wire.hpp"
#include "dataplane/pkt_util.hpp"

namespace lm {

using namespace pkt;

// Per-packet results of the first pass, consumed by the second (after the bulk lookup).
// No initialisers on purpose: a burst's array of 32 is not zeroed per burst; each field is
// written by the stage that produces it before a later stage reads it.
struct PacketPath::Meta {
    uint16_t l3;       // offset of the (outer) IP header
    uint16_t l4;       // offset of the L4 header of that IP packet
    uint16_t inner;    // core: offset of the inner IP packet
    uint16_t len;      // access: IP packet length; core: inner IP packet length
    Family fam;        // access: packet family; core: inner family
    uint8_t proto;     // access: L4 protocol (first header only)
    uint8_t outer_ecn; // core: ECN bits of the outer header
    bool first_frag;   // access: offset 0 (ports present)
    uint16_t etype;    // after VLAN
    uint32_t hash;     // access: inner flow hash (outer UDP source port, flow label)
    EidKey key;        // access: destination EID (forward: only the tenant, for encap)
    AttachKey akey;    // core: (tenant, MO id)
    Epoch lm_epoch;    // core: LM header epoch (stale senders get a refresh hint)
    uint8_t lm_flags;  // core: LM header flags (kFlagForwarded: ping-pong guard)
};

// ---------------------------------------------------------------------------------------------

void TokenBucket::init(uint32_t per_sec, uint64_t tsc_hz) {
    max_ = per_sec ? std::max<uint64_t>(per_sec / 10, 1) : 0;  // burst of 100 ms worth
    tokens_ = max_;
    cycles_per_token_ = per_sec ? std::max<uint64_t>(tsc_hz / per_sec, 1) : 0;
    last_ = 0;
}

bool TokenBucket::allow(uint64_t now) {
    if (!max_) return false;
    if (last_ == 0) last_ = now;
    uint64_t earned = (now - last_) / cycles_per_token_;
    if (earned) {
        tokens_ = std::min(max_, tokens_ + earned);
        last_ += earned * cycles_per_token_;
    }
    if (!tokens_) return false;
    --tokens_;
    return true;
}

// ---------------------------------------------------------------------------------------------

PacketPath::PacketPath(const DpConfig& cfg, WorkerCounters& ctr, LocatorCache& cache, AttachmentTable& attach,
                       rte_mempool* pool, Rings rings, uint32_t worker_id)
    : cfg_(cfg), ctr_(ctr), cache_(cache), attach_(attach), pool_(pool), rings_(rings), worker_id_(worker_id) {
    icmp_limiter_.init(cfg.icmp_rate, rte_get_tsc_hz());
    pending_.configure(cfg.pending_packets, cfg.pending_per_eid, rte_get_tsc_hz() / 1000 * cfg.pending_timeout_ms);
    hint_limiter_.init(cfg.hint_rate, rte_get_tsc_hz());
    hold_.configure(cfg.hold_packets, cfg.hold_per_mo, rte_get_tsc_hz() / 1000 * cfg.hold_timeout_ms);
    auto m4 = [](const Prefix& p, std::optional<TenantId> t) {
        uint32_t mask = p.len ? rte_cpu_to_be_32(~0u << (32 - p.len)) : 0;
        return Match4{p.addr.v4_be() & mask, mask, t.value_or(0), !t.has_value()};
    };
    auto m6 = [](const Prefix& p, std::optional<TenantId> t) {
        uint8_t mb[16] = {};
        for (unsigned i = 0; i < p.len; ++i) mb[i / 8] |= uint8_t(0x80 >> (i % 8));
        Match6 r{};
        std::memcpy(r.mask, mb, 16);
        std::memcpy(r.value, p.addr.b.data(), 16);
        r.value[0] &= r.mask[0];
        r.value[1] &= r.mask[1];
        r.tenant = t.value_or(0);
        r.any_tenant = !t.has_value();
        return r;
    };
    for (auto& mp : cfg.mobile) {
        if (mp.prefix.addr.is_v4()) mobile4_.push_back(m4(mp.prefix, mp.tenant));
        else mobile6_.push_back(m6(mp.prefix, mp.tenant));
    }
    for (auto& p : cfg.peers) {
        if (p.addr.is_v4()) peer4_.push_back(m4(p, std::nullopt));
        else peer6_.push_back(m6(p, std::nullopt));
    }
    if (cfg.has_gw4) gw4_be_ = cfg.gw4.v4_be();
    if (cfg.has_loc4) loc4_be_ = cfg.loc4.v4_be();
    outer4_fixed_sum_ = (64u << 8 | IPPROTO_UDP) + sum_be32(loc4_be_);
}

bool PacketPath::mobile4(TenantId t, uint32_t a) const {
    for (auto& m : mobile4_)
        if ((a & m.mask) == m.value && (m.any_tenant || m.tenant == t)) return true;
    return false;
}

bool PacketPath::mobile6(TenantId t, const uint8_t* a) const {
    uint64_t w[2];
    std::memcpy(w, a, 16);
    for (auto& m : mobile6_)
        if ((w[0] & m.mask[0]) == m.value[0] && (w[1] & m.mask[1]) == m.value[1] && (m.any_tenant || m.tenant == t))
            return true;
    return false;
}

bool PacketPath::peer4(uint32_t a) const {
    for (auto& m : peer4_)
        if ((a & m.mask) == m.value) return true;
    return false;
}

bool PacketPath::peer6(const uint8_t* a) const {
    uint64_t w[2];
    std::memcpy(w, a, 16);
    for (auto& m : peer6_)
        if ((w[0] & m.mask[0]) == m.value[0] && (w[1] & m.mask[1]) == m.value[1]) return true;
    return false;
}

void PacketPath::apply(const UpdateMsg& u) {
    switch (u.op) {
        case UpdateOp::UpsertMapping:
            if (!cache_.upsert(u.key, u.value)) {
                ctr_.update_failed.add();
                ctr_.drop(Drop::CacheMiss, pending_.discard(u.key));
                break;
            }
            // Packets that waited for this EID go out now, through the normal path, a pass at a
            // time with the tx stage drained in between (up to pending_per_eid of them).
            ctr_.pending_sent.add(pending_.release(u.key, [this](uint8_t in, std::span<rte_mbuf*> pk) {
                for (size_t o = 0; o < pk.size(); o += kBurst) {
                    process(in, pk.subspan(o, std::min<size_t>(kBurst, pk.size() - o)), false);
                    if (drain_) drain_(drain_ctx_);
                }
            }));
            break;
        case UpdateOp::MissFailed: ctr_.drop(Drop::Unresolved, pending_.discard(u.key)); break;
        case UpdateOp::DeleteMapping: cache_.erase(u.key); break;
        case UpdateOp::UpsertAttachment: {
            const AttachKey k = AttachKey::make(u.tenant, u.mo_id);
            Attachment a;
            a.port_index = u.port_index;
            a.state = u.state;
            a.mac = u.mac;
            a.epoch = u.epoch;
            a.fwd_epoch = u.fwd_epoch;
            a.fwd_locator = u.fwd_locator;
            if (!attach_.upsert(k, a)) ctr_.update_failed.add();
            // Out of Hold (or never in it): what was held follows the new state, in order.
            if (u.state != AttachState::Hold) release_held(k);
            break;
        }
        case UpdateOp::DeleteAttachment: {
            const AttachKey k = AttachKey::make(u.tenant, u.mo_id);
            attach_.erase(k);
            release_held(k);  // re-processed: dropped lm_unknown_mo, or delivered by a new mapping
            break;
        }
        case UpdateOp::SetNextHop:
            nh_mac_[u.family == Family::V6] = u.mac;
            nh_ok_[u.family == Family::V6] = !u.mac.is_zero();
            break;
        case UpdateOp::Ready: break;  // the worker's start-up barrier (Worker::run)
    }
    ctr_.updates_applied.add();
}

inline void PacketPath::send(uint8_t out, rte_mbuf* m) {
    if (!stage(out, m)) [[unlikely]]
        drop(m, Drop::TxFull);
}

void PacketPath::drop(rte_mbuf* m, Drop d) {
    ctr_.drop(d);
    rte_pktmbuf_free(m);
}

void PacketPath::punt(uint8_t in, rte_mbuf* m, PuntReason r) {
    if (!rings_.punt) return drop(m, Drop::PuntRingFull);
    PuntMsg msg{};
    msg.mbuf = m;
    msg.port_index = in;
    msg.reason = r;
    if (rte_ring_enqueue_elem(rings_.punt, &msg, sizeof msg) != 0) return drop(m, Drop::PuntRingFull);
    ctr_.punted.add();
}

void PacketPath::write_l2(rte_mbuf* m, uint8_t out, const MacAddr& dst, const MacAddr& src, uint16_t ethertype) {
    const DpPort& p = cfg_.ports[out];
    // Callers stripped L2 with rte_pktmbuf_adj, which gives back at least 14 bytes of headroom;
    // the VLAN case needs 4 more, which the default 128-byte headroom always has.
    auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_prepend(m, p.has_vlan ? 18 : 14));
    std::memcpy(eth->dst_addr.addr_bytes, dst.b.data(), 6);
    std::memcpy(eth->src_addr.addr_bytes, src.b.data(), 6);
    if (p.has_vlan) {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
        auto* vh = reinterpret_cast<rte_vlan_hdr*>(eth + 1);
        vh->vlan_tci = rte_cpu_to_be_16(p.vlan);
        vh->eth_proto = rte_cpu_to_be_16(ethertype);
    } else {
        eth->ether_type = rte_cpu_to_be_16(ethertype);
    }
}

// L2: length, destination MAC, VLAN. Returns the L3 offset, or 0 after dropping the packet.
static inline unsigned parse_l2(const DpPort& port, const MacAddr* gw, rte_mbuf* m, uint16_t& etype, Drop& why) {
    if (m->data_len < RTE_ETHER_HDR_LEN) return why = Drop::TooShort, 0;
    auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    const uint8_t* d = eth->dst_addr.addr_bytes;
    if (!(d[0] & 1) && std::memcmp(d, port.mac.b.data(), 6) != 0 && !(gw && std::memcmp(d, gw->b.data(), 6) == 0))
        return why = Drop::L2NotForUs, 0;
    etype = rte_be_to_cpu_16(eth->ether_type);
    unsigned off = RTE_ETHER_HDR_LEN;
    if (etype == RTE_ETHER_TYPE_VLAN) {
        if (m->data_len < RTE_ETHER_HDR_LEN + 4) return why = Drop::TooShort, 0;
        auto* vh = reinterpret_cast<const rte_vlan_hdr*>(eth + 1);
        if (!port.has_vlan || (rte_be_to_cpu_16(vh->vlan_tci) & 0xFFF) != port.vlan) return why = Drop::VlanMismatch, 0;
        etype = rte_be_to_cpu_16(vh->eth_proto);
        off += 4;
    } else if (port.has_vlan) {
        return why = Drop::VlanMismatch, 0;
    }
    return off;
}

// ---------------------------------------------------------------------------------------------
// The burst loop: first pass classifies and handles everything that needs no table, second
// pass does one bulk lookup for the rest (l3fwd style) and finishes those packets.

void PacketPath::process(uint8_t in, std::span<rte_mbuf*> pkts, bool count_rx) {
    const bool core = cfg_.ports[in].role == PortRole::Core;
    const uint32_t now_s = core ? 0 : tsc_seconds(rte_rdtsc(), tsc_hz_);
    auto& pc = ctr_.ports[in];
    while (!pkts.empty()) {
        const unsigned n = std::min<size_t>(pkts.size(), kBurst);
        Meta md[kBurst];
        uint64_t bytes = 0;

        // Stage 1: L2 checks, then the burst is split by EtherType so that every later loop
        // runs one kind of packet: its branches predict well even when IPv4 and IPv6 alternate
        // packet by packet (a mispredicted branch costs more than the rest of a stage).
        uint8_t by_type[3][kBurst];  // 0 IPv4, 1 IPv6, 2 anything else (ARP, ...)
        unsigned nt[3] = {0, 0, 0};
        const DpPort& port = cfg_.ports[in];
        const MacAddr* gw = core ? nullptr : &cfg_.gw_mac;
        for (unsigned i = 0; i < n && i < kPrefetchAhead; ++i) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
        for (unsigned i = 0; i < n; ++i) {
            if (i + kPrefetchAhead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetchAhead], void*));
            rte_mbuf* m = pkts[i];
            bytes += rte_pktmbuf_pkt_len(m);
            uint16_t etype;
            Drop why;
            const unsigned l3 = parse_l2(port, gw, m, etype, why);
            if (!l3) [[unlikely]] {
                drop(m, why);
                continue;
            }
            md[i].l3 = uint16_t(l3);
            md[i].etype = etype;
            // Branch-free split: write the index to every list, advance only the right one.
            const unsigned is4 = etype == RTE_ETHER_TYPE_IPV4, is6 = etype == RTE_ETHER_TYPE_IPV6;
            by_type[0][nt[0]] = by_type[1][nt[1]] = by_type[2][nt[2]] = uint8_t(i);
            nt[0] += is4;
            nt[1] += is6;
            nt[2] += 1 - is4 - is6;
        }
        if (count_rx) {
            pc.rx_packets.add(n);
            pc.rx_bytes.add(bytes);
        }

        // Stage 2: L3 per EtherType; what needs a table lookup is listed in idx.
        uint8_t idx[kBurst];
        unsigned nl = 0;
        auto l3_stage = [&]<int kClass>() {
            for (unsigned j = 0; j < nt[kClass]; ++j) {
                const unsigned i = by_type[kClass][j];
                bool need = false;
                if (core) core_packet<kClass>(in, pkts[i], md[i], need);
                else access_packet<kClass>(in, pkts[i], md[i], need);
                if (need) idx[nl++] = uint8_t(i);
            }
        };
        l3_stage.template operator()<0>();
        l3_stage.template operator()<1>();
        l3_stage.template operator()<2>();
        if (!nl) {
            pkts = pkts.subspan(n);
            continue;
        }

        // Stage 3: one bulk lookup, then the packets are split again by what they become.
        if (core) {
            const AttachKey* keys[kBurst];
            const Attachment* res[kBurst];
            for (unsigned j = 0; j < nl; ++j) keys[j] = &md[idx[j]].akey;
            attach_.lookup_bulk(keys, nl, res);
            // Buckets by inner family (branch-free); 2 = not delivered here: MO not attached,
            // or in handover (Hold, Forward).
            uint8_t by_fam[3][kBurst];
            unsigned nf[3] = {0, 0, 0};
            for (unsigned j = 0; j < nl; ++j) {
                const Attachment* a = res[j];
                const unsigned k = a && a->state == AttachState::Deliver ? unsigned(md[idx[j]].fam == Family::V6) : 2;
                by_fam[0][nf[0]] = by_fam[1][nf[1]] = by_fam[2][nf[2]] = uint8_t(j);
                nf[0] += k == 0;
                nf[1] += k == 1;
                nf[2] += k == 2;
            }
            for (unsigned t = 0; t < nf[0]; ++t) {
                const unsigned j = by_fam[0][t];
                finish_core<false>(pkts[idx[j]], md[idx[j]], *res[j]);
            }
            for (unsigned t = 0; t < nf[1]; ++t) {
                const unsigned j = by_fam[1][t];
                finish_core<true>(pkts[idx[j]], md[idx[j]], *res[j]);
            }
            for (unsigned t = 0; t < nf[2]; ++t) {
                const unsigned j = by_fam[2][t];
                core_side(in, pkts[idx[j]], md[idx[j]], res[j]);
            }
        } else {
            const EidKey* keys[kBurst];
            const MappingValue* res[kBurst];
            for (unsigned j = 0; j < nl; ++j) keys[j] = &md[idx[j]].key;
            cache_.lookup_bulk(keys, nl, res);
            // The values are likely cache misses (1M MOs): prefetch them all, then do the work
            // that needs only the packet (flow hash) while they arrive, then read them.
            for (unsigned j = 0; j < nl; ++j)
                if (res[j]) rte_prefetch0(res[j]);
            for (unsigned j = 0; j < nl; ++j) {
                Meta& d = md[idx[j]];
                d.hash = flow_hash(pkts[idx[j]], d.l3, d.fam, d.l4, d.proto, d.first_frag);
            }
            // Buckets, split branch-free like stage 1: encap by (inner v6, outer v6); misses and
            // local deliveries (rarer) go to a side list. Lists hold positions j into idx/res.
            uint8_t enc[4][kBurst], side[kBurst];
            unsigned n0 = 0, n1 = 0, n2 = 0, n3 = 0, ns = 0;
            for (unsigned j = 0; j < nl; ++j) {
                const MappingValue* v = res[j];
                if (!v || (v->flags & MappingValue::kLocal)) [[unlikely]] {
                    side[ns++] = uint8_t(j);
                    continue;
                }
                // Due for refresh (refresh_s 0 wraps to "never"): traffic flows, ask for it.
                if (v->refresh_s - 1 < now_s) [[unlikely]] ask_refresh(md[idx[j]].key, now_s);
                const unsigned k = unsigned(md[idx[j]].fam == Family::V6) << 1 | unsigned(v->locator.family == Family::V6);
                enc[0][n0] = enc[1][n1] = enc[2][n2] = enc[3][n3] = uint8_t(j);
                n0 += k == 0;
                n1 += k == 1;
                n2 += k == 2;
                n3 += k == 3;
            }
            ctr_.cache_hit.add(n0 + n1 + n2 + n3);
            for (unsigned t = 0; t < n0; ++t) encap<false, false>(in, pkts[idx[enc[0][t]]], md[idx[enc[0][t]]], *res[enc[0][t]]);
            for (unsigned t = 0; t < n1; ++t) encap<false, true>(in, pkts[idx[enc[1][t]]], md[idx[enc[1][t]]], *res[enc[1][t]]);
            for (unsigned t = 0; t < n2; ++t) encap<true, false>(in, pkts[idx[enc[2][t]]], md[idx[enc[2][t]]], *res[enc[2][t]]);
            for (unsigned t = 0; t < n3; ++t) encap<true, true>(in, pkts[idx[enc[3][t]]], md[idx[enc[3][t]]], *res[enc[3][t]]);
            for (unsigned t = 0; t < ns; ++t) {
                const unsigned j = side[t];
                rte_mbuf* m = pkts[idx[j]];
                Meta& d = md[idx[j]];
                if (!res[j]) {
                    miss(in, m, d);
                    continue;
                }
                ctr_.cache_hit.add();
                if (res[j]->flags & MappingValue::kHold) [[unlikely]] {
                    // The MO is leaving this AR: wait with its LM traffic, leave with it.
                    hold(in, m, AttachKey::make(d.key.tenant(), res[j]->mo_id));
                    continue;
                }
                ctr_.local.add();
                decrement_ttl(m, d.l3, d.fam);
                deliver_local(m, d, res[j]->port_index, res[j]->mac);
            }
        }
        pkts = pkts.subspan(n);
    }
}

// ---------------------------------------------------------------------------------------------
// Access side

template <int kClass>
void PacketPath::access_packet(uint8_t in, rte_mbuf* m, Meta& md, bool& need) {
    const DpPort& port = cfg_.ports[in];
    const unsigned l3 = md.l3;
    if constexpr (kClass == 2) {
        if (md.etype == RTE_ETHER_TYPE_ARP) {
            if (!answer_arp(in, m, l3)) punt(in, m, PuntReason::Arp);
            return;
        }
        if (md.etype == RTE_ETHER_TYPE_RARP) return punt(in, m, PuntReason::Rarp);  // QEMU's announce after migration
        return drop(m, Drop::UnknownEthertype);
    }
    if constexpr (kClass == 0) {
        uint16_t total;
        unsigned ihl = check_ipv4(m, l3, total);
        if (!ihl) return drop(m, Drop::BadIpHeader);
        trim_to(m, l3 + total);
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3);
        const uint8_t* s = reinterpret_cast<const uint8_t*>(&ip->src_addr);
        if (s[0] >= 224 || s[0] == 0 || s[0] == 127) return drop(m, Drop::BadIpSource);  // RFC 1812 5.3.7
        const uint32_t dst = ip->dst_addr;
        const uint8_t d0 = reinterpret_cast<const uint8_t*>(&ip->dst_addr)[0];
        md.fam = Family::V4;
        md.len = total;
        md.proto = ip->next_proto_id;
        md.first_frag = (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) == 0;
        md.l4 = uint16_t(l3 + ihl);
        if (cfg_.has_gw4 && dst == gw4_be_) {
            if (ip->next_proto_id == IPPROTO_ICMP) return punt(in, m, PuntReason::LocalIcmp);
            return drop(m, Drop::ToSelf);
        }
        if (d0 >= 224) return drop(m, Drop::Multicast);
        if (d0 == 0 || d0 == 127) return drop(m, Drop::MartianDst);  // RFC 1812 5.3.7
        if (ip->time_to_live <= 1) {
            icmp_error(in, m, md, kIcmpTimeExceeded, 0, 0);
            return drop(m, Drop::TtlExpired);
        }
        if (cfg_.mss_v4 && md.proto == IPPROTO_TCP && md.first_frag) clamp_mss(m, md);
        if (!mobile4(port.tenant, dst)) return forward_native(in, m, md);
        md.key.set_raw(port.tenant, Family::V4, &ip->dst_addr);
        need = true;
        return;
    }
    if constexpr (kClass == 1) {
        if (!check_ipv6(m, l3)) return drop(m, Drop::BadIpHeader);
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, l3);
        unsigned total = 40 + rte_be_to_cpu_16(ip->payload_len);
        trim_to(m, l3 + total);
        if (ip->src_addr[0] == 0xFF || is_loopback6(ip->src_addr)) return drop(m, Drop::BadIpSource);
        md.fam = Family::V6;
        md.first_frag = true;  // ports are hashed only when TCP/UDP follows the fixed header
        md.len = uint16_t(total);
        md.proto = ip->proto;
        md.l4 = uint16_t(l3 + 40);
        // Neighbour discovery and anything for the gateway itself.
        const bool for_gw = cfg_.has_gw6 && eq16(ip->dst_addr, cfg_.gw6.b.data());
        if (for_gw || ip->dst_addr[0] == 0xFF || (ip->dst_addr[0] == 0xFE && (ip->dst_addr[1] & 0xC0) == 0x80)) {
            if (ip->proto == IPPROTO_ICMPV6) {
                if (cfg_.has_gw6 && answer_ns(in, m, l3, cfg_.gw6)) return;
                uint8_t type = icmp6_type(m, l3);
                if (type >= 133 && type <= 137) return punt(in, m, PuntReason::Nd);
                if (for_gw && type == 128) return punt(in, m, PuntReason::LocalIcmp);
            }
            return drop(m, for_gw ? Drop::ToSelf : Drop::Multicast);
        }
        // Past ND: unspecified and link-local sources must not be forwarded (RFC 4291 2.5.2,
        // 2.5.6), nor packets to the unspecified or loopback address.
        if (is_unspecified6(ip->src_addr) || (ip->src_addr[0] == 0xFE && (ip->src_addr[1] & 0xC0) == 0x80))
            return drop(m, Drop::BadIpSource);
        if (is_unspecified6(ip->dst_addr) || is_loopback6(ip->dst_addr)) return drop(m, Drop::MartianDst);
        if (ip->hop_limits <= 1) {
            icmp_error(in, m, md, kIcmp6TimeExceeded, 0, 0);
            return drop(m, Drop::TtlExpired);
        }
        if (cfg_.mss_v6 && md.proto == IPPROTO_TCP) clamp_mss(m, md);
        if (!mobile6(port.tenant, ip->dst_addr)) return forward_native(in, m, md);
        md.key.set_raw(port.tenant, Family::V6, ip->dst_addr);
        need = true;
        return;
    }
}

// A learned mapping used after its refresh_s: ask the control lcore to refresh it from the DHT
// (it answers with a new refresh_s), and ask again only after kRefreshRetryS if nothing comes.
// A mapping no packet uses is never asked for, and the control lcore lets it go at its TTL.
void PacketPath::ask_refresh(const EidKey& k, uint32_t now_s) {
    if (MappingValue* v = cache_.lookup_mut(k)) v->refresh_s = now_s + kRefreshRetryS;
    if (!rings_.miss) return;
    MissMsg mm{k, worker_id_, 1};
    if (rte_ring_enqueue_elem(rings_.miss, &mm, sizeof mm) != 0) ctr_.miss_ring_full.add();
    else ctr_.cache_refresh.add();
}

// A destination the cache does not know: hold the packet and ask the control lcore once per
// EID (later misses for it are coalesced); without a miss buffer, ask and drop.
void PacketPath::miss(uint8_t in, rte_mbuf* m, Meta& md) {
    ctr_.cache_miss.add();
    if (!rings_.miss || !pending_.enabled()) {
        if (rings_.miss) {
            MissMsg mm{md.key, worker_id_};
            if (rte_ring_enqueue_elem(rings_.miss, &mm, sizeof mm) != 0) ctr_.miss_ring_full.add();
        }
        return drop(m, Drop::CacheMiss);
    }
    switch (pending_.hold(md.key, in, m, rte_rdtsc())) {
        case PendingBuffer::Hold::Full: return drop(m, Drop::PendingFull);
        case PendingBuffer::Hold::Added: ctr_.pending_held.add(); return;
        case PendingBuffer::Hold::NewEntry: {
            ctr_.pending_held.add();
            MissMsg mm{md.key, worker_id_};
            if (rte_ring_enqueue_elem(rings_.miss, &mm, sizeof mm) != 0) {
                // Nobody will answer: give the packet up now so the next miss asks again.
                ctr_.miss_ring_full.add();
                ctr_.drop(Drop::CacheMiss, pending_.discard(md.key));
            }
            return;
        }
    }
}

void PacketPath::deliver_local(rte_mbuf* m, Meta& md, uint8_t out, const MacAddr& dst) {
    rte_pktmbuf_adj(m, md.l3);
    write_l2(m, out, dst, cfg_.gw_mac, md.fam == Family::V4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
    send(out, m);
}

void PacketPath::forward_native(uint8_t in, rte_mbuf* m, Meta& md) {
    const DpPort& core = cfg_.ports[cfg_.core_index];
    const MacAddr& nh = nh_mac_[md.fam == Family::V6];
    if (!nh_ok_[md.fam == Family::V6]) return drop(m, Drop::NextHopUnresolved);
    if (md.len > core.mtu) {
        if (md.fam == Family::V6 || ipv4_df(m, md.l3)) {
            const bool v4 = md.fam == Family::V4;
            icmp_error(in, m, md, v4 ? kIcmpDestUnreach : kIcmp6PacketTooBig, v4 ? kIcmpFragNeeded : 0, core.mtu);
            return drop(m, Drop::TooBig);
        }
        return drop(m, Drop::TooBigNoDf);
    }
    decrement_ttl(m, md.l3, md.fam);
    rte_pktmbuf_adj(m, md.l3);
    write_l2(m, cfg_.core_index, nh, core.mac, md.fam == Family::V4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
    send(cfg_.core_index, m);
    ctr_.native.add();
}

// One copy per (inner, outer) family pair: no family test is left for the branch predictor.
template <bool In6, bool Out6, bool kFwd>
void PacketPath::encap(uint8_t in, rte_mbuf* m, Meta& md, const MappingValue& v) {
    constexpr bool out6 = Out6;
    constexpr Family kIn = In6 ? Family::V6 : Family::V4;
    if (out6 ? !cfg_.has_loc6 : !cfg_.has_loc4) return drop(m, Drop::NoLocator);
    const MacAddr& nh = nh_mac_[out6];
    if (!nh_ok_[out6]) [[unlikely]]
        return drop(m, Drop::NextHopUnresolved);
    const DpPort& core = cfg_.ports[cfg_.core_index];
    const unsigned over = out6 ? wire::kOverheadV6 : wire::kOverheadV4;
    constexpr bool in4 = !In6;
    const bool inner_df = in4 ? ipv4_df(m, md.l3) : true;
    if (md.len + over > core.mtu) {
        if (!inner_df) return drop(m, Drop::TooBigNoDf);
        if constexpr (kFwd) return drop(m, Drop::TooBig);  // the sender is behind the tunnel: no ICMP
        unsigned mtu = core.mtu > over ? core.mtu - over : 0;
        icmp_error(in, m, md, in4 ? kIcmpDestUnreach : kIcmp6PacketTooBig, in4 ? kIcmpFragNeeded : 0, in4 ? mtu : std::max(mtu, 1280u));
        return drop(m, Drop::TooBig);
    }
    const uint32_t hash = md.hash;
    decrement_ttl(m, md.l3, kIn);
    const uint8_t tc = traffic_class(m, md.l3, kIn);
    const uint16_t inner_len = md.len;

    rte_pktmbuf_adj(m, md.l3);
    if (rte_pktmbuf_headroom(m) < RTE_ETHER_HDR_LEN + over) return drop(m, Drop::NoHeadroom);
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, uint16_t(RTE_ETHER_HDR_LEN + over)));

    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    std::memcpy(eth->dst_addr.addr_bytes, nh.b.data(), 6);
    std::memcpy(eth->src_addr.addr_bytes, core.mac.b.data(), 6);
    const uint16_t udp_len = uint16_t(wire::kUdpLen + wire::kLmLen + inner_len);
    rte_udp_hdr* udp;
    if constexpr (!out6) {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
        const bool df = cfg_.df == DfPolicy::Set || (cfg_.df == DfPolicy::Copy && inner_df);
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        const uint16_t total = uint16_t(wire::kIpv4Len + udp_len);
        const uint16_t id = df ? 0 : ip_id_++;  // RFC 6864: the ID only matters without DF
        const uint16_t frag = df ? RTE_IPV4_HDR_DF_FLAG : 0;
        const uint32_t dst = v.locator.v4_be();
        ip->type_of_service = tc;  // RFC 6040 normal mode: DSCP and ECN copied
        ip->total_length = rte_cpu_to_be_16(total);
        ip->packet_id = rte_cpu_to_be_16(id);
        ip->fragment_offset = rte_cpu_to_be_16(frag);
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = loc4_be_;
        ip->dst_addr = dst;
        ip->hdr_checksum = ipv4_outer_cksum(outer4_fixed_sum_, tc, total, id, frag, dst);
        udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    } else {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | uint32_t(tc) << 20 | (hash & 0xFFFFF));
        ip->payload_len = rte_cpu_to_be_16(udp_len);
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = 64;
        std::memcpy(ip->src_addr, cfg_.loc6.b.data(), 16);
        std::memcpy(ip->dst_addr, v.locator.b.data(), 16);
        udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    }
    udp->src_port = rte_cpu_to_be_16(uint16_t(wire::kSrcPortBase | (hash & wire::kSrcPortMask)));
    udp->dst_port = rte_cpu_to_be_16(cfg_.udp_port);
    udp->dgram_len = rte_cpu_to_be_16(udp_len);
    udp->dgram_cksum = 0;
    auto* lh = reinterpret_cast<wire::LmHeader*>(udp + 1);
    lh->ver_flags = wire::kVersion << 4 | (kFwd ? wire::kFlagForwarded : 0);
    lh->type = uint8_t(wire::LmType::Data);
    lh->next_proto = in4 ? wire::kNextIpv4 : wire::kNextIpv6;
    lh->reserved0 = 0;
    lh->set_tenant(md.key.tenant());
    lh->reserved1 = 0;
    lh->mo_id_be = rte_cpu_to_be_64(v.mo_id);
    lh->epoch_be = rte_cpu_to_be_64(v.epoch);
    if (out6 && cfg_.udp_csum_v6) [[unlikely]] {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
        udp->dgram_cksum = rte_ipv6_udptcp_cksum_mbuf(m, ip, RTE_ETHER_HDR_LEN + wire::kIpv6Len);
    }
    send(cfg_.core_index, m);
    if constexpr (kFwd) ctr_.handover_forwarded.add();
    else ctr_.encap.add();
}

// ---------------------------------------------------------------------------------------------
// Core side

template <int kClass>  // one copy per EtherType class, see process()
void PacketPath::core_packet(uint8_t in, rte_mbuf* m, Meta& md, bool& need) {
    const uint16_t etype = md.etype;
    const unsigned l3 = md.l3;

    unsigned l4;
    uint16_t udp_expect;
    uint8_t outer_tc;
    bool peer;
    if (etype == RTE_ETHER_TYPE_ARP) {
        if (!answer_arp(in, m, l3)) punt(in, m, PuntReason::Arp);
        return;
    } else if (etype == RTE_ETHER_TYPE_IPV4) {
        uint16_t total;
        unsigned ihl = check_ipv4(m, l3, total);
        if (!ihl) return drop(m, Drop::BadIpHeader);
        trim_to(m, l3 + total);
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3);
        if (!cfg_.has_loc4 || ip->dst_addr != loc4_be_) return drop(m, Drop::CoreNotLm);
        if (ip->next_proto_id == IPPROTO_ICMP) return punt(in, m, PuntReason::LocalIcmp);
        if (ip->next_proto_id != IPPROTO_UDP) return drop(m, Drop::CoreNotLm);
        // LM packets are never fragmented by us (DF policy, PTB); fragments are not reassembled.
        if (rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG))
            return drop(m, Drop::LmBadHeader);
        l4 = l3 + ihl;
        udp_expect = uint16_t(total - ihl);
        outer_tc = ip->type_of_service;
        peer = peer4(ip->src_addr);
    } else if (etype == RTE_ETHER_TYPE_IPV6) {
        if (!check_ipv6(m, l3)) return drop(m, Drop::BadIpHeader);
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, l3);
        unsigned plen = rte_be_to_cpu_16(ip->payload_len);
        trim_to(m, l3 + 40 + plen);
        const bool to_us = cfg_.has_loc6 && eq16(ip->dst_addr, cfg_.loc6.b.data());
        if (ip->proto == IPPROTO_ICMPV6 && (to_us || ip->dst_addr[0] == 0xFF || ip->dst_addr[0] == 0xFE)) {
            if (cfg_.has_loc6 && answer_ns(in, m, l3, cfg_.loc6)) return;
            uint8_t type = icmp6_type(m, l3);
            if (type >= 133 && type <= 137) return punt(in, m, PuntReason::Nd);
            if (to_us && type == 128) return punt(in, m, PuntReason::LocalIcmp);
            return drop(m, Drop::CoreNotLm);
        }
        if (ip->dst_addr[0] == 0xFF) return drop(m, Drop::Multicast);  // MLD and other link noise
        if (!to_us || ip->proto != IPPROTO_UDP) return drop(m, Drop::CoreNotLm);
        l4 = l3 + 40;
        udp_expect = uint16_t(plen);
        outer_tc = uint8_t(rte_be_to_cpu_32(ip->vtc_flow) >> 20);
        peer = peer6(ip->src_addr);
    } else {
        return drop(m, Drop::UnknownEthertype);
    }

    if (m->data_len < l4 + wire::kUdpLen) return drop(m, Drop::LmBadUdp);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, l4);
    if (rte_be_to_cpu_16(udp->dst_port) != cfg_.udp_port) return drop(m, Drop::CoreNotLm);
    if (!peer) return drop(m, Drop::LmBadSource);
    if (rte_be_to_cpu_16(udp->dgram_len) != udp_expect || udp_expect < wire::kUdpLen + wire::kLmLen ||
        m->data_len < l4 + wire::kUdpLen + wire::kLmLen)
        return drop(m, Drop::LmBadUdp);
    if (udp->dgram_cksum != 0) {
        auto* iph = rte_pktmbuf_mtod_offset(m, void*, l3);
        int bad = etype == RTE_ETHER_TYPE_IPV4
                      ? rte_ipv4_udptcp_cksum_mbuf_verify(m, static_cast<rte_ipv4_hdr*>(iph), uint16_t(l4))
                      : rte_ipv6_udptcp_cksum_mbuf_verify(m, static_cast<rte_ipv6_hdr*>(iph), uint16_t(l4));
        if (bad) return drop(m, Drop::LmBadUdp);
    }
    auto* lh = rte_pktmbuf_mtod_offset(m, const wire::LmHeader*, l4 + wire::kUdpLen);
    if (lh->version() != wire::kVersion) return drop(m, Drop::LmBadVersion);
    if (lh->type != uint8_t(wire::LmType::Data)) [[unlikely]] {
        if (lh->type == uint8_t(wire::LmType::RefreshHint) || lh->type == uint8_t(wire::LmType::MoveNotify))
            return punt(in, m, PuntReason::LmControl);
        return drop(m, Drop::LmBadHeader);
    }

    const unsigned inner = l4 + wire::kUdpLen + wire::kLmLen;
    const unsigned inner_len = udp_expect - wire::kUdpLen - wire::kLmLen;
    if (lh->next_proto == wire::kNextIpv4) {
        uint16_t total;
        if (!check_ipv4(m, inner, total) || total != inner_len) return drop(m, Drop::LmBadHeader);
        md.fam = Family::V4;
    } else if (lh->next_proto == wire::kNextIpv6) {
        if (!check_ipv6(m, inner) || 40u + rte_be_to_cpu_16(rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, inner)->payload_len) != inner_len)
            return drop(m, Drop::LmBadHeader);
        md.fam = Family::V6;
    } else {
        return drop(m, Drop::LmBadHeader);
    }
    md.inner = uint16_t(inner);
    md.len = uint16_t(inner_len);
    md.outer_ecn = outer_tc & 0x3;
    md.akey = AttachKey::make(lh->tenant_id(), rte_be_to_cpu_64(lh->mo_id_be));
    md.lm_epoch = rte_be_to_cpu_64(lh->epoch_be);
    md.lm_flags = lh->flags();
    need = true;
}

// RFC 6040 section 4.2 decapsulation: outer CE survives into an ECN-capable inner header
// (Not-ECT inner: false, the caller drops), and outer ECT(1) over inner ECT(0) becomes ECT(1).
static inline bool decap_ecn(rte_mbuf* m, unsigned inner, Family f, uint8_t outer_ecn) {
    if (outer_ecn == 0x3 || outer_ecn == 0x1) {
        const uint8_t inner_ecn = traffic_class(m, inner, f) & 0x3;
        if (outer_ecn == 0x3) {
            if (inner_ecn == 0) return false;
            if (inner_ecn != 0x3) set_ecn(m, inner, f, 0x3);
        } else if (inner_ecn == 0x2) {
            set_ecn(m, inner, f, 0x1);
        }
    }
    return true;
}

template <bool In6>
void PacketPath::finish_core(rte_mbuf* m, Meta& md, const Attachment& att) {
    constexpr Family kIn = In6 ? Family::V6 : Family::V4;
    // A sender that used an older epoch than ours is behind (the MO came here since): tell it,
    // and deliver anyway. Epoch 0 = static mapping, never stale.
    if (md.lm_epoch < att.epoch && md.lm_epoch != 0) [[unlikely]]
        send_hint(m, md, att.epoch);
    if (!decap_ecn(m, md.inner, kIn, md.outer_ecn)) return drop(m, Drop::EcnDrop);
    // The ingress AR enforced its core MTU; an inner packet larger than our access link cannot be
    // delivered (no fragmentation here) and its sender is across the tunnel: count it.
    if (md.len > cfg_.ports[att.port_index].mtu) return drop(m, Drop::DecapTooBig);
    rte_pktmbuf_adj(m, md.inner);
    write_l2(m, att.port_index, att.mac, cfg_.gw_mac, In6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    send(att.port_index, m);
    ctr_.decap.add();
}

// LM packets for an MO that is not delivered here: unknown, held (migrate-begin) or forwarded.
void PacketPath::core_side(uint8_t in, rte_mbuf* m, Meta& md, const Attachment* a) {
    if (!a) return drop(m, Drop::LmUnknownMo);
    if (a->state == AttachState::Hold) return hold(in, m, md.akey);
    if (a->state == AttachState::Forward) return forward(m, md, *a);
    drop(m, Drop::LmUnknownMo);  // a state this code does not know
}

// Keeps the packet as received (core: still encapsulated; access: before TTL and L2 rewrite),
// so that its release runs it through process() like a new arrival.
void PacketPath::hold(uint8_t in, rte_mbuf* m, const AttachKey& k) {
    if (!hold_.hold(k, in, m, rte_rdtsc())) return drop(m, Drop::HoldFull);
    ctr_.handover_held.add();
}

void PacketPath::release_held(const AttachKey& k) {
    ctr_.handover_released.add(hold_.release(k, [this](uint8_t in, std::span<rte_mbuf*> pk) {
        process(in, pk, false);
        if (drain_) drain_(drain_ctx_);
    }));
}

// Forwarding pointer: the MO moved to the AR at a.fwd_locator. The inner packet is
// re-encapsulated to it with the new epoch and the F flag, through the access side's encap.
void PacketPath::forward(rte_mbuf* m, Meta& md, const Attachment& a) {
    if (is_unspecified6(a.fwd_locator.b.data())) return drop(m, Drop::NoLocator);  // Forward without a target
    const bool outer6 = md.etype == RTE_ETHER_TYPE_IPV6;
    const uint8_t* osrc = rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l3 + (outer6 ? 8 : 12));
    const bool from_target = (a.fwd_locator.family == Family::V6) == outer6 &&
                             std::memcmp(osrc, a.fwd_locator.b.data(), outer6 ? 16 : 4) == 0;
    if (from_target) {
        // The new AR sent it back to us: it thinks the MO is here, we think it is there.
        if (md.lm_flags & wire::kFlagForwarded) return drop(m, Drop::ForwardLoop);
    } else {
        send_hint(m, md, a.fwd_epoch);  // the sender still uses the old locator
    }
    const bool in6 = md.fam == Family::V6;
    const unsigned inner = md.inner;
    if (!decap_ecn(m, inner, md.fam, md.outer_ecn)) return drop(m, Drop::EcnDrop);
    // Meta now describes the inner packet as access_packet would have (encap reads l3, len,
    // hash, key.tenant; too-big reads l4/proto only for ICMP, which kFwd never sends).
    if (in6) {
        auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, inner);
        if (ip->hop_limits <= 1) return drop(m, Drop::TtlExpired);
        md.proto = ip->proto;
        md.l4 = uint16_t(inner + 40);
        md.first_frag = true;
    } else {
        auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, inner);
        if (ip->time_to_live <= 1) return drop(m, Drop::TtlExpired);
        md.proto = ip->next_proto_id;
        md.l4 = uint16_t(inner + (ip->version_ihl & 0xF) * 4u);
        md.first_frag = (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) == 0;
    }
    md.l3 = uint16_t(inner);
    md.key.tenant_family = md.akey.tenant << 8 | uint32_t(md.fam);
    md.hash = flow_hash(m, inner, md.fam, md.l4, md.proto, md.first_frag);
    MappingValue v;
    v.mo_id = md.akey.mo_id;
    v.epoch = a.fwd_epoch;
    v.locator = a.fwd_locator;
    const uint8_t core = cfg_.core_index;
    const bool out6 = a.fwd_locator.family == Family::V6;
    if (in6) out6 ? encap<true, true, true>(core, m, md, v) : encap<true, false, true>(core, m, md, v);
    else out6 ? encap<false, true, true>(core, m, md, v) : encap<false, false, true>(core, m, md, v);
}

// Refresh hint (docs/protocol.md, "Refresh hint"): header-only LM packet of type 1 from our
// locator to the outer source of m, same outer family, carrying our epoch for the MO. Rate
// limited per worker; never consumes m.
void PacketPath::send_hint(rte_mbuf* m, const Meta& md, Epoch epoch) {
    const bool v6 = md.etype == RTE_ETHER_TYPE_IPV6;
    if (!nh_ok_[v6]) return ctr_.hints_unresolved.add();
    if (!hint_limiter_.allow(rte_rdtsc())) return ctr_.hints_rate_limited.add();
    rte_mbuf* n = rte_pktmbuf_alloc(pool_);
    if (!n) return ctr_.drop(Drop::NoMbuf);
    const unsigned ip_len = v6 ? wire::kIpv6Len : wire::kIpv4Len;
    const uint16_t udp_len = uint16_t(wire::kUdpLen + wire::kLmLen);
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(n, uint16_t(RTE_ETHER_HDR_LEN + ip_len + udp_len)));
    if (!p) {
        rte_pktmbuf_free(n);
        return ctr_.drop(Drop::NoMbuf);
    }
    const DpPort& core = cfg_.ports[cfg_.core_index];
    const uint8_t* osrc = rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l3 + (v6 ? 8 : 12));
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    std::memcpy(eth->dst_addr.addr_bytes, nh_mac_[v6].b.data(), 6);
    std::memcpy(eth->src_addr.addr_bytes, core.mac.b.data(), 6);
    eth->ether_type = rte_cpu_to_be_16(v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    rte_udp_hdr* udp;
    if (!v6) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->type_of_service = 0xC0;  // CS6, network control (as our ICMP errors)
        ip->total_length = rte_cpu_to_be_16(uint16_t(wire::kIpv4Len + udp_len));
        ip->packet_id = 0;
        ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);  // atomic datagram (RFC 6864)
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = loc4_be_;
        std::memcpy(&ip->dst_addr, osrc, 4);
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    } else {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | 0xC0u << 20);
        ip->payload_len = rte_cpu_to_be_16(udp_len);
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = 64;
        std::memcpy(ip->src_addr, cfg_.loc6.b.data(), 16);
        std::memcpy(ip->dst_addr, osrc, 16);
        udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    }
    // Source port: constant per MO, so a peer's RSS keeps one MO's hints on one queue.
    const uint64_t mo_be = rte_cpu_to_be_64(md.akey.mo_id);
    uint32_t h = rte_hash_crc(&mo_be, 8, md.akey.tenant);
    h ^= h >> 16;
    udp->src_port = rte_cpu_to_be_16(uint16_t(wire::kSrcPortBase | (h & wire::kSrcPortMask)));
    udp->dst_port = rte_cpu_to_be_16(cfg_.udp_port);
    udp->dgram_len = rte_cpu_to_be_16(udp_len);
    udp->dgram_cksum = 0;
    auto* lh = reinterpret_cast<wire::LmHeader*>(udp + 1);
    lh->ver_flags = wire::kVersion << 4;
    lh->type = uint8_t(wire::LmType::RefreshHint);
    lh->next_proto = 0;
    lh->reserved0 = 0;
    lh->set_tenant(md.akey.tenant);
    lh->reserved1 = 0;
    lh->mo_id_be = mo_be;
    lh->epoch_be = rte_cpu_to_be_64(epoch);
    if (v6 && cfg_.udp_csum_v6)
        udp->dgram_cksum = rte_ipv6_udptcp_cksum(reinterpret_cast<rte_ipv6_hdr*>(eth + 1), udp);
    send(cfg_.core_index, n);
    ctr_.hints_sent.add();
}

// ---------------------------------------------------------------------------------------------
// ARP / ND answers for the anycast gateway (access) and the locators (core), in place.

bool PacketPath::answer_arp(uint8_t in, rte_mbuf* m, unsigned l3) {
    const DpPort& port = cfg_.ports[in];
    if (m->data_len < l3 + sizeof(rte_arp_hdr)) {
        drop(m, Drop::BadArp);
        return true;
    }
    auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, l3);
    if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) || arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
        arp->arp_hlen != 6 || arp->arp_plen != 4) {
        drop(m, Drop::BadArp);
        return true;
    }
    if (arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST)) return false;
    const bool access = port.role == PortRole::Access;
    const IpAddr* ours = access ? (cfg_.has_gw4 ? &cfg_.gw4 : nullptr) : (cfg_.has_loc4 ? &cfg_.loc4 : nullptr);
    if (!ours || std::memcmp(&arp->arp_data.arp_tip, ours->b.data(), 4) != 0) return false;
    if (arp->arp_data.arp_sip == arp->arp_data.arp_tip) return false;  // gratuitous: control's business
    const MacAddr& mac = access ? cfg_.gw_mac : port.mac;
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->dst_addr = arp->arp_data.arp_sha;
    std::memcpy(eth->src_addr.addr_bytes, mac.b.data(), 6);
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    arp->arp_data.arp_tha = arp->arp_data.arp_sha;
    std::memcpy(arp->arp_data.arp_sha.addr_bytes, mac.b.data(), 6);
    uint32_t sip = arp->arp_data.arp_sip;
    arp->arp_data.arp_sip = arp->arp_data.arp_tip;
    arp->arp_data.arp_tip = sip;
    trim_to(m, l3 + sizeof(rte_arp_hdr));
    send(in, m);
    ctr_.arp_reply.add();
    return true;
}

bool PacketPath::answer_ns(uint8_t in, rte_mbuf* m, unsigned l3, const IpAddr& target) {
    const DpPort& port = cfg_.ports[in];
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, l3);
    const unsigned icmp = l3 + 40;
    // RFC 4861 7.1.1: hop limit 255, ICMP length >= 24, code 0, valid checksum.
    if (ip->proto != IPPROTO_ICMPV6 || ip->hop_limits != 255 || rte_be_to_cpu_16(ip->payload_len) < 24 ||
        m->data_len < icmp + 24)
        return false;
    auto* h = rte_pktmbuf_mtod_offset(m, uint8_t*, icmp);
    if (h[0] != 135 || h[1] != 0 || std::memcmp(h + 8, target.b.data(), 16) != 0) return false;
    if (rte_ipv6_udptcp_cksum_mbuf_verify(m, ip, uint16_t(icmp)) != 0) return false;
    // RFC 4861 7.1.1: every option must have a non-zero length.
    for (unsigned off = 24, plen = rte_be_to_cpu_16(ip->payload_len); off + 2 <= plen;) {
        if (m->data_len < icmp + off + 2 || h[off + 1] == 0) return false;
        off += h[off + 1] * 8u;
    }
    // A DAD probe (unspecified source) for our address is defended with an NA to all-nodes,
    // Solicited flag clear (RFC 4861 7.2.4): another node must not take the gateway's address.
    static constexpr uint8_t kUnspec[16] = {};
    const bool dad = std::memcmp(ip->src_addr, kUnspec, 16) == 0;
    const unsigned need = icmp + 32;
    if (m->nb_segs != 1 || need > m->data_len + rte_pktmbuf_tailroom(m)) return false;
    const MacAddr& mac = port.role == PortRole::Access ? cfg_.gw_mac : port.mac;
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    static constexpr uint8_t kAllNodes[16] = {0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static constexpr uint8_t kAllNodesMac[6] = {0x33, 0x33, 0, 0, 0, 1};
    if (dad) std::memcpy(eth->dst_addr.addr_bytes, kAllNodesMac, 6);
    else eth->dst_addr = eth->src_addr;
    std::memcpy(eth->src_addr.addr_bytes, mac.b.data(), 6);
    std::memcpy(ip->dst_addr, dad ? kAllNodes : ip->src_addr, 16);
    std::memcpy(ip->src_addr, target.b.data(), 16);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(32);
    ip->hop_limits = 255;
    m->data_len = m->pkt_len = uint16_t(need);
    h[0] = 136;
    h[1] = 0;
    h[2] = h[3] = 0;
    const uint32_t flags = rte_cpu_to_be_32(dad ? 0xA0000000 : 0xE0000000);  // Router | Solicited | Override
    std::memcpy(h + 4, &flags, 4);
    // h+8: target already in place
    h[24] = 2;  // Target Link-Layer Address option
    h[25] = 1;
    std::memcpy(h + 26, mac.b.data(), 6);
    uint16_t ck = rte_ipv6_udptcp_cksum_mbuf(m, ip, uint16_t(icmp));
    std::memcpy(h + 2, &ck, 2);
    send(in, m);
    ctr_.nd_reply.add();
    return true;
}

// ---------------------------------------------------------------------------------------------
// ICMP errors (Time Exceeded, Fragmentation Needed / Packet Too Big), rate limited per worker.

void PacketPath::icmp_error(uint8_t in, rte_mbuf* m, Meta& md, uint8_t type, uint8_t code, uint32_t mtu) {
    const DpPort& port = cfg_.ports[in];
    if (is_icmp_error_or_fragment(m, md.l3, md.fam)) return;  // never an error about an error
    if (rte_pktmbuf_mtod(m, const rte_ether_hdr*)->dst_addr.addr_bytes[0] & 1) return;  // nor about L2 multicast (RFC 1812 4.3.2.7)
    const bool v4 = md.fam == Family::V4;
    const IpAddr* src = v4 ? (cfg_.has_gw4 ? &cfg_.gw4 : cfg_.has_loc4 ? &cfg_.loc4 : nullptr)
                           : (cfg_.has_gw6 ? &cfg_.gw6 : cfg_.has_loc6 ? &cfg_.loc6 : nullptr);
    if (port.role == PortRole::Core) src = v4 ? (cfg_.has_loc4 ? &cfg_.loc4 : nullptr) : (cfg_.has_loc6 ? &cfg_.loc6 : nullptr);
    if (!src) return;
    if (!icmp_limiter_.allow(rte_rdtsc())) return ctr_.drop(Drop::IcmpRateLimited);
    rte_mbuf* n = rte_pktmbuf_alloc(pool_);
    if (!n) return ctr_.drop(Drop::NoMbuf);

    // Quote as much of the offending packet as fits the minimum MTU (RFC 1812 4.3.2.3, RFC 4443 2.4).
    const unsigned ip_len = v4 ? 20 : 40;
    const unsigned avail = rte_pktmbuf_pkt_len(m) - md.l3;
    const unsigned quote = std::min(avail, (v4 ? 576u : 1280u) - ip_len - 8);
    const unsigned l2 = port.has_vlan ? 18 : 14;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(n, uint16_t(l2 + ip_len + 8 + quote)));
    if (!p) {
        rte_pktmbuf_free(n);
        return ctr_.drop(Drop::NoMbuf);
    }
    rte_pktmbuf_adj(n, uint16_t(l2));
    auto* ipb = rte_pktmbuf_mtod(n, uint8_t*);
    auto* icmp = ipb + ip_len;
    const void* q = rte_pktmbuf_read(m, md.l3, quote, icmp + 8);  // copies only across segments
    if (q != icmp + 8) std::memcpy(icmp + 8, q, quote);
    icmp[0] = type;
    icmp[1] = code;
    icmp[2] = icmp[3] = 0;
    const uint32_t param = rte_cpu_to_be_32(mtu);  // v4: next-hop MTU in the low 16 bits; v6: MTU
    std::memcpy(icmp + 4, &param, 4);
    const auto* orig = rte_pktmbuf_mtod_offset(m, const uint8_t*, md.l3);
    if (v4) {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(ipb);
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->type_of_service = 0xC0;  // CS6, network control
        ip->total_length = rte_cpu_to_be_16(uint16_t(20 + 8 + quote));
        ip->packet_id = 0;
        ip->fragment_offset = 0;
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_ICMP;
        std::memcpy(&ip->src_addr, src->b.data(), 4);
        std::memcpy(&ip->dst_addr, orig + 12, 4);
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        uint16_t ck = uint16_t(~rte_raw_cksum(icmp, 8 + quote));
        std::memcpy(icmp + 2, &ck, 2);
    } else {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(ipb);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
        ip->payload_len = rte_cpu_to_be_16(uint16_t(8 + quote));
        ip->proto = IPPROTO_ICMPV6;
        ip->hop_limits = 64;
        std::memcpy(ip->src_addr, src->b.data(), 16);
        std::memcpy(ip->dst_addr, orig + 8, 16);
        uint16_t ck = rte_ipv6_udptcp_cksum(ip, icmp);
        std::memcpy(icmp + 2, &ck, 2);
    }
    auto* oeth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    MacAddr back;
    std::memcpy(back.b.data(), oeth->src_addr.addr_bytes, 6);
    write_l2(n, in, back, port.role == PortRole::Access ? cfg_.gw_mac : port.mac, v4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);
    send(in, n);
    ctr_.icmp_sent.add();
}

// RFC 879 / 6691: lower the MSS option of TCP SYNs so encapsulated segments fit the core MTU.
void PacketPath::clamp_mss(rte_mbuf* m, Meta& md) {
    const uint16_t clamp = md.fam == Family::V4 ? cfg_.mss_v4 : cfg_.mss_v6;
    if (m->data_len < md.l4 + sizeof(rte_tcp_hdr)) return;
    auto* tcp = rte_pktmbuf_mtod_offset(m, rte_tcp_hdr*, md.l4);
    if (!(tcp->tcp_flags & RTE_TCP_SYN_FLAG)) return;
    const unsigned doff = (tcp->data_off >> 4) * 4u;
    if (doff < 20 || m->data_len < md.l4 + doff) return;
    auto* opt = reinterpret_cast<uint8_t*>(tcp);
    for (unsigned i = 20; i < doff;) {
        uint8_t kind = opt[i];
        if (kind == 0) break;
        if (kind == 1) { ++i; continue; }
        if (i + 1 >= doff) break;
        uint8_t len = opt[i + 1];
        if (len < 2 || i + len > doff) break;
        if (kind == 2 && len == 4) {
            uint16_t old_be;
            std::memcpy(&old_be, opt + i + 2, 2);
            if (rte_be_to_cpu_16(old_be) > clamp) {
                uint16_t new_be = rte_cpu_to_be_16(clamp);
                std::memcpy(opt + i + 2, &new_be, 2);
                tcp->cksum = csum_replace16(tcp->cksum, old_be, new_be);
                ctr_.mss_clamped.add();
            }
            break;
        }
        i += len;
    }
}

}  // namespace lm
