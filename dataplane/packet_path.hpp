// One worker's packet path, independent of how bursts arrive or leave: process() takes a burst
// received on one port and stages every packet for a tx port, a ring, or frees it with a counter.
// The worker loop (worker.cpp), the unit tests and the benchmark all drive this same class.
//
// Stages (VPP-style, one small function each): parse L2 -> classify L3 -> [ARP/ND answer |
// punt | drop] -> bulk cache lookup -> encap / local delivery / native forward (access side),
// or validate LM -> bulk attachment lookup -> decap (core side).
#pragma once

#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/counters.hpp"
#include "common/ring_msg.hpp"
#include "dataplane/dp_config.hpp"
#include "dataplane/hold_buffer.hpp"
#include "dataplane/locator_cache.hpp"
#include "dataplane/pending.hpp"

namespace lm {

// Packets per rx burst and per pass of the packet path. 64 rather than l3fwd's 32: the
// lookups of a pass overlap their cache misses, and 64 hides more of them (at 1M MOs, 134
// instead of 162 cycles a packet; docs/benchmarks.md).
inline constexpr unsigned kBurst = 64;
static_assert(kBurst <= LocatorCache::kMaxBulk && kBurst <= 255, "bulk lookups and uint8_t burst indices");
inline constexpr unsigned kPrefetchAhead = 4;  // packets whose headers are prefetched ahead of use

// Token bucket for generated packets (ICMP errors, refresh hints), per worker, TSC based:
// per_sec tokens a second, burst max(per_sec / 10, 1), full at start; 0 never allows.
class TokenBucket {
public:
    void init(uint32_t per_sec, uint64_t tsc_hz);
    bool allow(uint64_t now_tsc);

private:
    uint64_t tokens_ = 0, max_ = 0, last_ = 0, cycles_per_token_ = 0;
};

class PacketPath {
public:
    struct Rings {
        rte_ring* miss = nullptr;  // MissMsg, to control (may be null: misses only counted)
        rte_ring* punt = nullptr;  // PuntMsg, to control (may be null: punted packets freed)
    };

    PacketPath(const DpConfig& cfg, WorkerCounters& ctr, LocatorCache& cache, AttachmentTable& attach,
               rte_mempool* pool, Rings rings, uint32_t worker_id);

    // Process a burst received on port index `in` (index into cfg.ports). The burst is consumed.
    // count_rx = false for packets coming back from the miss buffer (already counted).
    void process(uint8_t in, std::span<rte_mbuf*> pkts, bool count_rx = true);

    // Drops packets that waited in the miss buffer longer than pending_timeout_ms.
    void expire_pending(uint64_t now_tsc) {
        if (unsigned n = pending_.expire(now_tsc)) ctr_.drop(Drop::PendingTimeout, n);
    }
    unsigned pending_packets() const { return pending_.packets(); }

    // Drops packets held (handover) longer than hold_timeout_ms.
    void expire_hold(uint64_t now_tsc) {
        if (unsigned n = hold_.expire(now_tsc)) ctr_.drop(Drop::HoldTimeout, n);
    }
    unsigned hold_packets() const { return hold_.packets(); }
    unsigned held(TenantId t, MoId mo) const { return hold_.held(AttachKey::make(t, mo)); }

    // Called between chunks of released held packets (up to hold_per_mo of them leave inside one
    // apply(), more than the tx stage holds): the worker transmits what is staged. Without it
    // (tests) the stage fills up and the excess is counted tx_full.
    using Drain = void (*)(void* ctx);
    void set_drain(Drain fn, void* ctx) {
        drain_ = fn;
        drain_ctx_ = ctx;
    }

    // Packets staged for transmission on port index p since the last clear_staged(p).
    std::span<rte_mbuf*> staged(uint8_t p) { return {tx_[p].pkts.data(), tx_[p].n}; }
    void clear_staged(uint8_t p) { tx_[p].n = 0; }
    // Stage a packet built elsewhere (control lcore's tx ring). False if the stage is full.
    bool stage(uint8_t p, rte_mbuf* m) {
        auto& t = tx_[p];
        if (t.n >= t.pkts.size()) [[unlikely]]
            return false;
        t.pkts[t.n++] = m;
        return true;
    }

    // Applied between bursts: the only way the cache, the attachments or next hops change.
    void apply(const UpdateMsg& u);

