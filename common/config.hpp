// Router configuration: the in-memory form of the YAML file (schema in docs/operations.md).
// Loading validates everything up front; a bad file yields ConfigError naming key and line.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/types.hpp"

namespace lm {

enum class PortRole : uint8_t { Access, Core };
enum class DfPolicy : uint8_t { Copy, Set, Clear };  // outer IPv4 DF bit
enum class LogLevel : uint8_t { Debug, Info, Warning, Error };

struct PortConfig {
    std::string name;             // operator's name, e.g. "access0"; referenced by other keys
    std::string device;           // DPDK device name, e.g. "net_pcap0" or "0000:03:00.0"
    PortRole role = PortRole::Access;
    TenantId tenant = 0;          // access ports: tenant of everything received there
    uint16_t mtu = 1500;          // IP MTU of the link
    std::optional<MacAddr> mac;   // override the device's MAC
    std::optional<uint16_t> vlan; // access ports: 802.1Q tag expected on rx, added on tx
};

struct NextHopConfig {
    std::optional<IpAddr> ipv4;
    std::optional<IpAddr> ipv6;
    std::optional<MacAddr> mac;   // configured; otherwise resolved by ARP/ND
};

struct MobilePrefix {
    Prefix prefix;
    std::optional<TenantId> tenant;  // unset: applies to every tenant
};

struct StaticMapping {
    TenantId tenant = 0;
    IpAddr eid;
    MoId mo_id = 0;
    IpAddr locator;
    Epoch epoch = 0;
};

struct StaticAttachment {
    TenantId tenant = 0;
    MoId mo_id = 0;
    std::vector<IpAddr> eids;
    MacAddr mac;
    std::string port;  // name of an access port
};

// The LM directory (OpenDHT) on the management network. Absent: static mappings only.
struct DhtSettings {
    uint16_t port = 4222;
    std::optional<IpAddr> bind4;           // address on the management network (default any)
    std::optional<IpAddr> bind6;           // IPv6 socket too when set
    std::vector<std::string> bootstrap;    // "host:port" / "[v6]:port"
    std::string ca_cert;                   // domain CA certificate (PEM); relative to the config file
    std::string identity_key;              // this AR's key and certificate (PEM)
    std::string identity_cert;
    long max_peer_req_per_sec = 0;         // OpenDHT per-peer limit: 0 = its default, -1 = none
    uint32_t negative_ttl_ms = 2000;       // an EID nobody publishes is not asked again for this long
    uint32_t max_watches = 4096;           // EIDs watched for new locators (push updates)
    uint32_t cache_ttl_s = 300;            // a learned mapping is re-resolved after this long
};

struct Config {
    // router:
    std::string name = "lm-router";
    unsigned workers = 1;
    unsigned idle_backoff_us = 50;   // worker sleeps this long after an empty poll round (0 = spin)
    uint16_t udp_port = 4341;
    LogLevel log_level = LogLevel::Info;

    // locators: this AR's addresses on the core network
    std::optional<IpAddr> locator_v4;
    std::optional<IpAddr> locator_v6;

    // gateway: anycast gateway the MOs use, identical on every AR
    std::optional<IpAddr> gateway_v4;
    std::optional<IpAddr> gateway_v6;
    MacAddr gateway_mac;

    std::vector<PortConfig> ports;
    std::string core_port;           // name of the (single) core port
    NextHopConfig next_hop;

    std::vector<MobilePrefix> mobile_prefixes;
    std::vector<Prefix> peer_prefixes;   // LM packets are accepted only from these sources

    // cache:
    uint32_t cache_entries = 65536;      // per worker
    uint32_t attachment_entries = 4096;  // per worker
    // Packets that missed the cache wait here (per worker) while the control lcore resolves.
    uint32_t pending_packets = 256;      // in total
    uint32_t pending_per_eid = 8;
    uint32_t pending_timeout_ms = 1000;

    // encap:
    bool udp_checksum_v6 = false;  // RFC 6935/6936 allow zero for tunnels
    DfPolicy df = DfPolicy::Copy;
    uint16_t mss_clamp = 0;        // 0 = off; else clamp TCP MSS in SYNs on access ports
    bool mss_clamp_auto = false;   // derive from core MTU minus overhead
    uint32_t icmp_rate_per_sec = 100;  // per worker, for generated ICMP errors

    std::vector<StaticMapping> static_mappings;
    std::vector<StaticAttachment> static_attachments;

    std::optional<DhtSettings> dht;

    // handover: what happens while an MO migrates (docs/operations.md, "Handover").
    // Held packets (migrate-begin until the new locator is known), per worker:
    uint32_t hold_packets = 4096;        // in total
    uint32_t hold_per_mo = 2048;
    uint32_t hold_timeout_ms = 3000;     // held longer than this: dropped (hold_timeout)
    uint32_t forward_time_s = 60;        // forwarding pointer lifetime after the MO moved away
    uint32_t hint_rate_per_sec = 100;    // refresh hints sent, per worker
    uint32_t hint_min_interval_ms = 100; // a hinted MO is re-resolved at most this often
    bool detect_attach = true;           // attach MOs announced by GARP / unsolicited NA / RARP
    uint32_t announce_count = 2;         // gateway GARP/NA sent to a newly attached MO

    const PortConfig* find_port(const std::string& n) const {
        for (auto& p : ports)
            if (p.name == n) return &p;
        return nullptr;
    }
};

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws ConfigError with "FILE:LINE: key 'a.b': what is wrong".
Config load_config_file(const std::string& path);
Config load_config_string(const std::string& yaml, const std::string& origin = "<string>");

}  // namespace lm
