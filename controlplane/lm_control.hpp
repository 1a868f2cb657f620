// Packets of the handover, built and parsed by the control lcore (never on the fast path):
//  - announcements a host sends when it appears on a link (gratuitous ARP, unsolicited NA,
//    RARP: what a hypervisor sends after a live migration), which trigger attach detection;
//  - the gateway's own announcements to a newly attached MO (gratuitous ARP, unsolicited NA);
//  - LM control packets between ARs: refresh hints and move notifications (docs/protocol.md).
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <optional>
#include <span>

#include "common/lm_wire.hpp"
#include "common/types.hpp"

namespace lm {

struct Announcement {
    enum class Kind : uint8_t { GratuitousArp, UnsolicitedNa, Rarp };
    Kind kind = Kind::GratuitousArp;
    MacAddr mac;               // the announced MAC (ARP/RARP sender, NA target link-layer address)
    std::optional<IpAddr> ip;  // the announced address (none for RARP)
    bool mac_matches_frame = true;  // the announced MAC is the frame's source MAC (SAVI check)
};
const char* to_string(Announcement::Kind k);

// A punted frame from an access port: is it a host announcing itself? Gratuitous ARP (request
// or reply with sender IP == target IP), unsolicited NA (Solicited flag clear, valid checksum,
// hop limit 255), RARP (any opcode 3/4 with an Ethernet/IPv4 layout). nullopt for anything else.
std::optional<Announcement> parse_announcement(const rte_mbuf* m);

// The anycast gateway announcing itself to a host on an access port (broadcast GARP reply /
// NA to all-nodes with Router and Override set). vlan: tag to add, if the port has one.
rte_mbuf* build_gratuitous_arp(rte_mempool* pool, const MacAddr& mac, const IpAddr& ip, std::optional<uint16_t> vlan);
rte_mbuf* build_unsolicited_na(rte_mempool* pool, const MacAddr& mac, const IpAddr& ip, std::optional<uint16_t> vlan);

// An LM control packet as received on the core port (the data plane checked the outer headers,
// the UDP length and checksum and the version before punting it).
struct LmControl {
    wire::LmType type = wire::LmType::RefreshHint;
    uint8_t frag_index = 0, frag_count = 1;  // MoveNotify: part of a split envelope
    TenantId tenant = 0;
    MoId mo = 0;
    Epoch epoch = 0;
    IpAddr outer_src;
    std::span<const uint8_t> payload;  // points into the mbuf
};
std::optional<LmControl> parse_lm_control(const rte_mbuf* m);

// Largest MoveNotify payload per packet: a 1280-byte IPv6 minimum MTU path always carries it
// (1280 - 40 - 8 - 24). Envelopes (about 1.5 kB with the certificate) are split in parts.
inline constexpr unsigned kMoveNotifyChunk = 1208;

struct LmControlAddr {
    MacAddr src_mac, dst_mac;
    IpAddr src, dst;  // same family
    uint16_t udp_port = wire::kDefaultUdpPort;
};
// One LM control packet (header + payload); nullptr if the pool is empty or it does not fit.
rte_mbuf* build_lm_control(rte_mempool* pool, const LmControlAddr& a, wire::LmType type, TenantId tenant, MoId mo,
                           Epoch epoch, std::span<const uint8_t> payload = {}, uint8_t frag_index = 0,
                           uint8_t frag_count = 1);

}  // namespace lm
