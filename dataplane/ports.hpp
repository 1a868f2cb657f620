// Ethernet port bring-up: one rx and one tx queue per worker on every port.
#pragma once

#include <rte_ethdev.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace lm {

struct OpenedPort {
    uint16_t port_id;
    MacAddr mac;
};

// Finds the device by name, configures nb_queues rx/tx queue pairs, starts it in promiscuous
// mode (access ports see frames for the anycast gateway MAC). Throws std::runtime_error.
OpenedPort open_port(const PortConfig& pc, unsigned nb_queues, rte_mempool* pool);
void close_port(uint16_t port_id);

}  // namespace lm
