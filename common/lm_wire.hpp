// The LM encapsulation header as it appears on the wire (docs/protocol.md is the reference).
// Shared by the data plane (encap/decap) and by anything that builds or parses LM packets.
#pragma once

#include <cstdint>

namespace lm::wire {

inline constexpr uint8_t kVersion = 1;
inline constexpr uint16_t kDefaultUdpPort = 4341;  // configurable; 4341 is unassigned-by-us default, see protocol.md

enum class LmType : uint8_t {
    Data = 0,         // an encapsulated IPv4/IPv6 packet follows
    RefreshHint = 1,  // "your mapping for this MO is stale": header only, epoch = the current one
    MoveNotify = 2,   // new AR -> old AR: "the MO is here now"; payload = the signed record envelope
};

// Flags, low nibble of byte 0.
inline constexpr uint8_t kFlagForwarded = 0x1;  // re-encapsulated by a forwarding pointer

// Next protocol: IANA protocol numbers for "IPv4 in ..." and "IPv6 in ...".
inline constexpr uint8_t kNextIpv4 = 4;
inline constexpr uint8_t kNextIpv6 = 41;

// 24 bytes, all multi-byte fields big-endian. Packed: it follows UDP at an arbitrary offset.
struct __attribute__((packed)) LmHeader {
    uint8_t ver_flags;   // version << 4 | flags
    uint8_t type;        // LmType
    uint8_t next_proto;  // kNextIpv4 / kNextIpv6 (0 for control types)
    uint8_t reserved0;   // sent as 0, ignored on receive
    uint8_t tenant[3];   // 24-bit tenant (instance) id
    uint8_t reserved1;   // sent as 0, ignored on receive
    uint64_t mo_id_be;   // MO identifier
    uint64_t epoch_be;   // locator epoch the sender used

    uint8_t version() const { return ver_flags >> 4; }
    uint8_t flags() const { return ver_flags & 0x0F; }
    uint32_t tenant_id() const { return uint32_t(tenant[0]) << 16 | uint32_t(tenant[1]) << 8 | tenant[2]; }
    void set_tenant(uint32_t t) {
        tenant[0] = uint8_t(t >> 16);
        tenant[1] = uint8_t(t >> 8);
        tenant[2] = uint8_t(t);
    }
};
static_assert(sizeof(LmHeader) == 24);

inline constexpr unsigned kEthLen = 14;
inline constexpr unsigned kIpv4Len = 20;
inline constexpr unsigned kIpv6Len = 40;
inline constexpr unsigned kUdpLen = 8;
inline constexpr unsigned kLmLen = sizeof(LmHeader);
// Bytes added in front of the inner IP packet (the Ethernet header is reused).
inline constexpr unsigned kOverheadV4 = kIpv4Len + kUdpLen + kLmLen;  // 52
inline constexpr unsigned kOverheadV6 = kIpv6Len + kUdpLen + kLmLen;  // 72

// UDP source ports are drawn from the dynamic range so ECMP/RSS can spread flows.
inline constexpr uint16_t kSrcPortBase = 49152;
inline constexpr uint16_t kSrcPortMask = 0x3FFF;

}  // namespace lm::wire
