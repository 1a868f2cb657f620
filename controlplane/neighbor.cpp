#include "controlplane/neighbor.hpp"

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include <cstring>

namespace lm {

uint8_t* append_frame(rte_mbuf* m, unsigned l3_len, const MacAddr& dst, const MacAddr& src, uint16_t etype,
                      std::optional<uint16_t> vlan) {
    const unsigned l2 = vlan ? RTE_ETHER_HDR_LEN + 4 : RTE_ETHER_HDR_LEN;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(l2 + l3_len)));
    if (!p) return nullptr;
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    std::memcpy(eth->dst_addr.addr_bytes, dst.b.data(), 6);
    std::memcpy(eth->src_addr.addr_bytes, src.b.data(), 6);
    if (vlan) {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
        auto* vh = reinterpret_cast<rte_vlan_hdr*>(eth + 1);
        vh->vlan_tci = rte_cpu_to_be_16(*vlan);
        vh->eth_proto = rte_cpu_to_be_16(etype);
    } else {
        eth->ether_type = rte_cpu_to_be_16(etype);
    }
    return p + l2;
}

unsigned frame_l3_offset(const rte_mbuf* m, uint16_t& etype) {
    if (m->data_len < RTE_ETHER_HDR_LEN) return 0;
    auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    etype = rte_be_to_cpu_16(eth->ether_type);
    if (etype != RTE_ETHER_TYPE_VLAN) return RTE_ETHER_HDR_LEN;
    if (m->data_len < RTE_ETHER_HDR_LEN + 4) return 0;
    etype = rte_be_to_cpu_16(reinterpret_cast<const rte_vlan_hdr*>(eth + 1)->eth_proto);
    return RTE_ETHER_HDR_LEN + 4;
}

rte_mbuf* build_arp_request(rte_mempool* pool, const MacAddr& src_mac, const IpAddr& src_ip, const IpAddr& target) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) return nullptr;
    MacAddr bcast;
    bcast.b.fill(0xFF);
    auto* p = append_frame(m, sizeof(rte_arp_hdr), bcast, src_mac, RTE_ETHER_TYPE_ARP);
    if (!p) return rte_pktmbuf_free(m), nullptr;
    auto* arp = reinterpret_cast<rte_arp_hdr*>(p);
    arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    arp->arp_hlen = 6;
    arp->arp_plen = 4;
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
    std::memcpy(arp->arp_data.arp_sha.addr_bytes, src_mac.b.data(), 6);
    std::memcpy(&arp->arp_data.arp_sip, src_ip.b.data(), 4);
    std::memset(arp->arp_data.arp_tha.addr_bytes, 0, 6);
    std::memcpy(&arp->arp_data.arp_tip, target.b.data(), 4);
    return m;
}

rte_mbuf* build_nd(rte_mempool* pool, uint8_t type, uint8_t flags, const MacAddr& dst_mac, const uint8_t* dst_ip,
                   const MacAddr& src_mac, const IpAddr& src_ip, const IpAddr& target, std::optional<uint16_t> vlan) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) return nullptr;
    auto* p = append_frame(m, 40 + 32, dst_mac, src_mac, RTE_ETHER_TYPE_IPV6, vlan);
    if (!p) return rte_pktmbuf_free(m), nullptr;
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(32);
    ip->proto = IPPROTO_ICMPV6;
    ip->hop_limits = 255;  // RFC 4861: receivers drop ND with any other hop limit
    std::memcpy(ip->src_addr, src_ip.b.data(), 16);
    std::memcpy(ip->dst_addr, dst_ip, 16);
    uint8_t* h = p + 40;
    std::memset(h, 0, 32);
    h[0] = type;
    h[4] = flags;
    std::memcpy(h + 8, target.b.data(), 16);
    h[24] = type == 135 ? 1 : 2;  // Source / Target Link-Layer Address
    h[25] = 1;
    std::memcpy(h + 26, src_mac.b.data(), 6);
    const uint16_t ck = rte_ipv6_udptcp_cksum(ip, h);
    std::memcpy(h + 2, &ck, 2);
    return m;
}

rte_mbuf* build_neighbor_solicit(rte_mempool* pool, const MacAddr& src_mac, const IpAddr& src_ip, const IpAddr& target) {
    // Solicited-node multicast ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX (RFC 4291, 2464).
    const uint8_t dst_ip[16] = {0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xFF, target.b[13], target.b[14], target.b[15]};
    MacAddr dst_mac;
    dst_mac.b = {0x33, 0x33, 0xFF, target.b[13], target.b[14], target.b[15]};
    return build_nd(pool, 135, 0, dst_mac, dst_ip, src_mac, src_ip, target);
}

