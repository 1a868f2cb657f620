// The control lcore: owns every state change. It keeps the authoritative table of what it
// pushed to the workers, retries updates a full ring refused, drains misses and punted packets,
// resolves the core next hop and answers pings to the gateway and locators.
// It talks to workers only through rings (common/ring_msg.hpp); it never reads their tables.
#pragma once

#include <rte_mempool.h>
#include <rte_ring.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <string>
#include <cstring>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "common/config.hpp"
#include "common/counters.hpp"
#include "common/ring_msg.hpp"
#include "controlplane/neighbor.hpp"

namespace lm::dir {
class Directory;
struct Event;
}  // namespace lm::dir

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
    // LM directory: questions asked, coalesced into one in flight, answered from the negative
    // cache, answers (found / not found / no usable locator), push updates from watches.
    Counter dht_resolves, dht_coalesced, dht_negative_hits, dht_found, dht_not_found, dht_no_locator,
        dht_watch_updates, dht_stale_ignored, dht_published;
};

class ControlPlane {
public:
    // dir: the LM directory, or nullptr (static mappings only: every unknown EID is "no mapping").
    ControlPlane(const Config& cfg, std::vector<PortRuntime> ports, std::vector<WorkerHandle> workers,
                 rte_mempool* pool, rte_ring* miss_ring, rte_ring* punt_ring, dir::Directory* dir = nullptr);
    ~ControlPlane();

    void start();                               // push static state to every worker
    void poll();                                // one round of control work
    void run(const std::atomic<bool>& stop);    // poll until stop
    // After run(): wakes every operator request still waiting and refuses new ones.
    void shutdown();
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
    dir::Directory* directory() const { return dir_; }
    size_t watches() const;

    // Operator's lookup (lmctl resolve, via telemetry): asks the directory on the control lcore
    // and waits for the answer. Called from another thread; returns a one-line answer.
    std::string resolve_for_operator(TenantId t, const IpAddr& eid, std::chrono::milliseconds timeout);
    // Published records of the MOs attached here, one line each.
    std::vector<std::string> attached_lines() const;

    // Attach / detach an MO (lmctl, orchestrator hooks). Control lcore only: other threads go
    // through run_on_control(). Return "" or the reason for refusing.
    std::string attach(const StaticAttachment& a);
    std::string detach(TenantId t, MoId mo, bool withdraw);
    // Runs job on the control lcore at its next poll and returns its result (other threads).
    std::string run_on_control(std::function<std::string()> job, std::chrono::milliseconds timeout);

private:
    void push(const UpdateMsg& u);
    void retry_backlog();
    void handle_misses();
    void handle_punts();
    void handle_punt(const PuntMsg& p);
    bool transmit(rte_mbuf* m, uint8_t port_index);  // via worker 0's tx ring
    void neighbor_tick();
    void set_next_hop(Family f, const MacAddr& mac);
    void send_to(uint32_t worker, const UpdateMsg& u);  // one worker, in order behind its backlog
    void answer_no_mapping(const EidKey& k, uint64_t worker_mask);
    void on_dir_event(dir::Event&& e);
    void accept_record(const EidKey& k, const dir::Event& e);
    struct Attached {
        StaticAttachment a;
        uint8_t port_index = 0;
        Epoch epoch = 0;  // of the record published for it (0: not published)
    };
    void publish(Attached& at);
    MappingValue local_value(const StaticAttachment& a, uint8_t port_index) const;
    void serve_jobs();
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

    // LM directory state, all owned by the control lcore.
    dir::Directory* dir_ = nullptr;
    struct InFlight {
        uint64_t cookie;
        uint64_t workers;  // bit per worker waiting for the answer
    };
    std::map<EidKey, InFlight, KeyLess> inflight_;
    std::map<uint64_t, EidKey> cookies_;
    std::map<EidKey, uint64_t, KeyLess> negative_;  // EID -> TSC until which "no mapping" holds
    std::map<EidKey, uint64_t, KeyLess> watches_;   // EID -> watch id
    std::map<uint64_t, EidKey> watch_keys_;
    std::map<EidKey, uint64_t, KeyLess> learned_;   // DHT-learned EID -> TSC of its refresh
    std::map<uint64_t, EidKey> refresh_cookies_;
    uint64_t next_refresh_scan_ = 0;
    void refresh_learned();
    void forget(const EidKey& k);
    uint64_t next_cookie_ = 1;

    // Operator lookups: queued by other threads, asked and answered by the control lcore.
    struct OperatorQuery {
        TenantId tenant;
        IpAddr eid;
        bool done = false;
        std::string answer;
    };
    std::mutex query_mu_;
    bool stopping_ = false;  // guarded by query_mu_
    std::condition_variable query_cv_;
    std::deque<std::shared_ptr<OperatorQuery>> query_queue_;
    std::map<uint64_t, std::shared_ptr<OperatorQuery>> query_cookies_;
    void serve_operator_queries();
    std::map<std::pair<TenantId, MoId>, Attached> attached_;  // guarded by mu_ (writes on the control lcore)
    struct Job {
        std::function<std::string()> fn;
        bool done = false;
        bool cancelled = false;  // the caller gave up waiting
        std::string result;
    };
    std::deque<std::shared_ptr<Job>> jobs_;  // guarded by query_mu_
};

}  // namespace lm
