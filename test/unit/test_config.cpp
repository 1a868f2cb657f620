// Config loader: the full schema parses into the expected values, defaults apply, and every kind
// of mistake is rejected with "origin:line: key.path: what is wrong".
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "common/config.hpp"

#ifndef LM_SOURCE_DIR
#define LM_SOURCE_DIR "."
#endif

using lm::Config;
using lm::ConfigError;

namespace {

lm::IpAddr ip(const char* s) {
    auto a = lm::IpAddr::parse(s);
    REQUIRE(a);
    return *a;
}
lm::MacAddr mac(const char* s) {
    auto m = lm::MacAddr::parse(s);
    REQUIRE(m);
    return *m;
}
lm::Prefix pfx(const char* s) {
    auto p = lm::Prefix::parse(s);
    REQUIRE(p);
    return *p;
}

// Every key set to a non-default value. Line numbers matter: the error tests below refer to them.
const char* const kBase = R"(router:
  name: ar1
  workers: 2
  idle_backoff_us: 10
  udp_port: 4342
  log_level: debug
locators:
  v4: 198.51.100.1
  v6: 2001:db8:100::1
gateway:
  ipv4: 192.0.2.1
  ipv6: 2001:db8:1::1
  mac: 02:00:5e:00:00:01
ports:
  - name: access0
    device: net_pcap0
    role: access
    tenant: 1
    mtu: 1500
    mac: 02:00:00:00:01:01
    vlan: 100
  - name: core0
    device: net_pcap1
    role: core
    mtu: 9000
core:
  port: core0
  next_hop:
    ipv4: 198.51.100.254
    ipv6: 2001:db8:100::fe
    mac: 02:00:00:00:ff:fe
mobile_prefixes:
  - 192.0.2.0/24
  - { prefix: 2001:db8:1::/64, tenant: 1 }
peer_prefixes:
  - 198.51.100.0/24
cache:
  entries: 1024
  attachments: 256
encap:
  udp_checksum_v6: true
  df: set
  mss_clamp: 1400
  icmp_rate_per_sec: 10
static_mappings:
  - { tenant: 1, eid: 192.0.2.20, mo_id: 0x2a, locator: 198.51.100.2, epoch: 9 }
static_attachments:
  - { tenant: 1, mo_id: 7, eids: [192.0.2.10, 2001:db8:1::10], mac: 02:00:00:00:00:10, port: access0 }
)";

const char* const kMinimal = R"(locators:
  v4: 198.51.100.1
gateway:
  ipv4: 192.0.2.1
  mac: 02:00:5e:00:00:01
ports:
  - { name: a, device: net_null0, role: access }
  - { name: c, device: net_null1, role: core }
core:
  next_hop: { ipv4: 198.51.100.254 }
)";

const char* const kMinimalPorts =
    "ports:\n  - { name: a, device: net_null0, role: access }\n  - { name: c, device: net_null1, role: core }\n";

// kBase with exactly one occurrence of `from` replaced by `to`.
std::string edit(const std::string& from, const std::string& to, std::string s = kBase) {
    auto p = s.find(from);
    REQUIRE(p != std::string::npos);
    REQUIRE(s.find(from, p + 1) == std::string::npos);
    s.replace(p, from.size(), to);
    return s;
}

// The ConfigError message for `yaml`; fails the test if it loads or throws anything else.
std::string error_of(const std::string& yaml) {
    try {
        lm::load_config_string(yaml, "t.yaml");
    } catch (const ConfigError& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("not a ConfigError: " << e.what());
    }
    FAIL("loaded without error:\n" << yaml);
    return {};
}

struct BadCase {
    const char* name;
    std::string yaml;
    std::string where;   // "t.yaml:LINE: key.path: " the message must start with
    std::string detail;  // and must contain
};

void check_cases(const std::vector<BadCase>& cases) {
    for (auto& c : cases) {
        INFO("case: " << c.name);
        std::string msg = error_of(c.yaml);
        INFO("message: " << msg);
        CHECK(msg.rfind(c.where, 0) == 0);
        CHECK(msg.find(c.detail) != std::string::npos);
    }
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& text) {
        char tmpl[] = "/tmp/lm_test_config_XXXXXX";
        int fd = mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        std::ofstream(path) << text;
    }
    ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace

