// Small header helpers for the packet path: validation, TTL, ECN, flow hash, checksums.
// All inline, all bounds-checked against the first segment before touching a byte.
#pragma once

#include <rte_byteorder.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <cstring>

#include "common/types.hpp"

namespace lm::pkt {

// ICMP types we generate (DPDK 22.11 names only the echo types).
inline constexpr uint8_t kIcmpDestUnreach = 3, kIcmpFragNeeded = 4, kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmp6PacketTooBig = 2, kIcmp6TimeExceeded = 3;

// Ones' complement sum of a 20-byte header, folded to 16 bits (not complemented): five 32-bit
// adds instead of rte_raw_cksum's loop. Valid header <=> 0xFFFF.
inline uint16_t ipv4_sum20(const void* h) {
    uint32_t w[5];
    std::memcpy(w, h, 20);
    uint64_t s = uint64_t(w[0]) + w[1] + w[2] + w[3] + w[4];
    s = (s & 0xFFFFFFFF) + (s >> 32);
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    return uint16_t(s);
}

// Sum of the two 16-bit halves of a network-order 32-bit word, in host order (for checksums).
inline uint32_t sum_be32(uint32_t be) {
    uint32_t h = rte_be_to_cpu_32(be);
    return (h >> 16) + (h & 0xFFFF);
}

// Header checksum of an outer IPv4 header (IHL 5) computed from its field values, so the
// header just written need not be read back (that read stalls on store forwarding).
// `fixed` = sum of the words that never change per worker: 0x4500-less TTL/proto and source.
inline uint16_t ipv4_outer_cksum(uint32_t fixed, uint8_t tos, uint16_t total, uint16_t id, uint16_t frag, uint32_t dst_be) {
    uint32_t s = fixed + (0x4500u | tos) + total + id + frag + sum_be32(dst_be);
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    return rte_cpu_to_be_16(uint16_t(~s));
}

inline bool is_unspecified6(const uint8_t* a) {
    uint64_t w[2];
    std::memcpy(w, a, 16);
    return (w[0] | w[1]) == 0;
}

inline bool is_loopback6(const uint8_t* a) {
    uint64_t w[2];
    std::memcpy(w, a, 16);
    return w[0] == 0 && w[1] == rte_cpu_to_be_64(1);
}

inline bool eq16(const uint8_t* a, const uint8_t* b) {
    uint64_t x[2], y[2];
    std::memcpy(x, a, 16);
    std::memcpy(y, b, 16);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}

// Validates an IPv4 header at offset l3: version, IHL, total length against the frame and the
// header checksum. Returns the header length (20..60) or 0 when invalid.
inline unsigned check_ipv4(const rte_mbuf* m, unsigned l3, uint16_t& total) {
    if (m->data_len < l3 + 20) return 0;
    auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, l3);
    if ((ip->version_ihl >> 4) != 4) return 0;
    unsigned ihl = (ip->version_ihl & 0xF) * 4u;
    if (ihl < 20 || m->data_len < l3 + ihl) return 0;
    total = rte_be_to_cpu_16(ip->total_length);
    if (total < ihl || total > rte_pktmbuf_pkt_len(m) - l3) return 0;
    if ((ihl == 20 ? ipv4_sum20(ip) : rte_raw_cksum(ip, ihl)) != 0xFFFF) return 0;
    return ihl;
}

// Validates an IPv6 fixed header at offset l3: version and payload length against the frame.
inline bool check_ipv6(const rte_mbuf* m, unsigned l3) {
    if (m->data_len < l3 + 40) return false;
    auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, l3);
    if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6) return false;
    return 40u + rte_be_to_cpu_16(ip->payload_len) <= rte_pktmbuf_pkt_len(m) - l3;
}

// Drops Ethernet padding (and anything else past the IP packet) so lengths stay consistent.
inline void trim_to(rte_mbuf* m, unsigned len) {
    if (rte_pktmbuf_pkt_len(m) > len) rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_pkt_len(m) - len));
}

inline uint8_t icmp6_type(const rte_mbuf* m, unsigned l3) {
    return m->data_len > l3 + 40 ? *rte_pktmbuf_mtod_offset(m, const uint8_t*, l3 + 40) : 0;
}

inline bool ipv4_df(const rte_mbuf* m, unsigned l3) {
    auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, l3);
    return ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
}

