#include "dataplane/dpdk_env.hpp"

#include <rte_errno.h>

#include <fmt/format.h>
#include <stdexcept>

namespace lm {

Eal::Eal(int argc, char** argv) {
    consumed_ = rte_eal_init(argc, argv);
    if (consumed_ < 0) throw std::runtime_error(fmt::format("EAL initialisation failed: {}", rte_strerror(rte_errno)));
}

Eal::~Eal() { rte_eal_cleanup(); }

MempoolPtr make_pktmbuf_pool(const std::string& name, unsigned n, int socket) {
    auto* p = rte_pktmbuf_pool_create(name.c_str(), n, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    if (!p) throw std::runtime_error(fmt::format("cannot create mbuf pool '{}' ({} mbufs): {}", name, n, rte_strerror(rte_errno)));
    return MempoolPtr(p);
}

static RingPtr make_ring(const std::string& name, unsigned esize, unsigned count, int socket, unsigned flags) {
    auto* r = rte_ring_create_elem(name.c_str(), esize, rte_align32pow2(count), socket, flags);
    if (!r) throw std::runtime_error(fmt::format("cannot create ring '{}': {}", name, rte_strerror(rte_errno)));
    return RingPtr(r);
}

RingPtr make_spsc_ring(const std::string& name, unsigned esize, unsigned count, int socket) {
    return make_ring(name, esize, count, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

RingPtr make_mpsc_ring(const std::string& name, unsigned esize, unsigned count, int socket) {
    return make_ring(name, esize, count, socket, RING_F_SC_DEQ);
}

}  // namespace lm