TEST_CASE("config: every key of the schema is read", "[config]") {
    Config c = lm::load_config_string(kBase, "t.yaml");
    CHECK(c.name == "ar1");
    CHECK(c.workers == 2);
    CHECK(c.idle_backoff_us == 10);
    CHECK(c.udp_port == 4342);
    CHECK(c.log_level == lm::LogLevel::Debug);
    CHECK(c.locator_v4 == ip("198.51.100.1"));
    CHECK(c.locator_v6 == ip("2001:db8:100::1"));
    CHECK(c.gateway_v4 == ip("192.0.2.1"));
    CHECK(c.gateway_v6 == ip("2001:db8:1::1"));
    CHECK(c.gateway_mac == mac("02:00:5e:00:00:01"));

    REQUIRE(c.ports.size() == 2);
    CHECK(c.ports[0].name == "access0");
    CHECK(c.ports[0].device == "net_pcap0");
    CHECK(c.ports[0].role == lm::PortRole::Access);
    CHECK(c.ports[0].tenant == 1);
    CHECK(c.ports[0].mtu == 1500);
    CHECK(c.ports[0].mac == mac("02:00:00:00:01:01"));
    CHECK(c.ports[0].vlan == uint16_t(100));
    CHECK(c.ports[1].name == "core0");
    CHECK(c.ports[1].device == "net_pcap1");
    CHECK(c.ports[1].role == lm::PortRole::Core);
    CHECK(c.ports[1].tenant == 0);
    CHECK(c.ports[1].mtu == 9000);
    CHECK_FALSE(c.ports[1].mac);
    CHECK_FALSE(c.ports[1].vlan);

    CHECK(c.core_port == "core0");
    CHECK(c.find_port("core0") == &c.ports[1]);
    CHECK(c.find_port("nope") == nullptr);
    CHECK(c.next_hop.ipv4 == ip("198.51.100.254"));
    CHECK(c.next_hop.ipv6 == ip("2001:db8:100::fe"));
    CHECK(c.next_hop.mac == mac("02:00:00:00:ff:fe"));

    REQUIRE(c.mobile_prefixes.size() == 2);
    CHECK(c.mobile_prefixes[0].prefix == pfx("192.0.2.0/24"));
    CHECK_FALSE(c.mobile_prefixes[0].tenant);
    CHECK(c.mobile_prefixes[1].prefix == pfx("2001:db8:1::/64"));
    CHECK(c.mobile_prefixes[1].tenant == lm::TenantId(1));
    REQUIRE(c.peer_prefixes.size() == 1);
    CHECK(c.peer_prefixes[0] == pfx("198.51.100.0/24"));

    CHECK(c.cache_entries == 1024);
    CHECK(c.attachment_entries == 256);
    CHECK(c.udp_checksum_v6);
    CHECK(c.df == lm::DfPolicy::Set);
    CHECK(c.mss_clamp == 1400);
    CHECK_FALSE(c.mss_clamp_auto);
    CHECK(c.icmp_rate_per_sec == 10);

    REQUIRE(c.static_mappings.size() == 1);
    CHECK(c.static_mappings[0].tenant == 1);
    CHECK(c.static_mappings[0].eid == ip("192.0.2.20"));
    CHECK(c.static_mappings[0].mo_id == 0x2a);
    CHECK(c.static_mappings[0].locator == ip("198.51.100.2"));
    CHECK(c.static_mappings[0].epoch == 9);

    REQUIRE(c.static_attachments.size() == 1);
    const auto& a = c.static_attachments[0];
    CHECK(a.tenant == 1);
    CHECK(a.mo_id == 7);
    REQUIRE(a.eids.size() == 2);
    CHECK(a.eids[0] == ip("192.0.2.10"));
    CHECK(a.eids[1] == ip("2001:db8:1::10"));
    CHECK(a.mac == mac("02:00:00:00:00:10"));
    CHECK(a.port == "access0");
}

TEST_CASE("config: defaults on a minimal file", "[config]") {
    Config c = lm::load_config_string(kMinimal);
    Config d;  // the struct's defaults are the documented ones
    CHECK(c.name == "lm-router");
    CHECK(c.workers == 1);
    CHECK(c.idle_backoff_us == 50);
    CHECK(c.udp_port == 4341);
    CHECK(c.log_level == lm::LogLevel::Info);
    CHECK(c.locator_v4 == ip("198.51.100.1"));
    CHECK_FALSE(c.locator_v6);
    CHECK(c.gateway_v4 == ip("192.0.2.1"));
    CHECK_FALSE(c.gateway_v6);
    REQUIRE(c.ports.size() == 2);
    CHECK(c.ports[0].tenant == 0);
    CHECK(c.ports[0].mtu == 1500);
    CHECK_FALSE(c.ports[0].mac);
    CHECK_FALSE(c.ports[0].vlan);
    CHECK(c.core_port == "c");  // the only core port
    CHECK(c.next_hop.ipv4 == ip("198.51.100.254"));
    CHECK_FALSE(c.next_hop.ipv6);
    CHECK_FALSE(c.next_hop.mac);
    CHECK(c.mobile_prefixes.empty());
    CHECK(c.peer_prefixes.empty());
    CHECK(c.cache_entries == 65536);
    CHECK(c.attachment_entries == 4096);
    CHECK(c.udp_checksum_v6 == false);
    CHECK(c.df == lm::DfPolicy::Copy);
    CHECK(c.mss_clamp == 0);
    CHECK_FALSE(c.mss_clamp_auto);
    CHECK(c.icmp_rate_per_sec == 100);
    CHECK(c.static_mappings.empty());
    CHECK(c.static_attachments.empty());
    CHECK(c.cache_entries == d.cache_entries);
    CHECK(c.udp_port == d.udp_port);
}

