// Small value types shared by every layer: addresses, prefixes, MO identity.
// Plain structs with no DPDK dependency so config, tests and control plane can use them.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace lm {

using TenantId = uint32_t;  // 24 bits on the wire
using MoId = uint64_t;
using Epoch = uint64_t;

inline constexpr TenantId kMaxTenant = 0xFFFFFF;

enum class Family : uint8_t { V4 = 4, V6 = 6 };

struct MacAddr {
    std::array<uint8_t, 6> b{};
    auto operator<=>(const MacAddr&) const = default;
    bool is_zero() const { return b == std::array<uint8_t, 6>{}; }
    bool is_multicast() const { return b[0] & 1; }
    std::string str() const;
    static std::optional<MacAddr> parse(std::string_view s);
};

// An IPv4 or IPv6 address. IPv4 lives in the first 4 bytes of `b`, the rest is zero,
// so the bytes can be used directly as (part of) a hash key.
struct IpAddr {
    Family family = Family::V4;
    std::array<uint8_t, 16> b{};

    auto operator<=>(const IpAddr&) const = default;
    bool is_v4() const { return family == Family::V4; }
    bool is_v6() const { return family == Family::V6; }
    unsigned bits() const { return is_v4() ? 32 : 128; }
    uint32_t v4_be() const {  // network byte order, as in the header
        uint32_t v;
        std::memcpy(&v, b.data(), 4);
        return v;
    }
    static IpAddr v4_from_be(uint32_t be) {
        IpAddr a;
        a.family = Family::V4;
        std::memcpy(a.b.data(), &be, 4);
        return a;
    }
    static IpAddr v6_from(const uint8_t* p) {
        IpAddr a;
        a.family = Family::V6;
        std::memcpy(a.b.data(), p, 16);
        return a;
    }
    std::string str() const;
    static std::optional<IpAddr> parse(std::string_view s);
};

struct Prefix {
    IpAddr addr;  // host bits cleared
    uint8_t len = 0;

    auto operator<=>(const Prefix&) const = default;
    bool contains(const IpAddr& a) const;
    std::string str() const;
    // "192.0.2.0/24", "2001:db8::/32"; host bits must be zero.
    static std::optional<Prefix> parse(std::string_view s);
};

}  // namespace lm
