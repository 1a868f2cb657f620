// A worker lcore: owns its cache, attachment table, counters and one rx/tx queue per port.
// Between bursts it applies UpdateMsg from its SPSC ring and transmits what the control lcore
// asked it to (ARP/ND, echo replies). It never blocks, allocates or locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "common/counters.hpp"
#include "dataplane/dp_config.hpp"
#include "dataplane/dpdk_env.hpp"
#include "dataplane/locator_cache.hpp"
#include "dataplane/packet_path.hpp"

namespace lm {

struct WorkerParams {
    uint32_t id = 0;             // also the queue index on every port
    uint32_t cache_entries = 65536;
    uint32_t attachment_entries = 4096;
    unsigned idle_backoff_us = 50;
    // run() polls no port before the control lcore's UpdateOp::Ready: the first packets would
    // otherwise meet a worker without its static next hops or static mappings (and be dropped as
    // nexthop_unresolved or missed). lm-router sets it; tests driving poll_once() do not.
    bool wait_ready = false;
    int socket = 0;
    rte_mempool* pool = nullptr;
    rte_ring* miss_ring = nullptr;  // shared, multi-producer
    rte_ring* punt_ring = nullptr;  // shared, multi-producer
};

class Worker {
public:
    static constexpr unsigned kUpdateRingSize = 4096;
    static constexpr unsigned kTxRingSize = 512;

    Worker(const DpConfig& cfg, const WorkerParams& p);

    // lcore entry point: polls until `stop` becomes true.
    void run(const std::atomic<bool>& stop);
    // One poll round over every port; returns the number of packets received. For tests/bench.
    unsigned poll_once();
    // Apply pending updates and transmit pending control packets.
    void service_rings();
    // UpdateOp::Ready has been applied (the control lcore's start-up state is in place).
    bool ready() const { return ready_; }

    rte_ring* update_ring() const { return updates_.get(); }  // control -> this worker (SPSC)
    rte_ring* tx_ring() const { return ctrl_tx_.get(); }      // control -> this worker, mbufs (SPSC)
    WorkerCounters& counters() { return counters_; }
    PacketPath& path() { return path_; }
    uint32_t id() const { return p_.id; }

private:
    static constexpr unsigned kDrainRetries = 64;  // extra tx_burst tries while releasing held packets
    void flush(unsigned retries = 0);

    const DpConfig& cfg_;
    WorkerParams p_;
    WorkerCounters counters_;
    LocatorCache cache_;
    AttachmentTable attach_;
    RingPtr updates_;
    RingPtr ctrl_tx_;
    PacketPath path_;
    bool ready_ = false;
};

}  // namespace lm
