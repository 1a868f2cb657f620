// RAII owners for the DPDK objects the router creates. Each frees its object exactly once.
#pragma once

#include <rte_eal.h>
#include <rte_hash.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <memory>
#include <string>

namespace lm {

// rte_eal_init / rte_eal_cleanup. Returns the number of arguments EAL consumed via consumed().
class Eal {
public:
    Eal(int argc, char** argv);  // throws std::runtime_error with rte_strerror on failure
    ~Eal();
    Eal(const Eal&) = delete;
    Eal& operator=(const Eal&) = delete;
    int consumed() const { return consumed_; }

private:
    int consumed_ = 0;
};

struct MempoolDeleter {
    void operator()(rte_mempool* p) const { rte_mempool_free(p); }
};
struct RingDeleter {
    void operator()(rte_ring* r) const { rte_ring_free(r); }
};
struct HashDeleter {
    void operator()(rte_hash* h) const { rte_hash_free(h); }
};
using MempoolPtr = std::unique_ptr<rte_mempool, MempoolDeleter>;
using RingPtr = std::unique_ptr<rte_ring, RingDeleter>;
using HashPtr = std::unique_ptr<rte_hash, HashDeleter>;

// Throw std::runtime_error naming the object and rte_errno when creation fails.
MempoolPtr make_pktmbuf_pool(const std::string& name, unsigned n, int socket);
// Single-producer/single-consumer ring of fixed-size elements.
RingPtr make_spsc_ring(const std::string& name, unsigned esize, unsigned count, int socket);
// Multi-producer (workers) / single-consumer (control) ring of fixed-size elements.
RingPtr make_mpsc_ring(const std::string& name, unsigned esize, unsigned count, int socket);

}  // namespace lm