TEST_CASE("config: accepted variants", "[config]") {
    SECTION("v6-only router") {
        Config c = lm::load_config_string(R"(locators: { v6: 2001:db8:100::1 }
gateway: { ipv6: 2001:db8:1::1, mac: 02:00:5e:00:00:01 }
ports:
  - { name: a, device: d0, role: access }
  - { name: c, device: d1, role: core }
core: { next_hop: { ipv6: 2001:db8:100::fe } }
)");
        CHECK_FALSE(c.locator_v4);
        CHECK(c.locator_v6 == ip("2001:db8:100::1"));
        CHECK(c.next_hop.ipv6 == ip("2001:db8:100::fe"));
    }
    SECTION("mss_clamp auto and 0, df clear, warn alias, hex and max integers") {
        std::string y = edit("  mss_clamp: 1400", "  mss_clamp: auto");
        Config c = lm::load_config_string(y);
        CHECK(c.mss_clamp_auto);
        CHECK(c.mss_clamp == 0);
        c = lm::load_config_string(edit("  mss_clamp: 1400", "  mss_clamp: 0"));
        CHECK_FALSE(c.mss_clamp_auto);
        CHECK(c.mss_clamp == 0);
        c = lm::load_config_string(edit("  df: set", "  df: clear"));
        CHECK(c.df == lm::DfPolicy::Clear);
        c = lm::load_config_string(edit("log_level: debug", "log_level: warn"));
        CHECK(c.log_level == lm::LogLevel::Warning);
        c = lm::load_config_string(edit("epoch: 9", "epoch: 18446744073709551615, mo_id: 0xFFFFFFFFFFFFFFFF",
                                        edit("mo_id: 0x2a, ", "")));
        CHECK(c.static_mappings[0].epoch == UINT64_MAX);
        CHECK(c.static_mappings[0].mo_id == UINT64_MAX);
        c = lm::load_config_string(edit("    tenant: 1\n", "    tenant: 16777215\n",
                                        edit("{ tenant: 1, mo_id: 7", "{ mo_id: 7")));
        CHECK(c.ports[0].tenant == lm::kMaxTenant);
        CHECK(c.static_attachments[0].tenant == lm::kMaxTenant);  // inherited from the port
    }
    SECTION("empty optional sections") {
        Config c = lm::load_config_string(std::string(kMinimal) +
                                          "router:\ncache:\nencap: {}\nmobile_prefixes: []\nstatic_mappings:\n");
        CHECK(c.name == "lm-router");
        CHECK(c.static_mappings.empty());
    }
    SECTION("same EID in two tenants, several mappings of one MO") {
        std::string y = std::string(kBase) +
                        "  - { tenant: 0, mo_id: 8, eids: [192.0.2.10], mac: 02:00:00:00:00:11, port: a2 }\n";
        y = edit("  - name: core0\n", "  - { name: a2, device: net_pcap2, role: access }\n  - name: core0\n", y);
        y = edit("epoch: 9 }\n", "epoch: 9 }\n  - { tenant: 1, eid: 2001:db8:1::20, mo_id: 0x2a, locator: 198.51.100.2 }\n", y);
        Config c = lm::load_config_string(y);
        REQUIRE(c.static_attachments.size() == 2);
        CHECK(c.static_attachments[1].tenant == 0);
        REQUIRE(c.static_mappings.size() == 2);
        CHECK(c.static_mappings[1].epoch == 0);
    }
}

TEST_CASE("config: the example file loads", "[config]") {
    Config c = lm::load_config_file(LM_SOURCE_DIR "/test/configs/example-ar1.yaml");
    CHECK(c.name == "ar1");
    CHECK(c.workers == 2);
    CHECK(c.udp_port == 4341);
    CHECK(c.log_level == lm::LogLevel::Info);
    CHECK(c.locator_v4 == ip("198.51.100.1"));
    CHECK(c.locator_v6 == ip("2001:db8:100::1"));
    CHECK(c.gateway_mac == mac("02:00:5e:00:00:01"));
    REQUIRE(c.ports.size() == 3);
    CHECK(c.ports[1].name == "access1");
    CHECK(c.ports[1].tenant == 2);
    CHECK(c.ports[1].vlan == uint16_t(100));
    CHECK(c.ports[1].mac == mac("02:00:00:00:01:02"));
    CHECK(c.ports[2].role == lm::PortRole::Core);
    CHECK(c.ports[2].mtu == 9000);
    CHECK(c.core_port == "core0");
    CHECK(c.next_hop.mac == mac("02:00:00:00:ff:fe"));
    REQUIRE(c.mobile_prefixes.size() == 3);
    CHECK(c.mobile_prefixes[0].prefix == pfx("192.0.2.0/25"));
    CHECK(c.mobile_prefixes[2].tenant == lm::TenantId(2));
    REQUIRE(c.peer_prefixes.size() == 2);
    CHECK(c.peer_prefixes[1] == pfx("2001:db8:100::/48"));
    CHECK(c.mss_clamp_auto);
    CHECK(c.df == lm::DfPolicy::Copy);
    REQUIRE(c.static_mappings.size() == 3);
    CHECK(c.static_mappings[1].eid == ip("2001:db8:1::20"));
    CHECK(c.static_mappings[1].locator == ip("2001:db8:100::2"));
    CHECK(c.static_mappings[2].tenant == 2);
    CHECK(c.static_mappings[2].mo_id == 43);
    CHECK(c.static_mappings[2].epoch == 5);
    REQUIRE(c.static_attachments.size() == 2);
    CHECK(c.static_attachments[1].mo_id == 0x1000000000000008ULL);
    CHECK(c.static_attachments[1].eids == std::vector<lm::IpAddr>{ip("203.0.113.10")});
    CHECK(c.static_attachments[1].port == "access1");
}

