#include "controlplane/lm_control.hpp"

#include "controlplane/neighbor.hpp"

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <cstring>

namespace lm {

namespace {

constexpr uint16_t kEtherTypeRarp = 0x8035;
constexpr uint16_t kRarpRequest = 3, kRarpReply = 4;

MacAddr mac_of(const uint8_t* p) {
    MacAddr m;
    std::memcpy(m.b.data(), p, 6);
    return m;
}

std::optional<Announcement> parse_arp_like(const rte_mbuf* m, unsigned l3, bool rarp) {
    if (m->data_len < l3 + sizeof(rte_arp_hdr)) return std::nullopt;
    auto* arp = rte_pktmbuf_mtod_offset(m, const rte_arp_hdr*, l3);
    if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
        arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || arp->arp_hlen != 6 || arp->arp_plen != 4)
        return std::nullopt;
    const uint16_t op = rte_be_to_cpu_16(arp->arp_opcode);
    const uint8_t* frame_src = rte_pktmbuf_mtod(m, const rte_ether_hdr*)->src_addr.addr_bytes;
    Announcement a;
    if (rarp) {
        // QEMU's self-announce: RARP request, sender and target hardware address = the guest's MAC.
        if (op != kRarpRequest && op != kRarpReply) return std::nullopt;
        a.kind = Announcement::Kind::Rarp;
        a.mac = mac_of(op == kRarpRequest ? arp->arp_data.arp_tha.addr_bytes : arp->arp_data.arp_sha.addr_bytes);
    } else {
        if (op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY) return std::nullopt;
        if (arp->arp_data.arp_sip != arp->arp_data.arp_tip || arp->arp_data.arp_sip == 0) return std::nullopt;
        a.kind = Announcement::Kind::GratuitousArp;
        a.mac = mac_of(arp->arp_data.arp_sha.addr_bytes);
        IpAddr ip;
        ip.family = Family::V4;
        std::memcpy(ip.b.data(), &arp->arp_data.arp_sip, 4);
        a.ip = ip;
    }
    if (a.mac.is_zero() || a.mac.is_multicast()) return std::nullopt;
    a.mac_matches_frame = std::memcmp(frame_src, a.mac.b.data(), 6) == 0;
    return a;
}

std::optional<Announcement> parse_na(const rte_mbuf* m, unsigned l3) {
    if (m->data_len < l3 + 40 + 24) return std::nullopt;
    auto* ip6 = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, l3);
    const unsigned plen = rte_be_to_cpu_16(ip6->payload_len);
    const uint8_t* h = rte_pktmbuf_mtod_offset(m, const uint8_t*, l3 + 40);
    // RFC 4861 7.1.2: hop limit 255, ICMP length >= 24, code 0, valid checksum.
    if (ip6->proto != IPPROTO_ICMPV6 || ip6->hop_limits != 255 || plen < 24 || m->data_len < l3 + 40 + plen ||
        h[0] != 136 || h[1] != 0)
        return std::nullopt;
    if (rte_ipv6_udptcp_cksum_verify(ip6, h) != 0) return std::nullopt;
    if (h[4] & 0x40) return std::nullopt;  // Solicited: an answer to someone, not an announcement
    IpAddr target;
    target.family = Family::V6;
    std::memcpy(target.b.data(), h + 8, 16);
    if (target.b[0] == 0xFF) return std::nullopt;  // RFC 4861 7.1.2: target must not be multicast
    Announcement a;
    a.kind = Announcement::Kind::UnsolicitedNa;
    a.ip = target;
    const uint8_t* frame_src = rte_pktmbuf_mtod(m, const rte_ether_hdr*)->src_addr.addr_bytes;
    a.mac = mac_of(frame_src);
    for (unsigned off = 24; off + 2 <= plen;) {  // Target Link-Layer Address option, if any
        const unsigned len = h[off + 1] * 8u;
        if (!len || off + len > plen) return std::nullopt;  // RFC 4861: zero-length option
        if (h[off] == 2 && len >= 8) a.mac = mac_of(h + off + 2);
        off += len;
    }
    if (a.mac.is_zero() || a.mac.is_multicast()) return std::nullopt;
    a.mac_matches_frame = std::memcmp(frame_src, a.mac.b.data(), 6) == 0;
    return a;
}

}  // namespace

