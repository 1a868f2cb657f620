// YAML configuration loader. Everything is validated here, up front, so the rest of the router
// can trust the Config it gets. Every error names the origin, the 1-based line, the key path and
// what is wrong: "ar1.yaml:12: ports[1].role: expected 'access' or 'core', got 'coer'".
//
// yaml-cpp is used only as a tree builder: scalars are read as raw strings and converted here, so
// that "abc", "-1" or "70000" for a port number are reported instead of wrapping or throwing
// yaml-cpp's own exceptions. Unknown and duplicate keys are errors: a typo must never be ignored.
#include "common/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "common/log.hpp"

namespace lm {

namespace {

// A value in the document together with what an error about it must say.
struct Val {
    YAML::Node node;
    std::string path;  // "ports[1].role"
    int line = 1;      // 1-based line to report for errors about this value
};

std::string describe(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map: return "a map";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
        case YAML::NodeType::Null: return "an empty value";
        case YAML::NodeType::Undefined: break;
    }
    return "nothing";
}

int line_of(const YAML::Node& n) {
    int l = n.Mark().line;
    return l >= 0 ? l + 1 : 1;
}

std::string join_quoted(std::initializer_list<const char*> items) {
    std::string s;
    size_t i = 0, n = items.size();
    for (const char* it : items) {
        if (i > 0) s += (i + 1 == n) ? " or " : ", ";
        s += "'";
        s += it;
        s += "'";
        ++i;
    }
    return s;
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

class Loader;

// Reads one YAML map: rejects unknown and duplicate keys at construction, then hands out values.
class MapReader {
public:
    MapReader(Loader& ld, const Val& v, std::initializer_list<const char*> allowed);

    // The value of `key`, or nullopt when absent. A null value (`key:` with nothing) counts as
    // present; the converters reject it.
    std::optional<Val> get(const char* key) const;
    Val require(const char* key) const;
    const Val& self() const { return v_; }

private:
    Loader& ld_;
    Val v_;
    std::map<std::string, Val, std::less<>> entries_;
};

class Loader {
public:
    explicit Loader(std::string origin) : origin_(std::move(origin)) {}

    [[noreturn]] void fail(int line, const std::string& path, const std::string& what) const {
        std::string msg = origin_ + ":" + std::to_string(line) + ": ";
        if (!path.empty()) msg += path + ": ";
        msg += what;
        throw ConfigError(msg);
    }
    [[noreturn]] void fail(const Val& v, const std::string& what) const { fail(v.line, v.path, what); }

    Config load(const YAML::Node& root);

    // ---- scalar converters ----------------------------------------------------------------
    std::string scalar(const Val& v, const char* expected) const {
        if (!v.node.IsScalar()) fail(v, std::string("expected ") + expected + ", got " + describe(v.node));
        return v.node.Scalar();
    }

    std::string str(const Val& v) const {
        std::string s = scalar(v, "a string");
        if (s.empty()) fail(v, "must not be empty");
        return s;
    }

    // Unsigned integer in [lo, hi]; decimal, or hexadecimal with a 0x prefix.
    uint64_t uint(const Val& v, uint64_t lo, uint64_t hi) const {
        const std::string range = "expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
        if (!v.node.IsScalar()) fail(v, range + ", got " + describe(v.node));
        const std::string& s = v.node.Scalar();
        auto bad = [&]() { fail(v, range + ", got '" + s + "'"); };
        std::string_view d = s;
        unsigned base = 10;
        if (d.size() > 2 && d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
            base = 16;
            d.remove_prefix(2);
        }
        if (d.empty() || d.size() > 40) bad();
        uint64_t val = 0;
        for (char c : d) {
            unsigned digit = 0;
            if (c >= '0' && c <= '9') digit = unsigned(c - '0');
            else if (base == 16 && c >= 'a' && c <= 'f') digit = unsigned(c - 'a' + 10);
            else if (base == 16 && c >= 'A' && c <= 'F') digit = unsigned(c - 'A' + 10);
            else bad();
            if (val > (UINT64_MAX - digit) / base) bad();  // overflow
            val = val * base + digit;
        }
        if (val < lo || val > hi) bad();
        return val;
    }

    MoId mo_id(const Val& v) const {
        MoId id = uint(v, 0, UINT64_MAX);
        if (id == 0) fail(v, "must not be zero");
        return id;
    }

    bool boolean(const Val& v) const {
        std::string s = scalar(v, "true or false");
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
        fail(v, "expected true or false, got '" + s + "'");
    }

    IpAddr ip(const Val& v, std::optional<Family> want = std::nullopt) const {
        const char* what = !want ? "an IP address" : *want == Family::V4 ? "an IPv4 address" : "an IPv6 address";
        std::string s = scalar(v, what);
        auto a = IpAddr::parse(s);
        if (!a) fail(v, std::string("expected ") + what + ", got '" + s + "'");
        if (want && a->family != *want)
            fail(v, std::string("expected ") + what + ", got '" + s + "' (an " +
                        (a->is_v4() ? "IPv4" : "IPv6") + " address)");
        return *a;
    }

    // An address this router uses as a unicast source or next hop.
    IpAddr unicast_ip(const Val& v, std::optional<Family> want) const {
        IpAddr a = ip(v, want);
        bool zero = std::all_of(a.b.begin(), a.b.end(), [](uint8_t x) { return x == 0; });
        bool mcast = a.is_v4() ? (a.b[0] >= 224 && a.b[0] <= 239) : a.b[0] == 0xff;
        bool bcast = a.is_v4() && a.b[0] == 255 && a.b[1] == 255 && a.b[2] == 255 && a.b[3] == 255;
        if (zero) fail(v, "'" + v.node.Scalar() + "' is the unspecified address");
        if (mcast || bcast) fail(v, "'" + v.node.Scalar() + "' is not a unicast address");
        return a;
    }

    MacAddr unicast_mac(const Val& v) const {
        std::string s = scalar(v, "a MAC address");
        auto m = MacAddr::parse(s);
        if (!m) fail(v, "expected a MAC address like 02:00:00:00:00:01, got '" + s + "'");
        if (m->is_zero()) fail(v, "'" + s + "' is the all-zero MAC address");
        if (m->is_multicast()) fail(v, "'" + s + "' is a multicast MAC address, a unicast one is required");
        return *m;
    }

    Prefix prefix(const Val& v) const {
        std::string s = scalar(v, "a prefix like 192.0.2.0/24");
        auto slash = s.find('/');
        if (slash == std::string::npos) fail(v, "expected a prefix like 192.0.2.0/24, got '" + s + "' (no '/len')");
        auto a = IpAddr::parse(std::string_view(s).substr(0, slash));
        if (!a) fail(v, "expected a prefix like 192.0.2.0/24, got '" + s + "' (bad address)");
        std::string ls = s.substr(slash + 1);
        unsigned len = 0;
        bool ok = !ls.empty() && ls.size() <= 3;
        for (char c : ls) {
            if (c < '0' || c > '9') ok = false;
            else len = len * 10 + unsigned(c - '0');
        }
        if (!ok) fail(v, "expected a prefix like 192.0.2.0/24, got '" + s + "' (bad length)");
        if (len > a->bits())
            fail(v, "prefix length " + std::to_string(len) + " out of range for " + (a->is_v4() ? "IPv4" : "IPv6") +
                        " (0.." + std::to_string(a->bits()) + ") in '" + s + "'");
        auto p = Prefix::parse(s);
        if (!p) {
            // Only remaining reason: host bits set. Suggest the masked prefix.
            Prefix m;
            m.len = uint8_t(len);
            m.addr = *a;
            for (unsigned i = 0; i < 16; ++i) {
                unsigned keep = len > i * 8 ? std::min(8u, len - i * 8) : 0u;
                m.addr.b[i] &= uint8_t(keep == 0 ? 0 : (0xFF << (8 - keep)));
            }
            fail(v, "host bits are set in '" + s + "' (did you mean " + m.str() + "?)");
        }
        return *p;
    }

    std::vector<Val> list(const Val& v) const {
        if (!v.node.IsSequence()) fail(v, "expected a list, got " + describe(v.node));
        std::vector<Val> out;
        size_t i = 0;
        for (const auto& e : v.node) {  // binds the temporary proxy: lifetime extended
            out.push_back(Val{e, v.path + "[" + std::to_string(i) + "]", line_of(e)});
            ++i;
        }
        return out;
    }

    // Optional list section: absent or empty (`key:` / `key: []`) gives no entries.
    std::vector<Val> opt_list(const MapReader& m, const char* key) const {
        auto v = m.get(key);
        if (!v || v->node.IsNull()) return {};
        return list(*v);
    }

private:
    std::string origin_;
};

MapReader::MapReader(Loader& ld, const Val& v, std::initializer_list<const char*> allowed) : ld_(ld), v_(v) {
    if (!v.node.IsMap()) ld.fail(v, "expected a map, got " + describe(v.node));
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
        // Copies: the iterator's value is a temporary proxy, references into it would dangle.
        const YAML::Node k = it->first;
        const YAML::Node val = it->second;
        const std::string prefix = v.path.empty() ? "" : v.path + ".";
        if (!k.IsScalar()) ld.fail(line_of(k), v.path, "keys must be plain strings, got " + describe(k));
        const std::string key = k.Scalar();
        const std::string path = prefix + key;
        bool known = std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; });
        if (!known) {
            std::string what = "unknown key";
            const char* best = nullptr;
            size_t best_d = 3;  // suggest only close matches
            for (const char* a : allowed) {
                size_t d = edit_distance(key, a);
                if (d < best_d) best_d = d, best = a;
            }
            if (best) what += std::string(" (did you mean '") + best + "'?)";
            else what += " (expected one of " + join_quoted(allowed) + ")";
            ld.fail(line_of(k), path, what);
        }
        if (entries_.count(key)) ld.fail(line_of(k), path, "duplicate key");
        // Scalars report their own line; collections and empty values report the key's line
        // (a block map's or list's own mark is the line of its first entry).
        int line = val.IsScalar() ? line_of(val) : line_of(k);
        entries_.emplace(key, Val{val, path, line});
    }
}