TEST_CASE("config: files", "[config]") {
    SECTION("a temporary file; errors name the file") {
        TempFile f(kMinimal);
        Config c = lm::load_config_file(f.path);
        CHECK(c.core_port == "c");
        TempFile bad(edit("  udp_port: 4342", "  udp_port: 0"));
        REQUIRE_THROWS_WITH(lm::load_config_file(bad.path),
                            Catch::StartsWith(bad.path + ":5: router.udp_port: expected an integer in 1..65535"));
    }
    SECTION("missing file") {
        REQUIRE_THROWS_AS(lm::load_config_file("/nonexistent/lm.yaml"), ConfigError);
        REQUIRE_THROWS_WITH(lm::load_config_file("/nonexistent/lm.yaml"),
                            "/nonexistent/lm.yaml: cannot open config file: No such file or directory");
    }
    SECTION("a directory") {
        REQUIRE_THROWS_WITH(lm::load_config_file("/tmp"), Catch::Contains("/tmp: cannot open config file"));
    }
    SECTION("an empty file") {
        TempFile f("");
        REQUIRE_THROWS_WITH(lm::load_config_file(f.path), f.path + ":1: the configuration is empty");
    }
}

TEST_CASE("config: document-level errors", "[config]") {
    check_cases({
        {"empty", "", "t.yaml:1: ", "the configuration is empty"},
        {"comments only", "# nothing\n\n", "t.yaml:1: ", "the configuration is empty"},
        {"syntax error", edit("  df: set", "  df: set: x"), "t.yaml:42: ", "YAML syntax error: "},
        {"unclosed flow list", edit("eids: [192.0.2.10, 2001:db8:1::10]", "eids: [192.0.2.10, 2001:db8:1::10"),
         "t.yaml:48: ", "YAML syntax error"},
        {"top level is a list", "- a\n- b\n", "t.yaml:1: ", "must be a map of sections, got a list"},
        {"top level is a scalar", "hello\n", "t.yaml:1: ", "must be a map of sections, got 'hello'"},
        {"two documents", std::string(kMinimal) + "---\nrouter: {}\n", "t.yaml:12: ", "more than one YAML document"},
        {"unknown section", edit("cache:", "cashe:"), "t.yaml:37: cashe: ", "unknown key (did you mean 'cache'?)"},
        {"unrelated section", std::string(kBase) + "bgp: {}\n", "t.yaml:49: bgp: ", "unknown key (expected one of"},
        {"missing ports", edit(kMinimalPorts, "", kMinimal),
         "t.yaml:1: ports: ", "required key is missing"},
        {"missing locators", "gateway: {ipv4: 192.0.2.1, mac: 02:00:5e:00:00:01}\n", "t.yaml:1: locators: ",
         "required key is missing"},
    });
}

TEST_CASE("config: router, locators and gateway errors", "[config]") {
    check_cases({
        {"typo'd key", edit("  workers: 2", "  wokers: 2"), "t.yaml:3: router.wokers: ",
         "unknown key (did you mean 'workers'?)"},
        {"duplicate key", edit("  name: ar1\n", "  name: ar1\n  name: ar2\n"), "t.yaml:3: router.name: ",
         "duplicate key"},
        {"empty name", edit("  name: ar1", "  name: \"\""), "t.yaml:2: router.name: ", "must not be empty"},
        {"null name", edit("  name: ar1", "  name:"), "t.yaml:2: router.name: ", "expected a string, got an empty value"},
        {"workers 0", edit("  workers: 2", "  workers: 0"), "t.yaml:3: router.workers: ",
         "expected an integer in 1..64, got '0'"},
        {"workers 65", edit("  workers: 2", "  workers: 65"), "t.yaml:3: router.workers: ", "got '65'"},
        {"workers float", edit("  workers: 2", "  workers: 2.5"), "t.yaml:3: router.workers: ", "got '2.5'"},
        {"backoff too big", edit("idle_backoff_us: 10", "idle_backoff_us: 100001"), "t.yaml:4: router.idle_backoff_us: ",
         "0..100000"},
        {"udp_port 70000", edit("udp_port: 4342", "udp_port: 70000"), "t.yaml:5: router.udp_port: ",
         "expected an integer in 1..65535, got '70000'"},
        {"udp_port -1", edit("udp_port: 4342", "udp_port: -1"), "t.yaml:5: router.udp_port: ", "got '-1'"},
        {"udp_port abc", edit("udp_port: 4342", "udp_port: abc"), "t.yaml:5: router.udp_port: ", "got 'abc'"},
        {"udp_port 0", edit("udp_port: 4342", "udp_port: 0"), "t.yaml:5: router.udp_port: ", "got '0'"},
        {"udp_port list", edit("udp_port: 4342", "udp_port: [1]"), "t.yaml:5: router.udp_port: ", "got a list"},
        {"udp_port huge", edit("udp_port: 4342", "udp_port: 99999999999999999999999"), "t.yaml:5: router.udp_port: ",
         "got '99999999999999999999999'"},
        {"log level", edit("log_level: debug", "log_level: loud"), "t.yaml:6: router.log_level: ",
         "expected 'debug', 'info', 'warning' or 'error', got 'loud'"},
        {"router is a list",
         edit("router:\n  name: ar1\n  workers: 2\n  idle_backoff_us: 10\n  udp_port: 4342\n  log_level: debug\n",
              "router: [1]\n"),
         "t.yaml:1: router: ",
         "expected a map, got a list"},
        {"v6 locator given as v4", edit("  v6: 2001:db8:100::1", "  v6: 198.51.100.9"), "t.yaml:9: locators.v6: ",
         "expected an IPv6 address, got '198.51.100.9'"},
        {"v4 locator garbage", edit("  v4: 198.51.100.1", "  v4: 198.51.100"), "t.yaml:8: locators.v4: ",
         "expected an IPv4 address, got '198.51.100'"},
        {"unspecified locator", edit("  v4: 198.51.100.1", "  v4: 0.0.0.0"), "t.yaml:8: locators.v4: ",
         "unspecified address"},
        {"no locator", edit("  v4: 198.51.100.1\n  v6: 2001:db8:100::1\n", "  {}\n"), "t.yaml:7: locators: ",
         "at least one of 'v4' and 'v6' is required"},
        {"multicast gateway MAC", edit("  mac: 02:00:5e:00:00:01", "  mac: 01:00:5e:00:00:01"), "t.yaml:13: gateway.mac: ",
         "multicast MAC address"},
        {"zero gateway MAC", edit("  mac: 02:00:5e:00:00:01", "  mac: 00:00:00:00:00:00"), "t.yaml:13: gateway.mac: ",
         "all-zero MAC address"},
        {"missing gateway MAC", edit("  mac: 02:00:5e:00:00:01\n", ""), "t.yaml:10: gateway.mac: ",
         "required key is missing"},
        {"gateway without address", edit("  ipv4: 192.0.2.1\n  ipv6: 2001:db8:1::1\n", ""), "t.yaml:10: gateway: ",
         "at least one of 'ipv4' and 'ipv6' is required"},
        {"gateway is a list", edit("gateway:\n  ipv4: 192.0.2.1\n  ipv6: 2001:db8:1::1\n  mac: 02:00:5e:00:00:01\n",
                                   "gateway: [192.0.2.1]\n"),
         "t.yaml:10: gateway: ", "expected a map, got a list"},
        {"gateway ipv4 multicast", edit("  ipv4: 192.0.2.1", "  ipv4: 224.0.0.1"), "t.yaml:11: gateway.ipv4: ",
         "not a unicast address"},
    });
}