const char* to_string(Announcement::Kind k) {
    switch (k) {
        case Announcement::Kind::GratuitousArp: return "gratuitous ARP";
        case Announcement::Kind::UnsolicitedNa: return "unsolicited NA";
        case Announcement::Kind::Rarp: return "RARP";
    }
    return "?";
}

std::optional<Announcement> parse_announcement(const rte_mbuf* m) {
    uint16_t etype = 0;
    const unsigned l3 = frame_l3_offset(m, etype);
    if (!l3) return std::nullopt;
    if (etype == RTE_ETHER_TYPE_ARP) return parse_arp_like(m, l3, false);
    if (etype == kEtherTypeRarp) return parse_arp_like(m, l3, true);
    if (etype == RTE_ETHER_TYPE_IPV6) return parse_na(m, l3);
    return std::nullopt;
}

rte_mbuf* build_gratuitous_arp(rte_mempool* pool, const MacAddr& mac, const IpAddr& ip, std::optional<uint16_t> vlan) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) return nullptr;
    MacAddr bcast;
    bcast.b.fill(0xFF);
    auto* p = append_frame(m, sizeof(rte_arp_hdr), bcast, mac, RTE_ETHER_TYPE_ARP, vlan);
    if (!p) return rte_pktmbuf_free(m), nullptr;
    auto* arp = reinterpret_cast<rte_arp_hdr*>(p);
    arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    arp->arp_hlen = 6;
    arp->arp_plen = 4;
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);  // a reply updates existing entries (RFC 5227 3)
    std::memcpy(arp->arp_data.arp_sha.addr_bytes, mac.b.data(), 6);
    std::memcpy(&arp->arp_data.arp_sip, ip.b.data(), 4);
    std::memcpy(arp->arp_data.arp_tha.addr_bytes, bcast.b.data(), 6);
    std::memcpy(&arp->arp_data.arp_tip, ip.b.data(), 4);
    return m;
}

rte_mbuf* build_unsolicited_na(rte_mempool* pool, const MacAddr& mac, const IpAddr& ip, std::optional<uint16_t> vlan) {
    static constexpr uint8_t kAllNodes[16] = {0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    MacAddr all_nodes_mac;
    all_nodes_mac.b = {0x33, 0x33, 0, 0, 0, 1};
    // Router | Override, not Solicited (RFC 4861 7.2.6); source and target = the gateway.
    return build_nd(pool, 136, 0xA0, all_nodes_mac, kAllNodes, mac, ip, ip, vlan);
}

std::optional<LmControl> parse_lm_control(const rte_mbuf* m) {
    uint16_t etype = 0;
    const unsigned l3 = frame_l3_offset(m, etype);
    if (!l3 || m->nb_segs != 1) return std::nullopt;
    LmControl c;
    unsigned l4, udp_len;
    if (etype == RTE_ETHER_TYPE_IPV4) {
        if (m->data_len < l3 + 20) return std::nullopt;
        auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, l3);
        const unsigned ihl = (ip->version_ihl & 0xF) * 4u;
        if (ip->next_proto_id != IPPROTO_UDP || ihl < 20) return std::nullopt;
        c.outer_src.family = Family::V4;
        std::memcpy(c.outer_src.b.data(), &ip->src_addr, 4);
        l4 = l3 + ihl;
    } else if (etype == RTE_ETHER_TYPE_IPV6) {
        if (m->data_len < l3 + 40) return std::nullopt;
        auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, l3);
        if (ip->proto != IPPROTO_UDP) return std::nullopt;
        c.outer_src.family = Family::V6;
        std::memcpy(c.outer_src.b.data(), ip->src_addr, 16);
        l4 = l3 + 40;
    } else {
        return std::nullopt;
    }
    if (m->data_len < l4 + wire::kUdpLen + wire::kLmLen) return std::nullopt;
    udp_len = rte_be_to_cpu_16(rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, l4)->dgram_len);
    if (udp_len < wire::kUdpLen + wire::kLmLen || m->data_len < l4 + udp_len) return std::nullopt;
    auto* lh = rte_pktmbuf_mtod_offset(m, const wire::LmHeader*, l4 + wire::kUdpLen);
    if (lh->version() != wire::kVersion) return std::nullopt;
    c.type = wire::LmType(lh->type);
    if (c.type != wire::LmType::RefreshHint && c.type != wire::LmType::MoveNotify) return std::nullopt;
    c.tenant = lh->tenant_id();
    c.mo = rte_be_to_cpu_64(lh->mo_id_be);
    c.epoch = rte_be_to_cpu_64(lh->epoch_be);
    if (c.type == wire::LmType::MoveNotify) {
        c.frag_index = lh->reserved0 >> 4;
        c.frag_count = lh->reserved0 & 0x0F;
        if (c.frag_count == 0 || c.frag_index >= c.frag_count) return std::nullopt;
    }
    const unsigned pay = l4 + wire::kUdpLen + wire::kLmLen;
    c.payload = {rte_pktmbuf_mtod_offset(m, const uint8_t*, pay), udp_len - wire::kUdpLen - wire::kLmLen};
    return c;
}

