// Resolution of the core next hop's MAC by ARP (IPv4) and Neighbour Solicitation (IPv6).
// Builds request packets and recognises answers; the control lcore owns the timers.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <optional>

#include "common/types.hpp"

namespace lm {

struct NeighborState {
    bool configured = false;  // a next hop of this family exists
    bool resolved = false;
    bool static_mac = false;
    IpAddr ip;
    MacAddr mac;
    uint64_t probes = 0;
};

struct Neighbor {
    NeighborState st;
    uint64_t next_probe_tsc = 0;
};

// Frame helpers shared by the control lcore's packet builders and parsers (also lm_control.cpp).
// Appends an Ethernet header (+ an 802.1Q tag when vlan is set) and l3_len bytes to m; returns
// where L3 starts, or nullptr if m has no room.
uint8_t* append_frame(rte_mbuf* m, unsigned l3_len, const MacAddr& dst, const MacAddr& src, uint16_t etype,
                      std::optional<uint16_t> vlan = std::nullopt);
// Offset of L3 after an optional VLAN tag, and the EtherType behind it; 0 if m is too short.
unsigned frame_l3_offset(const rte_mbuf* m, uint16_t& etype);

// A 32-byte ND message (NS 135 or NA 136) with one link-layer address option carrying src_mac
// (Source LLA for NS, Target LLA for NA), hop limit 255, checksum filled in.
rte_mbuf* build_nd(rte_mempool* pool, uint8_t type, uint8_t flags, const MacAddr& dst_mac, const uint8_t* dst_ip,
                   const MacAddr& src_mac, const IpAddr& src_ip, const IpAddr& target,
                   std::optional<uint16_t> vlan = std::nullopt);

// ARP request "who has target? tell src" from (src_mac, src_ip). nullptr if the pool is empty.
rte_mbuf* build_arp_request(rte_mempool* pool, const MacAddr& src_mac, const IpAddr& src_ip, const IpAddr& target);
// Neighbour Solicitation for target to its solicited-node multicast address.
rte_mbuf* build_neighbor_solicit(rte_mempool* pool, const MacAddr& src_mac, const IpAddr& src_ip, const IpAddr& target);

// If m (Ethernet frame) is an ARP packet whose sender is `ip`, the sender's MAC.
std::optional<MacAddr> arp_sender_mac(const rte_mbuf* m, const IpAddr& ip);
// If m is a Neighbour Advertisement for target `ip`, the advertised (or source) MAC.
std::optional<MacAddr> na_target_mac(const rte_mbuf* m, const IpAddr& ip);

// Turn an ICMP/ICMPv6 echo request addressed to us into the reply, in place (Ethernet swapped,
// source MAC = our_mac). False if m is not a valid echo request.
bool make_echo_reply(rte_mbuf* m, const MacAddr& our_mac);

}  // namespace lm