TEST_CASE("config: port and core errors", "[config]") {
    check_cases({
        {"wrong role", edit("    role: core", "    role: coer"), "t.yaml:24: ports[1].role: ",
         "expected 'access' or 'core', got 'coer'"},
        {"bad port MAC", edit("    mac: 02:00:00:00:01:01", "    mac: 02:00:00:00:01"), "t.yaml:20: ports[0].mac: ",
         "expected a MAC address"},
        {"missing device", edit("    device: net_pcap1\n", ""), "t.yaml:22: ports[1].device: ", "required key is missing"},
        {"two core ports", edit("core:\n", "  - { name: core1, device: net_pcap2, role: core }\ncore:\n"),
         "t.yaml:26: ports[2].role: ", "exactly one core port is required"},
        {"no access port", edit("  - name: access0\n    device: net_pcap0\n    role: access\n    tenant: 1\n    mtu: 1500\n"
                                "    mac: 02:00:00:00:01:01\n    vlan: 100\n",
                                ""),
         "t.yaml:14: ports: ", "at least one access port is required"},
        {"no core port", edit("    role: core\n    mtu: 9000\n", "    role: access\n"), "t.yaml:14: ports: ",
         "exactly one core port is required, found none"},
        {"empty port list", edit(kMinimalPorts, "ports: []\n", kMinimal), "t.yaml:6: ports: ", "at least one access port and one core port"},
        {"duplicate port name", edit("  - name: core0", "  - name: access0"), "t.yaml:22: ports[1].name: ",
         "duplicate port name 'access0'"},
        {"duplicate device", edit("    device: net_pcap1", "    device: net_pcap0"), "t.yaml:23: ports[1].device: ",
         "already used by port 'access0'"},
        {"tenant 2^24", edit("    tenant: 1\n", "    tenant: 16777216\n"), "t.yaml:18: ports[0].tenant: ",
         "expected an integer in 0..16777215, got '16777216'"},
        {"tenant on core port", edit("    role: core\n", "    role: core\n    tenant: 3\n"), "t.yaml:25: ports[1].tenant: ",
         "only access ports have a tenant"},
        {"vlan 4095", edit("    vlan: 100", "    vlan: 4095"), "t.yaml:21: ports[0].vlan: ",
         "expected an integer in 1..4094, got '4095'"},
        {"vlan on core port", edit("    mtu: 9000", "    mtu: 9000\n    vlan: 7"), "t.yaml:26: ports[1].vlan: ",
         "only access ports can have a VLAN"},
        {"mtu 575", edit("    mtu: 1500", "    mtu: 575"), "t.yaml:19: ports[0].mtu: ", "576..9216"},
        {"mtu 9217", edit("    mtu: 9000", "    mtu: 9217"), "t.yaml:25: ports[1].mtu: ", "got '9217'"},
        {"port is a scalar", edit("  - name: core0\n    device: net_pcap1\n    role: core\n    mtu: 9000\n", "  - core0\n"),
         "t.yaml:22: ports[1]: ", "expected a map, got 'core0'"},
        {"unknown port key", edit("    vlan: 100", "    vlna: 100"), "t.yaml:21: ports[0].vlna: ",
         "unknown key (did you mean 'vlan'?)"},
        {"core.port names an access port", edit("  port: core0", "  port: access0"), "t.yaml:27: core.port: ",
         "port 'access0' is an access port"},
        {"core.port unknown", edit("  port: core0", "  port: core9"), "t.yaml:27: core.port: ", "no port named 'core9'"},
        {"missing next_hop", edit("  next_hop:\n    ipv4: 198.51.100.254\n    ipv6: 2001:db8:100::fe\n"
                                  "    mac: 02:00:00:00:ff:fe\n",
                                  ""),
         "t.yaml:26: core.next_hop: ", "required key is missing"},
        {"next_hop.ipv6 missing while locators.v6 set", edit("    ipv6: 2001:db8:100::fe\n", ""),
         "t.yaml:28: core.next_hop.ipv6: ", "required key is missing (locators.v6 is set)"},
        {"next_hop.ipv4 missing while locators.v4 set", edit("    ipv4: 198.51.100.254\n", ""),
         "t.yaml:28: core.next_hop.ipv4: ", "locators.v4 is set"},
        {"next_hop.ipv4 is v6", edit("    ipv4: 198.51.100.254", "    ipv4: 2001:db8::1"), "t.yaml:29: core.next_hop.ipv4: ",
         "expected an IPv4 address, got '2001:db8::1' (an IPv6 address)"},
        {"next_hop mac multicast", edit("    mac: 02:00:00:00:ff:fe", "    mac: ff:ff:ff:ff:ff:ff"),
         "t.yaml:31: core.next_hop.mac: ", "multicast"},
    });
}

