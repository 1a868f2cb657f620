// The data plane's read-only view of the configuration: flat, fixed-size, built once before the
// workers start and never changed while they run (changes arrive as UpdateMsg instead).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "common/config.hpp"
#include "common/counters.hpp"
#include "common/types.hpp"

namespace lm {

struct DpPort {
    uint16_t port_id = 0;  // DPDK ethdev id
    PortRole role = PortRole::Access;
    TenantId tenant = 0;
    uint16_t mtu = 1500;
    MacAddr mac;
    bool has_vlan = false;
    uint16_t vlan = 0;
};

struct DpConfig {
    std::array<DpPort, kMaxPorts> ports{};
    uint8_t nb_ports = 0;
    uint8_t core_index = 0;

    bool has_loc4 = false, has_loc6 = false;
    IpAddr loc4, loc6;
    bool has_gw4 = false, has_gw6 = false;
    IpAddr gw4, gw6;
    MacAddr gw_mac;

    std::vector<MobilePrefix> mobile;  // few entries: linear scan
    std::vector<Prefix> peers;

    uint16_t udp_port = 4341;
    bool udp_csum_v6 = false;
    DfPolicy df = DfPolicy::Copy;
    uint16_t mss_v4 = 0, mss_v6 = 0;  // clamp values, 0 = off
    uint32_t icmp_rate = 100;
    uint32_t pending_packets = 256, pending_per_eid = 8, pending_timeout_ms = 1000;  // miss buffer
    uint32_t hold_packets = 4096, hold_per_mo = 2048, hold_timeout_ms = 3000;      // handover hold buffer
    uint32_t hint_rate = 100;  // refresh hints per second (this worker)
};

// Build from the validated config; port ids and MACs come from the caller (who opened devices).
// MSS clamp values are derived here (auto: core MTU minus the largest encapsulation overhead).
DpConfig make_dp_config(const Config& c, const std::vector<uint16_t>& port_ids, const std::vector<MacAddr>& port_macs);

}  // namespace lm