std::optional<Val> MapReader::get(const char* key) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
}

Val MapReader::require(const char* key) const {
    auto v = get(key);
    if (!v) ld_.fail(v_.line, (v_.path.empty() ? "" : v_.path + ".") + key, "required key is missing");
    return *v;
}

const char* port_role_name(PortRole r) { return r == PortRole::Access ? "access" : "core"; }

Config Loader::load(const YAML::Node& root) {
    Config c;
    if (!root.IsMap()) fail(line_of(root), "", "the configuration must be a map of sections, got " + describe(root));
    MapReader top(*this, Val{root, "", line_of(root)},
                  {"router", "locators", "gateway", "ports", "core", "mobile_prefixes", "peer_prefixes", "cache",
                   "encap", "static_mappings", "static_attachments", "dht", "handover"});

    // ---- router -----------------------------------------------------------------------------
    if (auto v = top.get("router"); v && !v->node.IsNull()) {
        MapReader m(*this, *v, {"name", "workers", "idle_backoff_us", "udp_port", "log_level"});
        if (auto x = m.get("name")) c.name = str(*x);
        if (auto x = m.get("workers")) c.workers = unsigned(uint(*x, 1, 64));
        if (auto x = m.get("idle_backoff_us")) c.idle_backoff_us = unsigned(uint(*x, 0, 100000));
        if (auto x = m.get("udp_port")) c.udp_port = uint16_t(uint(*x, 1, 65535));
        if (auto x = m.get("log_level")) {
            std::string s = scalar(*x, "a log level");
            auto l = log::parse_level(s);
            if (!l) fail(*x, "expected " + std::string(join_quoted({"debug", "info", "warning", "error"})) + ", got '" + s + "'");
            c.log_level = *l;
        }
    }

    // ---- locators ---------------------------------------------------------------------------
    {
        MapReader m(*this, top.require("locators"), {"v4", "v6"});
        if (auto x = m.get("v4")) c.locator_v4 = unicast_ip(*x, Family::V4);
        if (auto x = m.get("v6")) c.locator_v6 = unicast_ip(*x, Family::V6);
        if (!c.locator_v4 && !c.locator_v6) fail(m.self(), "at least one of 'v4' and 'v6' is required");
    }

    // ---- gateway ----------------------------------------------------------------------------
    {
        MapReader m(*this, top.require("gateway"), {"ipv4", "ipv6", "mac"});
        if (auto x = m.get("ipv4")) c.gateway_v4 = unicast_ip(*x, Family::V4);
        if (auto x = m.get("ipv6")) c.gateway_v6 = unicast_ip(*x, Family::V6);
        if (!c.gateway_v4 && !c.gateway_v6) fail(m.self(), "at least one of 'ipv4' and 'ipv6' is required");
        c.gateway_mac = unicast_mac(m.require("mac"));
    }

    // ---- ports ------------------------------------------------------------------------------
    Val ports_val = top.require("ports");
    std::vector<Val> port_roles;  // where each port's role was given (for cross-checks)
    {
        auto items = list(ports_val);
        if (items.empty()) fail(ports_val, "at least one access port and one core port are required");
        std::map<std::string, size_t> by_device;
        for (auto& item : items) {
            MapReader m(*this, item, {"name", "device", "role", "tenant", "mtu", "mac", "vlan"});
            PortConfig p;
            Val name = m.require("name");
            p.name = str(name);
            // Telemetry dictionary keys allow only these characters (DPDK drops other names).
            if (p.name.size() > 32 || p.name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
                                           std::string::npos)
                fail(name, "port name '" + p.name + "' must be 1-32 letters, digits or '_'");
            if (c.find_port(p.name)) fail(name, "duplicate port name '" + p.name + "'");
            Val dev = m.require("device");
            p.device = str(dev);
            if (!by_device.emplace(p.device, c.ports.size()).second)
                fail(dev, "device '" + p.device + "' is already used by port '" + c.ports[by_device[p.device]].name + "'");
            Val role = m.require("role");
            std::string r = scalar(role, "'access' or 'core'");
            if (r == "access") p.role = PortRole::Access;
            else if (r == "core") p.role = PortRole::Core;
            else fail(role, "expected 'access' or 'core', got '" + r + "'");
            if (auto x = m.get("tenant")) {
                if (p.role != PortRole::Access) fail(*x, "only access ports have a tenant");
                p.tenant = TenantId(uint(*x, 0, kMaxTenant));
            }
            if (auto x = m.get("mtu")) p.mtu = uint16_t(uint(*x, 576, 9216));
            if (auto x = m.get("mac")) p.mac = unicast_mac(*x);
            if (auto x = m.get("vlan")) {
                if (p.role != PortRole::Access) fail(*x, "only access ports can have a VLAN");
                p.vlan = uint16_t(uint(*x, 1, 4094));
            }
            c.ports.push_back(std::move(p));
            port_roles.push_back(role);
        }
        size_t n_access = 0, n_core = 0;
        for (size_t i = 0; i < c.ports.size(); ++i) {
            if (c.ports[i].role == PortRole::Access) {
                ++n_access;
            } else if (++n_core > 1) {
                fail(port_roles[i], "a second core port ('" + c.ports[i].name + "'): exactly one core port is required");
            }
        }
        if (n_access == 0) fail(ports_val, "at least one access port is required");
        if (n_core == 0) fail(ports_val, "exactly one core port is required, found none");
    }

    // ---- core -------------------------------------------------------------------------------
    {
        MapReader m(*this, top.require("core"), {"port", "next_hop"});
        if (auto x = m.get("port")) {
            std::string n = str(*x);
            const PortConfig* p = c.find_port(n);
            if (!p) fail(*x, "no port named '" + n + "'");
            if (p->role != PortRole::Core)
                fail(*x, "port '" + n + "' is an " + port_role_name(p->role) + " port, a core port is required");
            c.core_port = n;
        } else {
            for (auto& p : c.ports)
                if (p.role == PortRole::Core) c.core_port = p.name;
        }
        MapReader nh(*this, m.require("next_hop"), {"ipv4", "ipv6", "mac"});
        if (auto x = nh.get("ipv4")) c.next_hop.ipv4 = unicast_ip(*x, Family::V4);
        if (auto x = nh.get("ipv6")) c.next_hop.ipv6 = unicast_ip(*x, Family::V6);
        if (auto x = nh.get("mac")) c.next_hop.mac = unicast_mac(*x);
        if (c.locator_v4 && !c.next_hop.ipv4)
            fail(nh.self().line, nh.self().path + ".ipv4", "required key is missing (locators.v4 is set)");
        if (c.locator_v6 && !c.next_hop.ipv6)
            fail(nh.self().line, nh.self().path + ".ipv6", "required key is missing (locators.v6 is set)");
    }

    // ---- mobile_prefixes / peer_prefixes -----------------------------------------------------
    for (auto& item : opt_list(top, "mobile_prefixes")) {
        MobilePrefix mp;
        Val pv = item;
        if (item.node.IsMap()) {
            MapReader m(*this, item, {"prefix", "tenant"});
            pv = m.require("prefix");
            if (auto x = m.get("tenant")) mp.tenant = TenantId(uint(*x, 0, kMaxTenant));
        } else if (!item.node.IsScalar()) {
            fail(item, "expected a prefix or a map with 'prefix' and 'tenant', got " + describe(item.node));
        }
        mp.prefix = prefix(pv);
        for (auto& o : c.mobile_prefixes)
            if (o.prefix == mp.prefix && o.tenant == mp.tenant) fail(pv, "duplicate mobile prefix " + mp.prefix.str());
        c.mobile_prefixes.push_back(mp);
    }
    for (auto& item : opt_list(top, "peer_prefixes")) {
        Prefix p = prefix(item);
        if (std::find(c.peer_prefixes.begin(), c.peer_prefixes.end(), p) != c.peer_prefixes.end())
            fail(item, "duplicate peer prefix " + p.str());
        c.peer_prefixes.push_back(p);
    }

    // ---- cache ------------------------------------------------------------------------------
    if (auto v = top.get("cache"); v && !v->node.IsNull()) {
        MapReader m(*this, *v, {"entries", "attachments", "pending_packets", "pending_per_eid", "pending_timeout_ms"});
        if (auto x = m.get("entries")) c.cache_entries = uint32_t(uint(*x, 64, 16777216));
        if (auto x = m.get("attachments")) c.attachment_entries = uint32_t(uint(*x, 16, 1048576));
        if (auto x = m.get("pending_packets")) c.pending_packets = uint32_t(uint(*x, 0, 4096));
        if (auto x = m.get("pending_per_eid")) c.pending_per_eid = uint32_t(uint(*x, 1, 512));
        if (auto x = m.get("pending_timeout_ms")) c.pending_timeout_ms = uint32_t(uint(*x, 10, 60000));
    }

    // ---- handover ---------------------------------------------------------------------------
    if (auto v = top.get("handover"); v && !v->node.IsNull()) {
        MapReader m(*this, *v, {"hold_packets", "hold_per_mo", "hold_timeout_ms", "forward_time_s", "hint_rate_per_sec",
                                "hint_min_interval_ms", "detect_attach", "announce_count"});
        if (auto x = m.get("hold_packets")) c.hold_packets = uint32_t(uint(*x, 0, 65536));
        if (auto x = m.get("hold_per_mo")) c.hold_per_mo = uint32_t(uint(*x, 1, 65536));
        if (auto x = m.get("hold_timeout_ms")) c.hold_timeout_ms = uint32_t(uint(*x, 10, 60000));
        if (auto x = m.get("forward_time_s")) c.forward_time_s = uint32_t(uint(*x, 0, 86400));
        if (auto x = m.get("hint_rate_per_sec")) c.hint_rate_per_sec = uint32_t(uint(*x, 0, 1000000));
        if (auto x = m.get("hint_min_interval_ms")) c.hint_min_interval_ms = uint32_t(uint(*x, 0, 60000));
        if (auto x = m.get("detect_attach")) c.detect_attach = boolean(*x);
        if (auto x = m.get("announce_count")) c.announce_count = uint32_t(uint(*x, 0, 10));
        if (c.hold_per_mo > c.hold_packets && c.hold_packets)
            fail(m.self().line, m.self().path + ".hold_per_mo",
                 std::to_string(c.hold_per_mo) + " exceeds hold_packets (" + std::to_string(c.hold_packets) + ")");
    }

    // ---- encap ------------------------------------------------------------------------------
    if (auto v = top.get("encap"); v && !v->node.IsNull()) {
        MapReader m(*this, *v, {"udp_checksum_v6", "df", "mss_clamp", "icmp_rate_per_sec"});
        if (auto x = m.get("udp_checksum_v6")) c.udp_checksum_v6 = boolean(*x);
        if (auto x = m.get("df")) {
            std::string s = scalar(*x, "'copy', 'set' or 'clear'");
            if (s == "copy") c.df = DfPolicy::Copy;
            else if (s == "set") c.df = DfPolicy::Set;
            else if (s == "clear") c.df = DfPolicy::Clear;
            else fail(*x, "expected 'copy', 'set' or 'clear', got '" + s + "'");
        }
        if (auto x = m.get("mss_clamp")) {
            if (x->node.IsScalar() && x->node.Scalar() == "auto") {
                c.mss_clamp_auto = true;
                c.mss_clamp = 0;
            } else {
                std::string s = x->node.IsScalar() ? "'" + x->node.Scalar() + "'" : describe(x->node);
                const std::string what = "expected 0 (off), 'auto' or an integer in 536..9000, got " + s;
                if (!x->node.IsScalar()) fail(*x, what);
                uint64_t n = 0;
                try {
                    n = uint(*x, 0, 9000);
                } catch (const ConfigError&) {
                    fail(*x, what);
                }
                if (n != 0 && n < 536) fail(*x, what);
                c.mss_clamp = uint16_t(n);
            }
        }
        if (auto x = m.get("icmp_rate_per_sec")) c.icmp_rate_per_sec = uint32_t(uint(*x, 0, 1000000));
    }

    // ---- dht --------------------------------------------------------------------------------
    if (auto v = top.get("dht"); v && !v->node.IsNull()) {
        MapReader m(*this, *v, {"port", "bind4", "bind6", "bootstrap", "ca_cert", "identity_key", "identity_cert",
                                "max_peer_req_per_sec", "negative_ttl_ms", "max_watches", "cache_ttl_s"});
        DhtSettings d;
        if (auto x = m.get("port")) d.port = uint16_t(uint(*x, 1, 65535));
        if (auto x = m.get("bind4")) d.bind4 = unicast_ip(*x, Family::V4);
        if (auto x = m.get("bind6")) d.bind6 = unicast_ip(*x, Family::V6);
        for (auto& b : opt_list(m, "bootstrap")) {
            std::string s = str(b);
            auto colon = s.rfind(':');
            bool ok = colon != std::string::npos && colon + 1 < s.size() && colon > 0;
            if (ok) {
                std::string host = s.substr(0, colon);
                if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
                ok = IpAddr::parse(host).has_value() &&
                     s.find_first_not_of("0123456789", colon + 1) == std::string::npos && s.size() - colon - 1 <= 5 &&
                     std::stoul(s.substr(colon + 1)) > 0 && std::stoul(s.substr(colon + 1)) <= 65535;
            }
            if (!ok) fail(b, "expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT), got '" + s + "'");
            d.bootstrap.push_back(s);
        }
        d.ca_cert = str(m.require("ca_cert"));
        d.identity_key = str(m.require("identity_key"));
        d.identity_cert = str(m.require("identity_cert"));
        if (auto x = m.get("max_peer_req_per_sec")) {
            std::string s = scalar(*x, "an integer >= -1");
            d.max_peer_req_per_sec = s == "-1" ? -1 : long(uint(*x, 0, 1000000));
        }
        if (auto x = m.get("negative_ttl_ms")) d.negative_ttl_ms = uint32_t(uint(*x, 0, 600000));
        if (auto x = m.get("max_watches")) d.max_watches = uint32_t(uint(*x, 0, 1000000));
        if (auto x = m.get("cache_ttl_s")) d.cache_ttl_s = uint32_t(uint(*x, 10, 86400));
        c.dht = d;
    }

    // ---- static_attachments (before mappings: mappings must not name an attached EID) ---------
    std::map<std::pair<TenantId, IpAddr>, size_t> attached_eids;  // -> attachment index
    std::set<std::pair<TenantId, MoId>> attached_mos;
    for (auto& item : opt_list(top, "static_attachments")) {
        MapReader m(*this, item, {"tenant", "mo_id", "eids", "mac", "port"});
        StaticAttachment a;
        Val port = m.require("port");
        a.port = str(port);
        const PortConfig* p = c.find_port(a.port);
        if (!p) fail(port, "no port named '" + a.port + "'");
        if (p->role != PortRole::Access) fail(port, "port '" + a.port + "' is a core port, an access port is required");
        a.tenant = p->tenant;
        if (auto x = m.get("tenant")) {
            a.tenant = TenantId(uint(*x, 0, kMaxTenant));
            if (a.tenant != p->tenant)
                fail(*x, "tenant " + std::to_string(a.tenant) + " differs from tenant " + std::to_string(p->tenant) +
                             " of port '" + a.port + "'");
        }
        Val mo = m.require("mo_id");
        a.mo_id = mo_id(mo);
        if (!attached_mos.emplace(a.tenant, a.mo_id).second)
            fail(mo, "MO " + std::to_string(a.mo_id) + " of tenant " + std::to_string(a.tenant) + " is attached twice");
        Val eids = m.require("eids");
        auto eid_items = list(eids);
        if (eid_items.empty()) fail(eids, "at least one EID is required");
        for (auto& e : eid_items) {
            IpAddr ip = unicast_ip(e, std::nullopt);
            auto [it, fresh] = attached_eids.emplace(std::make_pair(a.tenant, ip), c.static_attachments.size());
            if (!fresh) {
                if (it->second == c.static_attachments.size()) fail(e, "EID " + ip.str() + " is listed twice");
                fail(e, "EID " + ip.str() + " of tenant " + std::to_string(a.tenant) + " is already used by " +
                            "static_attachments[" + std::to_string(it->second) + "]");
            }
            a.eids.push_back(ip);
        }
        Val mac = m.require("mac");
        a.mac = unicast_mac(mac);
        for (size_t i = 0; i < c.static_attachments.size(); ++i)
            if (c.static_attachments[i].port == a.port && c.static_attachments[i].mac == a.mac)
                fail(mac, "MAC " + a.mac.str() + " on port '" + a.port + "' is already used by static_attachments[" +
                              std::to_string(i) + "]");
        c.static_attachments.push_back(std::move(a));
    }

    // ---- static_mappings --------------------------------------------------------------------
    std::set<std::pair<TenantId, IpAddr>> mapped_eids;
    for (auto& item : opt_list(top, "static_mappings")) {
        MapReader m(*this, item, {"tenant", "eid", "mo_id", "locator", "epoch"});
        StaticMapping s;
        if (auto x = m.get("tenant")) s.tenant = TenantId(uint(*x, 0, kMaxTenant));
        Val eid = m.require("eid");
        s.eid = unicast_ip(eid, std::nullopt);
        if (auto it = attached_eids.find({s.tenant, s.eid}); it != attached_eids.end())
            fail(eid, "EID " + s.eid.str() + " of tenant " + std::to_string(s.tenant) +
                          " is attached here (static_attachments[" + std::to_string(it->second) + "])");
        if (!mapped_eids.emplace(s.tenant, s.eid).second)
            fail(eid, "EID " + s.eid.str() + " of tenant " + std::to_string(s.tenant) + " is mapped twice");
        Val mo = m.require("mo_id");
        s.mo_id = mo_id(mo);
        if (attached_mos.count({s.tenant, s.mo_id}))
            fail(mo, "MO " + std::to_string(s.mo_id) + " of tenant " + std::to_string(s.tenant) +
                         " is attached here, it cannot also be remote");
        s.locator = unicast_ip(m.require("locator"), std::nullopt);
        if (auto x = m.get("epoch")) s.epoch = uint(*x, 0, UINT64_MAX);
        c.static_mappings.push_back(s);
    }

    return c;
}