TEST_CASE("config: prefix, cache and encap errors", "[config]") {
    check_cases({
        {"prefix with host bits", edit("  - 192.0.2.0/24", "  - 192.0.2.1/24"), "t.yaml:33: mobile_prefixes[0]: ",
         "host bits are set in '192.0.2.1/24' (did you mean 192.0.2.0/24?)"},
        {"v6 prefix with host bits", edit("prefix: 2001:db8:1::/64", "prefix: 2001:db8:1::1/64"),
         "t.yaml:34: mobile_prefixes[1].prefix: ", "did you mean 2001:db8:1::/64?"},
        {"prefix length 33", edit("  - 198.51.100.0/24", "  - 198.51.100.0/33"), "t.yaml:36: peer_prefixes[0]: ",
         "prefix length 33 out of range for IPv4 (0..32)"},
        {"prefix without length", edit("  - 198.51.100.0/24", "  - 198.51.100.0"), "t.yaml:36: peer_prefixes[0]: ",
         "no '/len'"},
        {"prefix with bad length", edit("  - 198.51.100.0/24", "  - 198.51.100.0/x"), "t.yaml:36: peer_prefixes[0]: ",
         "bad length"},
        {"duplicate peer prefix", edit("  - 198.51.100.0/24\n", "  - 198.51.100.0/24\n  - 198.51.100.0/24\n"),
         "t.yaml:37: peer_prefixes[1]: ", "duplicate peer prefix 198.51.100.0/24"},
        {"mobile prefix tenant too big", edit("tenant: 1 }\npeer", "tenant: 0x1000000 }\npeer"),
         "t.yaml:34: mobile_prefixes[1].tenant: ", "got '0x1000000'"},
        {"mobile prefix map without prefix", edit("{ prefix: 2001:db8:1::/64, tenant: 1 }", "{ tenant: 1 }"),
         "t.yaml:34: mobile_prefixes[1].prefix: ", "required key is missing"},
        {"mobile prefix is a list", edit("  - 192.0.2.0/24", "  - [192.0.2.0/24]"), "t.yaml:33: mobile_prefixes[0]: ",
         "expected a prefix or a map"},
        {"peer_prefixes is a map", edit("  - 198.51.100.0/24", "  a: 198.51.100.0/24"), "t.yaml:35: peer_prefixes: ",
         "expected a list, got a map"},
        {"cache entries 63", edit("  entries: 1024", "  entries: 63"), "t.yaml:38: cache.entries: ", "64..16777216"},
        {"cache attachments too many", edit("  attachments: 256", "  attachments: 1048577"),
         "t.yaml:39: cache.attachments: ", "16..1048576"},
        {"mss_clamp banana", edit("  mss_clamp: 1400", "  mss_clamp: banana"), "t.yaml:43: encap.mss_clamp: ",
         "expected 0 (off), 'auto' or an integer in 536..9000, got 'banana'"},
        {"mss_clamp 535", edit("  mss_clamp: 1400", "  mss_clamp: 535"), "t.yaml:43: encap.mss_clamp: ", "got '535'"},
        {"mss_clamp 9001", edit("  mss_clamp: 1400", "  mss_clamp: 9001"), "t.yaml:43: encap.mss_clamp: ", "got '9001'"},
        {"df bogus", edit("  df: set", "  df: maybe"), "t.yaml:42: encap.df: ",
         "expected 'copy', 'set' or 'clear', got 'maybe'"},
        {"bool bogus", edit("udp_checksum_v6: true", "udp_checksum_v6: 1"), "t.yaml:41: encap.udp_checksum_v6: ",
         "expected true or false, got '1'"},
        {"icmp rate too big", edit("icmp_rate_per_sec: 10", "icmp_rate_per_sec: 1000001"),
         "t.yaml:44: encap.icmp_rate_per_sec: ", "0..1000000"},
    });
}