    const DpConfig& config() const { return cfg_; }
    const LocatorCache& cache() const { return cache_; }

private:
    struct Meta;  // per-packet parse results, on the stack for one burst

    template <int kClass>
    void access_packet(uint8_t in, rte_mbuf* m, Meta& md, bool& need_lookup);
    template <int kClass>
    void core_packet(uint8_t in, rte_mbuf* m, Meta& md, bool& need_lookup);
    void miss(uint8_t in, rte_mbuf* m, Meta& md);
    void ask_refresh(const EidKey& k, uint32_t now_s);
    static constexpr uint32_t kRefreshRetryS = 5;  // a refresh asked for and not answered: ask again
    template <bool In6>
    void finish_core(rte_mbuf* m, Meta& md, const Attachment& a);
    void core_side(uint8_t in, rte_mbuf* m, Meta& md, const Attachment* a);
    void hold(uint8_t in, rte_mbuf* m, const AttachKey& k);
    void release_held(const AttachKey& k);
    void forward(rte_mbuf* m, Meta& md, const Attachment& a);
    void send_hint(rte_mbuf* m, const Meta& md, Epoch epoch);

    // kFwd: a forwarding pointer re-encapsulates a decapsulated packet (F flag, no ICMP errors:
    // the sender is across the tunnel; counted handover_forwarded instead of encap).
    template <bool In6, bool Out6, bool kFwd = false>
    void encap(uint8_t in, rte_mbuf* m, Meta& md, const MappingValue& v);
    void deliver_local(rte_mbuf* m, Meta& md, uint8_t out, const MacAddr& dst);
    void forward_native(uint8_t in, rte_mbuf* m, Meta& md);
    bool answer_arp(uint8_t in, rte_mbuf* m, unsigned l3);
    bool answer_ns(uint8_t in, rte_mbuf* m, unsigned l3, const IpAddr& target);
    void icmp_error(uint8_t in, rte_mbuf* m, Meta& md, uint8_t type, uint8_t code, uint32_t mtu);
    void punt(uint8_t in, rte_mbuf* m, PuntReason r);
    void drop(rte_mbuf* m, Drop d);
    void send(uint8_t out, rte_mbuf* m);
    void write_l2(rte_mbuf* m, uint8_t out, const MacAddr& dst, const MacAddr& src, uint16_t ethertype);
    void clamp_mss(rte_mbuf* m, Meta& md);

    // Prefix matchers precomputed from cfg_ (mobile prefixes, peer prefixes) so the hot path
    // compares header words against value/mask pairs instead of building IpAddr temporaries.
    struct Match4 {
        uint32_t value, mask;  // network order
        TenantId tenant;
        bool any_tenant;
    };
    struct Match6 {
        uint64_t value[2], mask[2];  // as loaded from the header bytes
        TenantId tenant;
        bool any_tenant;
    };
    bool mobile4(TenantId t, uint32_t a) const;
    bool mobile6(TenantId t, const uint8_t* a) const;
    bool peer4(uint32_t a) const;
    bool peer6(const uint8_t* a) const;

    const DpConfig& cfg_;
    std::vector<Match4> mobile4_, peer4_;
    std::vector<Match6> mobile6_, peer6_;
    uint32_t gw4_be_ = 0, loc4_be_ = 0;
    uint32_t outer4_fixed_sum_ = 0;  // TTL/protocol word + our IPv4 locator, for the outer checksum
    WorkerCounters& ctr_;
    LocatorCache& cache_;
    AttachmentTable& attach_;
    rte_mempool* pool_;
    Rings rings_;
    uint32_t worker_id_;
    uint64_t tsc_hz_ = rte_get_tsc_hz();
    MacAddr nh_mac_[2]{};     // [0] v4, [1] v6; zero = unresolved
    bool nh_ok_[2]{};         // nh_mac_[i] is resolved (checked per packet)
    uint16_t ip_id_ = 0;
    TokenBucket icmp_limiter_;
    TokenBucket hint_limiter_;
    PendingBuffer pending_;
    HoldBuffer hold_;
    Drain drain_ = nullptr;
    void* drain_ctx_ = nullptr;

    struct TxStage {
        std::array<rte_mbuf*, 2 * kBurst> pkts;
        uint16_t n = 0;
    };
    std::array<TxStage, kMaxPorts> tx_{};
};

}  // namespace lm
