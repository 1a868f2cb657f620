// The control lcore: owns every state change. It keeps the authoritative table of what it
// pushed to the workers, retries updates a full ring refused, drains misses and punted packets,
// resolves the core next hop and answers pings to the gateway and locators.
// It talks to workers only through rings (common/ring_msg.hpp); it never reads their tables.
#pragma once

#include <poll.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <string>
#include <cstring>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <mutex>
#include <span>
#include <vector>

#include "common/config.hpp"
#include "common/counters.hpp"
#include "common/lm_wire.hpp"
#include "common/ring_msg.hpp"
#include "common/types.hpp"
#include "controlplane/neighbor.hpp"

namespace lm::dir {
class Directory;
struct Event;
struct Record;
}  // namespace lm::dir

namespace lm {

struct LmControl;

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
        dht_watch_updates, dht_stale_ignored, dht_published,
        dht_refreshes,     // learned mappings refreshed because traffic used them past their TTL
        dht_expired_idle;  // learned mappings no packet used for a TTL: left the caches
    // Handover (docs/operations.md, "Handover"): host announcements seen on access ports, attach
    // detection and its refusals, migrate-begin, moves learned, notifications, hints, gateway
    // announcements, forwarding pointers that expired.
    Counter announcements, attach_detected, attach_lookups, attach_unknown, attach_refused_savi,
        attach_refused_policy, attach_detect_off, attach_holddown, migrate_begins, migrate_cancelled, moved_away,
        move_notify_sent, move_notify_received, move_notify_accepted, move_notify_rejected, hints_received,
        hints_acted, hints_ignored, gateway_announced, forward_expired;
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
    // The loop's idle back-off: returns after `max`, or earlier when the directory has events.
    void idle_wait(std::chrono::microseconds max) const;
    // Returns after `max`, or earlier when one of `fds` is readable (idle_wait for one directory;
    // lm-bench handover for the directories of all the control planes it drives).
    static void wait_readable(std::span<pollfd> fds, std::chrono::microseconds max);
    // After run(): wakes every operator request still waiting and refuses new ones.
    void shutdown();
    void drain();                               // free any queued mbufs (shutdown)

    // Mutations (the DHT and lmctl will call these). Pushed to every worker, retried if needed.
    void upsert_mapping(const EidKey& k, const MappingValue& v);
    void erase_mapping(const EidKey& k);

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
    // Handover (controlplane/handover.cpp). migrate_begin: the MO is about to leave (the
    // orchestrator's hook before stop-and-copy): hold its packets until its new AR is known.
    // migrate_abort: it stays; deliver again (held packets go out).
    std::string migrate_begin(TenantId t, MoId mo);
    std::string migrate_abort(TenantId t, MoId mo);
    // Runs job on the control lcore at its next poll and returns its result (other threads).
    std::string run_on_control(std::function<std::string()> job, std::chrono::milliseconds timeout);

private:
    void push(const UpdateMsg& u);
    void retry_backlog();
    void handle_misses();
    void handle_punts();
    void handle_punt(const PuntMsg& p);
    bool transmit(rte_mbuf* m, uint8_t port_index);  // via worker 0's tx ring (queued when full)
    void flush_tx_backlog();
    static constexpr size_t kTxBacklog = 4096;
    std::deque<rte_mbuf*> tx_backlog_;  // waiting for room in worker 0's tx ring, in order
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
        AttachState state = AttachState::Deliver;
        IpAddr fwd_locator;              // Forward: where the MO went
        Epoch fwd_epoch = 0;             //          and the epoch of its record there
        uint64_t since_tsc = 0;          // when the state was entered
        uint64_t forward_until_tsc = 0;  // Forward: the pointer's end
        std::vector<IpAddr> notify_to;   // old ARs to send our signed record to once it is signed
    };
    Epoch publish(const Attached& at);
    std::string attach_impl(const StaticAttachment& a, const dir::Record* previous);
    void push_attachment(const Attached& at);
    void push_local_mappings(const Attached& at);
    std::optional<IpAddr> usable_locator(const dir::Record& r) const;
    void maybe_moved(const dir::Record& r);
    void move_away(Attached& at, const dir::Record& r);
    void announce_gateway(const Attached& at);
    void handle_announcement(uint8_t port_index, rte_mbuf* m);
    void handle_lm_control(rte_mbuf* m);
    void on_move_notify(const LmControl& c);
    void on_refresh_hint(const LmControl& c);
    void on_detect_answer(uint64_t cookie, const dir::Event& e);
    void on_signed(const dir::Event& e);
    void send_move_notify(const Attached& at, const std::vector<uint8_t>& envelope);
    // An LM control packet to another AR's locator through the core port (false: no locator of
    // that family, next hop unresolved, or no mbuf).
    bool send_lm_control(const IpAddr& to, wire::LmType type, TenantId t, MoId mo, Epoch epoch,
                         std::span<const uint8_t> payload = {}, uint8_t frag_index = 0, uint8_t frag_count = 1);
    void handover_tick();
    Attached* find_attached_by_mac(TenantId t, const MacAddr& mac);
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
    std::set<EidKey, KeyLess> refreshing_;  // keys of refresh_cookies_: one question per key in flight
    uint64_t next_refresh_scan_ = 0;
    void refresh_learned();
    void refresh_used(const EidKey& k);      // a worker's packet used k past its refresh_s
    void learned(const EidKey& k, MappingValue& v);  // sets v.refresh_s and k's TTL (learned_)
    void ensure_watch(const EidKey& k);
    void accept_if_held(const EidKey& k, const dir::Event& e);
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

    // Handover state, control lcore only.
    struct Detect {
        uint8_t port_index;
        TenantId tenant;
        MacAddr mac;
        std::optional<IpAddr> ip;
        uint64_t start_tsc;
    };
    std::map<uint64_t, Detect> detect_cookies_;                       // DHT lookup by MAC in flight
    std::map<std::pair<TenantId, MacAddr>, uint64_t> detect_until_;   // in flight / hold-down until TSC
    std::map<uint64_t, EidKey> hint_cookies_;                          // re-resolves a hint asked for
    std::map<std::pair<TenantId, MoId>, uint64_t> hint_last_;          // TSC of the last acted hint
    struct Parts {
        std::vector<std::vector<uint8_t>> parts;
        unsigned have = 0;
        uint64_t deadline_tsc = 0;
    };
    std::map<std::tuple<IpAddr, TenantId, MoId, Epoch>, Parts> notify_parts_;  // split MoveNotify
    uint64_t next_handover_tick_ = 0;
    struct Job {
        std::function<std::string()> fn;
        bool done = false;
        bool cancelled = false;  // the caller gave up waiting
        std::string result;
    };
    std::deque<std::shared_ptr<Job>> jobs_;  // guarded by query_mu_
};

}  // namespace lm
