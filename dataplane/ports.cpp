#include "dataplane/ports.hpp"

#include <rte_errno.h>

#include <fmt/format.h>
#include <stdexcept>

#include "common/lm_wire.hpp"
#include "dataplane/dp_config.hpp"

namespace lm {

OpenedPort open_port(const PortConfig& pc, unsigned nb_queues, rte_mempool* pool) {
    uint16_t pid;
    if (rte_eth_dev_get_port_by_name(pc.device.c_str(), &pid) != 0)
        throw std::runtime_error(fmt::format("port '{}': no DPDK device named '{}' (check the EAL --vdev/-a arguments)", pc.name, pc.device));
    rte_eth_dev_info info;
    if (int r = rte_eth_dev_info_get(pid, &info); r != 0)
        throw std::runtime_error(fmt::format("port '{}': cannot read device info: {}", pc.name, rte_strerror(-r)));
    if (nb_queues > info.max_rx_queues || nb_queues > info.max_tx_queues)
        throw std::runtime_error(fmt::format("port '{}': device '{}' has {} rx / {} tx queues, {} workers need {} each",
                                             pc.name, pc.device, info.max_rx_queues, info.max_tx_queues, nb_queues, nb_queues));
    rte_eth_conf conf{};
    if (nb_queues > 1 && info.flow_type_rss_offloads) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP);
    }
    if (int r = rte_eth_dev_configure(pid, nb_queues, nb_queues, &conf); r != 0)
        throw std::runtime_error(fmt::format("port '{}': configure failed: {}", pc.name, rte_strerror(-r)));
    uint16_t nb_rxd = 1024, nb_txd = 1024;
    rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd);
    int socket = rte_eth_dev_socket_id(pid);
    for (unsigned q = 0; q < nb_queues; ++q) {
        if (int r = rte_eth_rx_queue_setup(pid, q, nb_rxd, socket, nullptr, pool); r != 0)
            throw std::runtime_error(fmt::format("port '{}': rx queue {} setup failed: {}", pc.name, q, rte_strerror(-r)));
        if (int r = rte_eth_tx_queue_setup(pid, q, nb_txd, socket, nullptr); r != 0)
            throw std::runtime_error(fmt::format("port '{}': tx queue {} setup failed: {}", pc.name, q, rte_strerror(-r)));
    }
    // The MTU is the IP MTU we enforce in software; a device that cannot be told is not an error.
    rte_eth_dev_set_mtu(pid, pc.role == PortRole::Core ? uint16_t(pc.mtu) : pc.mtu);
    if (int r = rte_eth_dev_start(pid); r != 0)
        throw std::runtime_error(fmt::format("port '{}': start failed: {}", pc.name, rte_strerror(-r)));
    rte_eth_promiscuous_enable(pid);
    OpenedPort op{pid, {}};
    if (pc.mac) {
        op.mac = *pc.mac;
    } else {
        rte_ether_addr a;
        rte_eth_macaddr_get(pid, &a);
        std::copy(std::begin(a.addr_bytes), std::end(a.addr_bytes), op.mac.b.begin());
    }
    return op;
}

void close_port(uint16_t port_id) {
    rte_eth_dev_stop(port_id);
    rte_eth_dev_close(port_id);
}

DpConfig make_dp_config(const Config& c, const std::vector<uint16_t>& port_ids, const std::vector<MacAddr>& port_macs) {
    DpConfig d;
    d.nb_ports = uint8_t(c.ports.size());
    for (size_t i = 0; i < c.ports.size() && i < kMaxPorts; ++i) {
        auto& p = c.ports[i];
        auto& dp = d.ports[i];
        dp.port_id = i < port_ids.size() ? port_ids[i] : uint16_t(i);
        dp.role = p.role;
        dp.tenant = p.tenant;
        dp.mtu = p.mtu;
        dp.mac = i < port_macs.size() ? port_macs[i] : (p.mac ? *p.mac : MacAddr{});
        dp.has_vlan = p.vlan.has_value();
        dp.vlan = p.vlan.value_or(0);
        if (p.name == c.core_port) d.core_index = uint8_t(i);
    }
    if (c.locator_v4) { d.has_loc4 = true; d.loc4 = *c.locator_v4; }
    if (c.locator_v6) { d.has_loc6 = true; d.loc6 = *c.locator_v6; }
    if (c.gateway_v4) { d.has_gw4 = true; d.gw4 = *c.gateway_v4; }
    if (c.gateway_v6) { d.has_gw6 = true; d.gw6 = *c.gateway_v6; }
    d.gw_mac = c.gateway_mac;
    d.mobile = c.mobile_prefixes;
    d.peers = c.peer_prefixes;
    d.udp_port = c.udp_port;
    d.udp_csum_v6 = c.udp_checksum_v6;
    d.df = c.df;
    d.icmp_rate = c.icmp_rate_per_sec;
    d.pending_packets = c.pending_packets;
    d.pending_per_eid = c.pending_per_eid;
    d.pending_timeout_ms = c.pending_timeout_ms;
    d.hold_packets = c.hold_packets;
    d.hold_per_mo = c.hold_per_mo;
    d.hold_timeout_ms = c.hold_timeout_ms;
    d.hint_rate = c.hint_rate_per_sec;
    if (c.mss_clamp_auto) {
        // Worst case outer header: IPv6 if this AR has a v6 locator (peers may be either).
        unsigned core_mtu = d.ports[d.core_index].mtu;
        unsigned over = c.locator_v6 ? wire::kOverheadV6 : wire::kOverheadV4;
        unsigned inner = core_mtu > over ? core_mtu - over : 0;
        d.mss_v4 = uint16_t(inner > 40 ? inner - 40 : 0);
        d.mss_v6 = uint16_t(inner > 60 ? inner - 60 : 0);
    } else if (c.mss_clamp) {
        d.mss_v4 = c.mss_clamp;
        d.mss_v6 = c.mss_clamp > 20 ? uint16_t(c.mss_clamp - 20) : c.mss_clamp;
    }
    return d;
}

}  // namespace lm