std::optional<MacAddr> arp_sender_mac(const rte_mbuf* m, const IpAddr& ip) {
    uint16_t etype;
    unsigned l3 = frame_l3_offset(m, etype);
    if (!l3 || etype != RTE_ETHER_TYPE_ARP || m->data_len < l3 + sizeof(rte_arp_hdr)) return std::nullopt;
    auto* arp = rte_pktmbuf_mtod_offset(m, const rte_arp_hdr*, l3);
    if (std::memcmp(&arp->arp_data.arp_sip, ip.b.data(), 4) != 0) return std::nullopt;
    MacAddr mac;
    std::memcpy(mac.b.data(), arp->arp_data.arp_sha.addr_bytes, 6);
    if (mac.is_zero() || mac.is_multicast()) return std::nullopt;
    return mac;
}

std::optional<MacAddr> na_target_mac(const rte_mbuf* m, const IpAddr& ip) {
    uint16_t etype;
    unsigned l3 = frame_l3_offset(m, etype);
    if (!l3 || etype != RTE_ETHER_TYPE_IPV6 || m->data_len < l3 + 40 + 24) return std::nullopt;
    auto* ip6 = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, l3);
    const uint8_t* h = rte_pktmbuf_mtod_offset(m, const uint8_t*, l3 + 40);
    unsigned plen = rte_be_to_cpu_16(ip6->payload_len);
    if (ip6->proto != IPPROTO_ICMPV6 || ip6->hop_limits != 255 || h[0] != 136 || plen < 24 ||
        m->data_len < l3 + 40 + plen || std::memcmp(h + 8, ip.b.data(), 16) != 0)
        return std::nullopt;
    MacAddr mac;
    bool found = false;
    for (unsigned off = 24; off + 8 <= plen;) {  // options: look for Target Link-Layer Address
        unsigned len = h[off + 1] * 8u;
        if (!len || off + len > plen) break;
        if (h[off] == 2 && len >= 8) {
            std::memcpy(mac.b.data(), h + off + 2, 6);
            found = true;
            break;
        }
        off += len;
    }
    if (!found) std::memcpy(mac.b.data(), rte_pktmbuf_mtod(m, const rte_ether_hdr*)->src_addr.addr_bytes, 6);
    if (mac.is_zero() || mac.is_multicast()) return std::nullopt;
    return mac;
}

bool make_echo_reply(rte_mbuf* m, const MacAddr& our_mac) {
    uint16_t etype;
    unsigned l3 = frame_l3_offset(m, etype);
    if (!l3 || m->nb_segs != 1) return false;
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    if (etype == RTE_ETHER_TYPE_IPV4) {
        if (m->data_len < l3 + 20) return false;
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, l3);
        unsigned ihl = (ip->version_ihl & 0xF) * 4u, total = rte_be_to_cpu_16(ip->total_length);
        if (ip->next_proto_id != IPPROTO_ICMP || ihl < 20 || total < ihl + 8 || m->data_len < l3 + total) return false;
        if (rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG)) return false;
        uint8_t* icmp = rte_pktmbuf_mtod_offset(m, uint8_t*, l3 + ihl);
        if (icmp[0] != RTE_IP_ICMP_ECHO_REQUEST || rte_raw_cksum(icmp, total - ihl) != 0xFFFF) return false;
        icmp[0] = RTE_IP_ICMP_ECHO_REPLY;
        icmp[2] = icmp[3] = 0;
        uint16_t ck = uint16_t(~rte_raw_cksum(icmp, total - ihl));
        std::memcpy(icmp + 2, &ck, 2);
        const uint32_t src = ip->src_addr;
        ip->src_addr = ip->dst_addr;
        ip->dst_addr = src;
        ip->time_to_live = 64;
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_pkt_len(m) - (l3 + total)));
    } else if (etype == RTE_ETHER_TYPE_IPV6) {
        if (m->data_len < l3 + 48) return false;
        auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, l3);
        unsigned plen = rte_be_to_cpu_16(ip->payload_len);
        if (ip->proto != IPPROTO_ICMPV6 || plen < 8 || m->data_len < l3 + 40 + plen) return false;
        uint8_t* icmp = rte_pktmbuf_mtod_offset(m, uint8_t*, l3 + 40);
        if (icmp[0] != 128 || rte_ipv6_udptcp_cksum_verify(ip, icmp) != 0) return false;
        icmp[0] = 129;
        uint8_t tmp[16];
        std::memcpy(tmp, ip->src_addr, 16);
        std::memcpy(ip->src_addr, ip->dst_addr, 16);
        std::memcpy(ip->dst_addr, tmp, 16);
        ip->hop_limits = 64;
        icmp[2] = icmp[3] = 0;
        uint16_t ck = rte_ipv6_udptcp_cksum(ip, icmp);
        std::memcpy(icmp + 2, &ck, 2);
        rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_pkt_len(m) - (l3 + 40 + plen)));
    } else {
        return false;
    }
    eth->dst_addr = eth->src_addr;
    std::memcpy(eth->src_addr.addr_bytes, our_mac.b.data(), 6);
    return true;
}

}  // namespace lm
