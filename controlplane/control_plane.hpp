// The control lcore: owns every state change. It keeps the authoritative table of what it
// pushed to the workers, retries updates a full ring refused, drains misses and punted packets,
// resolves the core next hop and answers pings to the gateway and locators.
// It talks to workers only through rings (common/ring_msg.hpp); it never reads their tables.
#pragma once

#include <rte_mempool.h>
#include <rte_ring.h>

#include <atomic>
#include <cstring>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "common/config.hpp"
#include "common/counters.hpp"
#include "common/ring_msg.hpp"
#include "controlplane/neighbor.hpp"

namespace lm {

// What the control lcore may touch of one worker.
struct WorkerHandle {
    rte_ring* updates = nullptr;          // SPSC, UpdateMsg
    rte_ring* tx = nullptr;               // SPSC, rte_mbuf*
    const WorkerCounters* counters = nullptr;
};

struct PortRuntime {
    uint16_t port_id = 0;
    MacAddr mac;
};

struct ControlCounters {
    Counter misses, misses_unresolved, miss_repushed, punts, arp_learned, nd_learned, echo_replies,
        punt_unhandled, updates_sent, updates_retried, tx_ring_full, neighbor_probes;
};

class ControlPlane {
public:
    ControlPlane(const Config& cfg, std::vector<PortRuntime> ports, std::vector<WorkerHandle> workers,
                 rte_mempool* pool, rte_ring* miss_ring, rte_ring* punt_ring);

    void start();                               // push static state to every worker
    void poll();                                // one round of control work
    void run(const std::atomic<bool>& stop);    // poll until stop
    void drain();                               // free any queued mbufs (shutdown)

    // Mutations (the DHT and lmctl will call these). Pushed to every worker, retried if needed.
    void upsert_mapping(const EidKey& k, const MappingValue& v);
    void erase_mapping(const EidKey& k);
    void upsert_attachment(TenantId t, MoId mo, uint8_t port_index, const MacAddr& mac);

    // Read side for telemetry: consistent snapshots under a mutex (never touches a worker).
    struct MappingRow { EidKey key{}; MappingValue value; };
    std::vector<MappingRow> mappings_page(size_t first, size_t count, size_t* total) const;
    size_t backlog() const;
    const ControlCounters& counters() const { return ctr_; }
    const std::vector<WorkerHandle>& workers() const { return workers_; }
    const Config& config() const { return cfg_; }
    NeighborState neighbor(Family f) const;

private:
    void push(const UpdateMsg& u);
    void retry_backlog();
    void handle_misses();
    void handle_punts();
    void handle_punt(const PuntMsg& p);
    bool transmit(rte_mbuf* m, uint8_t port_index);  // via worker 0's tx ring
    void neighbor_tick();
    void set_next_hop(Family f, const MacAddr& mac);
    bool learn_next_hop(Family f, const MacAddr& mac);  // true if it changed

    const Config& cfg_;
    std::vector<PortRuntime> ports_;
    std::vector<WorkerHandle> workers_;
    rte_mempool* pool_;
    rte_ring* miss_ring_;
    rte_ring* punt_ring_;
    uint8_t core_index_ = 0;

    mutable std::mutex mu_;  // guards the tables below against the telemetry thread
    struct KeyLess {
        bool operator()(const EidKey& a, const EidKey& b) const { return std::memcmp(&a, &b, sizeof a) < 0; }
    };
    std::map<EidKey, MappingValue, KeyLess> mappings_;      // authoritative: what workers should hold
    std::vector<std::deque<UpdateMsg>> backlog_;            // per worker, in order
    Neighbor nh_[2];                                        // v4, v6
    ControlCounters ctr_;
};

}  // namespace lm
