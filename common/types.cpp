#include "common/types.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>

namespace lm {

std::string MacAddr::str() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5]);
}

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
    if (s.size() != 17) return std::nullopt;
    MacAddr m;
    for (size_t i = 0; i < 6; ++i) {
        unsigned v = 0;
        for (size_t j = 0; j < 2; ++j) {
            char c = s[i * 3 + j];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else return std::nullopt;
        }
        if (i < 5 && s[i * 3 + 2] != ':') return std::nullopt;
        m.b[i] = uint8_t(v);
    }
    return m;
}

std::string IpAddr::str() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(is_v4() ? AF_INET : AF_INET6, b.data(), buf, sizeof buf);
    return buf;
}

std::optional<IpAddr> IpAddr::parse(std::string_view s) {
    if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = 0;
    IpAddr a;
    if (s.find(':') == std::string_view::npos) {
        a.family = Family::V4;
        if (inet_pton(AF_INET, buf, a.b.data()) != 1) return std::nullopt;
    } else {
        a.family = Family::V6;
        if (inet_pton(AF_INET6, buf, a.b.data()) != 1) return std::nullopt;
    }
    return a;
}

bool Prefix::contains(const IpAddr& a) const {
    if (a.family != addr.family) return false;
    unsigned full = len / 8, rem = len % 8;
    if (std::memcmp(a.b.data(), addr.b.data(), full) != 0) return false;
    if (rem == 0) return true;
    uint8_t mask = uint8_t(0xFF << (8 - rem));
    return (a.b[full] & mask) == (addr.b[full] & mask);
}

std::string Prefix::str() const { return fmt::format("{}/{}", addr.str(), len); }

std::optional<Prefix> Prefix::parse(std::string_view s) {
    auto slash = s.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto a = IpAddr::parse(s.substr(0, slash));
    if (!a) return std::nullopt;
    auto ls = s.substr(slash + 1);
    if (ls.empty() || ls.size() > 3) return std::nullopt;
    unsigned len = 0;
    for (char c : ls) {
        if (c < '0' || c > '9') return std::nullopt;
        len = len * 10 + unsigned(c - '0');
    }
    if (len > a->bits()) return std::nullopt;
    Prefix p{*a, uint8_t(len)};
    // Host bits must be zero: a typo like 192.0.2.1/24 is an error, not silently masked.
    Prefix masked = p;
    for (unsigned i = 0; i < 16; ++i) {
        unsigned bit0 = i * 8;
        if (bit0 >= len) masked.addr.b[i] = 0;
        else if (bit0 + 8 > len) masked.addr.b[i] &= uint8_t(0xFF << (8 - (len - bit0)));
    }
    if (masked.addr != p.addr) return std::nullopt;
    return p;
}

}  // namespace lm