TEST_CASE("config: static mapping and attachment errors", "[config]") {
    const std::string second_att =
        "  - { tenant: 1, mo_id: 8, eids: [192.0.2.11, 2001:db8:1::10], mac: 02:00:00:00:00:11, port: access0 }\n";
    check_cases({
        {"attachment mo_id 0", edit("mo_id: 7", "mo_id: 0"), "t.yaml:48: static_attachments[0].mo_id: ",
         "must not be zero"},
        {"mapping mo_id 0x0", edit("mo_id: 0x2a", "mo_id: 0x0"), "t.yaml:46: static_mappings[0].mo_id: ",
         "must not be zero"},
        {"mo_id overflow", edit("mo_id: 0x2a", "mo_id: 0x10000000000000000"), "t.yaml:46: static_mappings[0].mo_id: ",
         "got '0x10000000000000000'"},
        {"mo_id bad hex", edit("mo_id: 0x2a", "mo_id: 0x2g"), "t.yaml:46: static_mappings[0].mo_id: ", "got '0x2g'"},
        {"epoch negative", edit("epoch: 9", "epoch: -9"), "t.yaml:46: static_mappings[0].epoch: ", "got '-9'"},
        {"typo in mapping", edit("epoch: 9", "epoc: 9"), "t.yaml:46: static_mappings[0].epoc: ",
         "unknown key (did you mean 'epoch'?)"},
        {"mapping without locator", edit(", locator: 198.51.100.2", ""), "t.yaml:46: static_mappings[0].locator: ",
         "required key is missing"},
        {"mapping bad locator", edit("locator: 198.51.100.2", "locator: 198.51.100.256"),
         "t.yaml:46: static_mappings[0].locator: ", "expected an IP address, got '198.51.100.256'"},
        {"mapping EID is attached here", edit("eid: 192.0.2.20", "eid: 192.0.2.10"), "t.yaml:46: static_mappings[0].eid: ",
         "EID 192.0.2.10 of tenant 1 is attached here"},
        {"mapping of an attached MO", edit("mo_id: 0x2a", "mo_id: 7"), "t.yaml:46: static_mappings[0].mo_id: ",
         "is attached here"},
        {"duplicate EID across attachments", std::string(kBase) + second_att, "t.yaml:49: static_attachments[1].eids[1]: ",
         "EID 2001:db8:1::10 of tenant 1 is already used by static_attachments[0]"},
        {"EID twice in one attachment", edit("eids: [192.0.2.10, 2001:db8:1::10]", "eids: [192.0.2.10, 192.0.2.10]"),
         "t.yaml:48: static_attachments[0].eids[1]: ", "listed twice"},
        {"same MO attached twice", std::string(kBase) +
                                       "  - { mo_id: 7, eids: [192.0.2.12], mac: 02:00:00:00:00:12, port: access0 }\n",
         "t.yaml:49: static_attachments[1].mo_id: ", "attached twice"},
        {"same MAC twice on a port", std::string(kBase) +
                                         "  - { mo_id: 9, eids: [192.0.2.12], mac: 02:00:00:00:00:10, port: access0 }\n",
         "t.yaml:49: static_attachments[1].mac: ", "already used by static_attachments[0]"},
        {"attachment on unknown port", edit("port: access0 }", "port: access9 }"), "t.yaml:48: static_attachments[0].port: ",
         "no port named 'access9'"},
        {"attachment on core port", edit("port: access0 }", "port: core0 }"), "t.yaml:48: static_attachments[0].port: ",
         "port 'core0' is a core port"},
        {"attachment tenant differs from port", edit("{ tenant: 1, mo_id: 7", "{ tenant: 2, mo_id: 7"),
         "t.yaml:48: static_attachments[0].tenant: ", "differs from tenant 1 of port 'access0'"},
        {"attachment without EIDs", edit("eids: [192.0.2.10, 2001:db8:1::10]", "eids: []"),
         "t.yaml:48: static_attachments[0].eids: ", "at least one EID is required"},
        {"attachment EIDs not a list", edit("eids: [192.0.2.10, 2001:db8:1::10]", "eids: 192.0.2.10"),
         "t.yaml:48: static_attachments[0].eids: ", "expected a list, got '192.0.2.10'"},
        {"attachment bad EID", edit("eids: [192.0.2.10, 2001:db8:1::10]", "eids: [192.0.2.10, 2001:db8:1::zz]"),
         "t.yaml:48: static_attachments[0].eids[1]: ", "expected an IP address"},
        {"attachment multicast MAC", edit("mac: 02:00:00:00:00:10", "mac: 33:33:00:00:00:01"),
         "t.yaml:48: static_attachments[0].mac: ", "multicast"},
        {"attachment missing mac", edit(", mac: 02:00:00:00:00:10", ""), "t.yaml:48: static_attachments[0].mac: ",
         "required key is missing"},
        {"static_attachments is a map", edit("  - { tenant: 1, mo_id: 7", "  x: { tenant: 1, mo_id: 7"),
         "t.yaml:47: static_attachments: ", "expected a list, got a map"},
        {"attachment entry is a scalar", std::string(kBase) + "  - access0\n", "t.yaml:49: static_attachments[1]: ",
         "expected a map, got 'access0'"},
    });
}

