// Per-worker counters. Written by exactly one worker with plain relaxed stores (no lock, no
// atomic RMW on the hot path), read by the control lcore for telemetry.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace lm {

// Every reason a packet can be dropped. Order is ABI for telemetry names below.
#define LM_DROP_REASONS(X)                                                             \
    X(TooShort, "too_short")                   /* frame shorter than its headers */      \
    X(L2NotForUs, "l2_not_for_us")             /* unicast to another MAC */              \
    X(VlanMismatch, "vlan_mismatch")           /* tag absent/other than configured */    \
    X(UnknownEthertype, "unknown_ethertype")                                             \
    X(BadIpHeader, "bad_ip_header")            /* version, IHL, lengths, checksum */     \
    X(BadIpSource, "bad_ip_source")            /* multicast/broadcast/unspecified src */ \
    X(BadArp, "bad_arp")                                                                 \
    X(Multicast, "multicast_dst")              /* multicast/broadcast IP not punted */   \
    X(MartianDst, "martian_dst")               /* 0/8, 127/8, ::, ::1 */                 \
    X(TtlExpired, "ttl_expired")               /* (ICMP Time Exceeded sent or limited) */\
    X(TooBig, "too_big")                       /* (ICMP Frag Needed / PTB sent or limited) */\
    X(TooBigNoDf, "too_big_no_df")             /* IPv4 without DF too big after encap */ \
    X(CacheMiss, "cache_miss")                 /* no mapping, miss buffer off */         \
    X(PendingFull, "pending_full")             /* miss buffer full (total or per EID) */ \
    X(PendingTimeout, "pending_timeout")       /* no answer within pending_timeout_ms */ \
    X(Unresolved, "unresolved")                /* control: no mapping for this EID */    \
    X(NoLocator, "no_local_locator")           /* no locator of the mapping's family */  \
    X(NextHopUnresolved, "nexthop_unresolved") /* core next hop MAC not known yet */     \
    X(NoHeadroom, "no_headroom")                                                         \
    X(NativeDisabled, "native_no_route")       /* native dst but no next hop of family */\
    X(CoreNotLm, "core_not_lm")                /* IP on core port that is not LM */      \
    X(LmBadSource, "lm_bad_source")            /* outer source not in peer prefixes */   \
    X(LmBadUdp, "lm_bad_udp")                  /* UDP length/checksum wrong */           \
    X(LmBadVersion, "lm_bad_version")                                                    \
    X(LmBadHeader, "lm_bad_header")            /* type/next protocol/inner mismatch */   \
    X(LmUnknownMo, "lm_unknown_mo")            /* MO not attached here */                \
    X(DecapTooBig, "decap_too_big")            /* inner packet above access MTU */       \
    X(EcnDrop, "ecn_ce_not_ect")               /* RFC 6040: CE outer over Not-ECT inner */\
    X(ToSelf, "to_self")                       /* IP to gateway/locator not handled */   \
    X(PuntRingFull, "punt_ring_full")                                                    \
    X(TxFull, "tx_full")                       /* NIC queue did not take it */           \
    X(NoMbuf, "no_mbuf")                       /* pool empty when building ICMP */       \
    X(IcmpRateLimited, "icmp_rate_limited")    /* counted in addition to the reason */  \
    X(HoldFull, "hold_full")                   /* hold buffer full (total or per MO) */  \
    X(HoldTimeout, "hold_timeout")             /* held longer than hold_timeout_ms */    \
    X(ForwardLoop, "forward_loop")             /* forwarded back by its fwd target */

enum class Drop : uint8_t {
#define X(e, s) e,
    LM_DROP_REASONS(X)
#undef X
        Count
};

inline constexpr std::array<std::string_view, size_t(Drop::Count)> kDropNames = {
#define X(e, s) s,
    LM_DROP_REASONS(X)
#undef X
};

// Single-writer counter: the owner increments with a plain load+store (compiles to an add),
// other threads read a consistent 64-bit value.
class Counter {
public:
    void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    uint64_t get() const { return v_.load(std::memory_order_relaxed); }
    void reset() { v_.store(0, std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

inline constexpr unsigned kMaxPorts = 8;

struct PortCounters {
    Counter rx_packets, rx_bytes, tx_packets, tx_bytes;
};

#define LM_PATH_COUNTERS(X)                                       \
    X(encap, "encap")                 /* encapsulated to a peer */\
    X(decap, "decap")                 /* decapsulated and delivered */ \
    X(local, "local_delivery")        /* access -> access on this AR */ \
    X(native, "native_forward")       /* outside the mobile prefixes */ \
    X(cache_hit, "cache_hit")                                     \
    X(cache_miss, "cache_miss")                                   \
    X(cache_refresh, "cache_refresh_asked") /* hit on a mapping due for refresh: asked */ \
    X(pending_held, "pending_held")     /* missed, waiting */     \
    X(pending_sent, "pending_released") /* sent after the answer */ \
    X(arp_reply, "arp_reply")                                     \
    X(nd_reply, "nd_advert")                                      \
    X(icmp_sent, "icmp_error_sent")                               \
    X(mss_clamped, "mss_clamped")                                 \
    X(punted, "punted")                                           \
    X(updates_applied, "updates_applied")                         \
    X(update_failed, "update_failed") /* cache full */            \
    X(miss_ring_full, "miss_ring_full")                           \
    X(ctrl_tx, "control_tx")          /* sent for the control lcore */ \
    X(handover_held, "handover_held")           /* MO in Hold: packet kept */ \
    X(handover_released, "handover_released")   /* held packet re-processed */ \
    X(handover_forwarded, "handover_forwarded") /* forwarding pointer: re-encapsulated */ \
    X(hints_sent, "hints_sent")                 /* refresh hints sent */ \
    X(hints_rate_limited, "hints_rate_limited") /* refresh hints not sent: hint_rate */ \
    X(hints_unresolved, "hints_no_nexthop")     /* refresh hints not sent: next hop unknown */

struct alignas(64) WorkerCounters {
#define X(e, s) Counter e;
    LM_PATH_COUNTERS(X)
#undef X
    std::array<Counter, size_t(Drop::Count)> drops;
    std::array<PortCounters, kMaxPorts> ports;

    void drop(Drop d, uint64_t n = 1) { drops[size_t(d)].add(n); }
    uint64_t dropped(Drop d) const { return drops[size_t(d)].get(); }
};

}  // namespace lm