rte_mbuf* build_lm_control(rte_mempool* pool, const LmControlAddr& a, wire::LmType type, TenantId tenant, MoId mo,
                           Epoch epoch, std::span<const uint8_t> payload, uint8_t frag_index, uint8_t frag_count) {
    const bool v6 = a.dst.family == Family::V6;
    if (a.src.family != a.dst.family || payload.size() > kMoveNotifyChunk) return nullptr;
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) return nullptr;
    const unsigned ip_len = v6 ? wire::kIpv6Len : wire::kIpv4Len;
    const unsigned udp_len = wire::kUdpLen + wire::kLmLen + unsigned(payload.size());
    uint8_t* p = append_frame(m, ip_len + udp_len, a.dst_mac, a.src_mac, v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    if (!p) return rte_pktmbuf_free(m), nullptr;
    auto* udp = reinterpret_cast<rte_udp_hdr*>(p + ip_len);
    // Source port from the MO id: hints and notifications for one MO take one ECMP path.
    udp->src_port = rte_cpu_to_be_16(uint16_t(wire::kSrcPortBase | (uint16_t(mo ^ (mo >> 16) ^ (mo >> 32)) & wire::kSrcPortMask)));
    udp->dst_port = rte_cpu_to_be_16(a.udp_port);
    udp->dgram_len = rte_cpu_to_be_16(uint16_t(udp_len));
    udp->dgram_cksum = 0;
    auto* lh = reinterpret_cast<wire::LmHeader*>(udp + 1);
    std::memset(lh, 0, sizeof *lh);
    lh->ver_flags = uint8_t(wire::kVersion << 4);
    lh->type = uint8_t(type);
    lh->next_proto = 0;
    lh->reserved0 = type == wire::LmType::MoveNotify ? uint8_t(frag_index << 4 | (frag_count & 0x0F)) : 0;
    lh->set_tenant(tenant);
    lh->mo_id_be = rte_cpu_to_be_64(mo);
    lh->epoch_be = rte_cpu_to_be_64(epoch);
    if (!payload.empty()) std::memcpy(lh + 1, payload.data(), payload.size());
    if (v6) {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | 0xC0u << 20);  // CS6: network control
        ip->payload_len = rte_cpu_to_be_16(uint16_t(udp_len));
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = 64;
        std::memcpy(ip->src_addr, a.src.b.data(), 16);
        std::memcpy(ip->dst_addr, a.dst.b.data(), 16);
        udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip, udp);  // mandatory over IPv6 for control packets
    } else {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p);
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->type_of_service = 0xC0;
        ip->total_length = rte_cpu_to_be_16(uint16_t(ip_len + udp_len));
        ip->packet_id = 0;
        ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        std::memcpy(&ip->src_addr, a.src.b.data(), 4);
        std::memcpy(&ip->dst_addr, a.dst.b.data(), 4);
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
    }
    return m;
}

}  // namespace lm