TEST_CASE("config: multi-line block errors report the right line", "[config]") {
    // A block-style attachment: the error points at the offending line, not at the list entry.
    std::string y = std::string(kBase) +
                    "  - tenant: 1\n"           // 49
                    "    mo_id: 8\n"            // 50
                    "    eids:\n"               // 51
                    "      - 192.0.2.30\n"      // 52
                    "      - 192.0.2.10\n"      // 53
                    "    mac: 02:00:00:00:00:31\n"
                    "    port: access0\n";
    std::string msg = error_of(y);
    CHECK(msg.rfind("t.yaml:53: static_attachments[1].eids[1]: EID 192.0.2.10", 0) == 0);

    // A missing key in a block map names the line of the map's entry.
    y = std::string(kBase) + "  - tenant: 1\n    mo_id: 8\n    eids: [192.0.2.31]\n    port: access0\n";
    msg = error_of(y);
    CHECK(msg == "t.yaml:49: static_attachments[1].mac: required key is missing");
}

TEST_CASE("config: dht section", "[config][dht]") {
    const std::string dht = std::string(kMinimal) + R"(dht:
  port: 4333
  bind4: 203.0.113.1
  bootstrap: ["203.0.113.2:4333", "[2001:db8:ff::2]:4333"]
  ca_cert: pki/ca.crt
  identity_key: /etc/lm/ar1.key
  identity_cert: pki/ar1.crt
  max_peer_req_per_sec: -1
  negative_ttl_ms: 500
)";
    Config c = lm::load_config_string(dht, "t.yaml");
    REQUIRE(c.dht);
    CHECK(c.dht->port == 4333);
    CHECK(c.dht->bind4 == lm::IpAddr::parse("203.0.113.1"));
    CHECK(c.dht->bootstrap == std::vector<std::string>{"203.0.113.2:4333", "[2001:db8:ff::2]:4333"});
    CHECK(c.dht->max_peer_req_per_sec == -1);
    CHECK(c.dht->negative_ttl_ms == 500);
    CHECK(c.dht->max_watches == 4096);
    CHECK_FALSE(lm::load_config_string(kMinimal).dht);

    // Paths are relative to the config file.
    char tmpl[] = "/tmp/lmcfgXXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const std::string path = std::string(tmpl) + "/ar1.yaml";
    {
        std::ofstream f(path);
        f << dht;
    }
    Config fc = lm::load_config_file(path);
    CHECK(fc.dht->ca_cert == std::string(tmpl) + "/pki/ca.crt");
    CHECK(fc.dht->identity_key == "/etc/lm/ar1.key");
    CHECK(fc.dht->identity_cert == std::string(tmpl) + "/pki/ar1.crt");
    std::remove(path.c_str());
    rmdir(tmpl);

    auto err = [&](const std::string& from, const std::string& to) {
        std::string s = dht;
        auto p = s.find(from);
        REQUIRE(p != std::string::npos);
        s.replace(p, from.size(), to);
        try {
            lm::load_config_string(s, "t.yaml");
        } catch (const lm::ConfigError& e) {
            return std::string(e.what());
        }
        FAIL("no error for " << to);
        return std::string();
    };
    CHECK_THAT(err("  ca_cert: pki/ca.crt\n", ""), Catch::Contains("t.yaml:11: dht.ca_cert: required key is missing"));
    CHECK_THAT(err("203.0.113.2:4333", "203.0.113.2"), Catch::Contains("t.yaml:14: dht.bootstrap[0]: expected ADDRESS:PORT"));
    CHECK_THAT(err("203.0.113.2:4333", "example.org:4333"), Catch::Contains("dht.bootstrap[0]: expected ADDRESS:PORT"));
    CHECK_THAT(err("203.0.113.2:4333", "203.0.113.2:70000"), Catch::Contains("dht.bootstrap[0]"));
    CHECK_THAT(err("port: 4333", "port: 0"), Catch::Contains("t.yaml:12: dht.port: expected an integer in 1..65535"));
    CHECK_THAT(err("bind4: 203.0.113.1", "bind4: 2001:db8::1"), Catch::Contains("dht.bind4: expected an IPv4 address"));
    CHECK_THAT(err("max_peer_req_per_sec: -1", "max_peer_req_per_sec: -2"), Catch::Contains("dht.max_peer_req_per_sec"));
    CHECK_THAT(err("negative_ttl_ms: 500", "negative_tll_ms: 500"), Catch::Contains("dht.negative_tll_ms: unknown key"));
}

TEST_CASE("config: port names must be telemetry-safe", "[config]") {
    std::string s = kMinimal;
    auto p = s.find("name: a,");
    REQUIRE(p != std::string::npos);
    s.replace(p, 8, "name: acc-0,");
    try {
        lm::load_config_string(s, "t.yaml");
        FAIL("a port name with '-' was accepted");
    } catch (const lm::ConfigError& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains("t.yaml:7: ports[0].name: port name 'acc-0' must be 1-32 letters"));
    }
}