// TTL / hop limit minus one; the IPv4 checksum is patched incrementally (RFC 1141).
inline void decrement_ttl(rte_mbuf* m, unsigned l3, Family f) {
    if (f == Family::V4) {
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3);
        uint32_t ck = ip->hdr_checksum;
        ck += rte_cpu_to_be_16(0x0100);
        ip->hdr_checksum = uint16_t(ck + (ck >= 0xFFFF));
        --ip->time_to_live;
    } else {
        --rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, l3)->hop_limits;
    }
}

inline uint8_t traffic_class(const rte_mbuf* m, unsigned l3, Family f) {
    if (f == Family::V4) return rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, l3)->type_of_service;
    return uint8_t(rte_be_to_cpu_32(rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, l3)->vtc_flow) >> 20);
}

// Set the 2 ECN bits (RFC 3168: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE).
inline void set_ecn(rte_mbuf* m, unsigned l3, Family f, uint8_t ecn) {
    if (f == Family::V4) {
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3);
        ip->type_of_service = uint8_t((ip->type_of_service & ~0x3) | ecn);
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
    } else {
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, l3);
        ip->vtc_flow = (ip->vtc_flow & ~rte_cpu_to_be_32(0x3u << 20)) | rte_cpu_to_be_32(uint32_t(ecn) << 20);
    }
}

// RFC 1624 incremental update of a ones' complement checksum for one changed 16-bit word.
inline uint16_t csum_replace16(uint16_t ck, uint16_t old_v, uint16_t new_v) {
    uint32_t s = uint16_t(~ck) + uint32_t(uint16_t(~old_v)) + new_v;
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    return uint16_t(~s);
}

// Hash of the inner flow for the outer UDP source port and IPv6 flow label: addresses and
// protocol always, ports only when they are there (first fragment, TCP/UDP/SCTP right after IP).
inline uint32_t flow_hash(const rte_mbuf* m, unsigned l3, Family f, unsigned l4, uint8_t proto, bool first_frag) {
    const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, l3);
    uint32_t h = f == Family::V4 ? rte_hash_crc(ip + 12, 8, proto) : rte_hash_crc(ip + 8, 32, proto);
    if (first_frag && (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) && m->data_len >= l4 + 4) {
        uint32_t ports;
        std::memcpy(&ports, rte_pktmbuf_mtod_offset(m, const uint8_t*, l4), 4);
        h = rte_hash_crc_4byte(ports, h);
    } else if (f == Family::V6) {
        h = rte_hash_crc_4byte(rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, l3)->vtc_flow & rte_cpu_to_be_32(0xFFFFF), h);
    }
    return h ^ (h >> 16);
}

// RFC 1812 / RFC 4443: no ICMP error about an ICMP error or a non-first fragment.
inline bool is_icmp_error_or_fragment(const rte_mbuf* m, unsigned l3, Family f) {
    const uint8_t* ip = rte_pktmbuf_mtod_offset(m, const uint8_t*, l3);
    if (f == Family::V4) {
        auto* h = reinterpret_cast<const rte_ipv4_hdr*>(ip);
        if (rte_be_to_cpu_16(h->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) return true;
        unsigned ihl = (h->version_ihl & 0xF) * 4u;
        if (h->next_proto_id == IPPROTO_ICMP && m->data_len > l3 + ihl) {
            uint8_t t = ip[ihl];
            return t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
        }
        return false;
    }
    // Walk the extension headers (bounded) to find an ICMPv6 error or a non-first fragment.
    uint8_t nh = reinterpret_cast<const rte_ipv6_hdr*>(ip)->proto;
    unsigned off = l3 + 40;
    for (int i = 0; i < 8; ++i) {
        if (nh == IPPROTO_ICMPV6) return m->data_len > off && ip[off - l3] < 128;
        if (m->data_len < off + 8) return false;
        const uint8_t* e = ip + (off - l3);
        if (nh == IPPROTO_FRAGMENT) {
            if ((uint16_t(e[2]) << 8 | e[3]) & 0xFFF8) return true;  // offset != 0
            nh = e[0];
            off += 8;
        } else if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
            nh = e[0];
            off += (e[1] + 1u) * 8;
        } else {
            return false;
        }
    }
    return false;
}

}  // namespace lm::pkt