Config parse(const std::string& yaml, const std::string& origin) {
    Loader ld(origin);
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(yaml);
    } catch (const YAML::Exception& e) {  // ParserException and anything else yaml-cpp throws
        ld.fail(e.mark.line >= 0 ? e.mark.line + 1 : 1, "", "YAML syntax error: " + e.msg);
    }
    if (docs.empty() || docs[0].IsNull()) ld.fail(1, "", "the configuration is empty");
    if (docs.size() > 1) ld.fail(line_of(docs[1]), "", "more than one YAML document ('---'); expected exactly one");
    try {
        return ld.load(docs[0]);
    } catch (const ConfigError&) {
        throw;
    } catch (const YAML::Exception& e) {  // should not happen: converters never use yaml-cpp's as<>
        ld.fail(e.mark.line >= 0 ? e.mark.line + 1 : 1, "", std::string("invalid configuration: ") + e.what());
    }
}

}  // namespace

Config load_config_string(const std::string& yaml, const std::string& origin) { return parse(yaml, origin); }

Config load_config_file(const std::string& path) {
    auto cannot = [&](const char* what, int err) {
        throw ConfigError(path + ": " + what + ": " + std::strerror(err));
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) cannot("cannot open config file", errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
        ::close(fd);
        cannot("cannot open config file", err);
    }
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            cannot("cannot read config file", err);
        }
        if (n == 0) break;
        text.append(buf, size_t(n));
        if (text.size() > (64u << 20)) {
            ::close(fd);
            throw ConfigError(path + ": config file is larger than 64 MiB");
        }
    }
    ::close(fd);
    Config c = parse(text, path);
    // Credential paths are relative to the config file, so a site's directory can move as a whole.
    if (c.dht) {
        auto slash = path.rfind('/');
        const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
        for (std::string* f : {&c.dht->ca_cert, &c.dht->identity_key, &c.dht->identity_cert})
            if (!f->empty() && (*f)[0] != '/') *f = dir + *f;
    }
    return c;
}

}  // namespace lm
