// The LM directory: publish / withdraw / resolve / watch LM records over an OpenDHT node.
//
// Threads. OpenDHT runs its own thread (DhtRunner); its callbacks verify values there and hand
// results to the caller through a mutex-protected queue. The owner -- the control lcore -- calls
// the methods below from one thread and drains results with poll(); no control-plane code ever
// runs on a DHT thread. Signing (~20 us with Ed25519, ~1 ms with RSA) is done on a small signer
// thread owned by the directory, so publish() returns at once with the epoch the data plane can
// use immediately.
//
// Ordering. Epochs come from the directory's hybrid logical clock (hlc.hpp), which observes every
// valid record read. Per key the directory keeps the best record it has accepted ("held"); an
// answer never goes back to a lower epoch than held (a stale replica, a late delivery or a replay
// cannot move traffic back), until the held record expires.
//
// Lifetime. Values live kRecordTtl on storage nodes. While an MO stays attached the directory
// re-signs its record with a new expiry (same epoch) every refresh_interval, from poll() (or
// refresh()). withdraw() publishes a signed tombstone with a new, higher epoch (OpenDHT cannot
// delete values); release() just stops refreshing (the MO moved: the new AR's record wins).
// Every publication (epoch) is its own DHT value (value id from publisher + epoch, record.hpp); a
// refresh edits it in place, and a newer publication, a tombstone or release() stops the
// re-announcing of the one it supersedes, which then expires after kRecordTtl.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <opendht/infohash.h>

#include "common/unique_fd.hpp"
#include "dht/hlc.hpp"
#include "dht/record.hpp"
#include "dht/trust.hpp"

// Not including <opendht/dhtrunner.h> here: it pulls OpenDHT's logger, whose members (WARN, ...)
// collide with macros of other headers (Catch2). Include it where runner() is used.
namespace dht {
class DhtRunner;
struct Value;
}

namespace lm::dir {

struct DhtConfig {
    uint16_t port = 4222;                  // UDP port of the DHT node; 0 = any (tests)
    bool ipv4 = true;                      // open an IPv4 socket on bind4
    bool ipv6 = false;                     // open an IPv6 socket on bind6
    std::string bind4 = "0.0.0.0";
    std::string bind6 = "::";
    std::vector<std::string> bootstrap;    // "host:port", "[2001:db8::1]:4222"
    std::string ca_cert;                   // PEM path of the domain CA certificate
    std::string identity_key;              // PEM path of this AR's private key (empty: read-only)
    std::string identity_cert;             // PEM path of this AR's certificate
    std::string key_password;
    uint32_t network_id = 0x4C4D0001;      // OpenDHT network id: LM nodes talk only to LM nodes
    std::chrono::seconds refresh_interval{200};  // < kRecordTtl
    uint64_t clock_skew_ms = 30'000;       // tolerated skew for record/certificate expiry
    // OpenDHT rate limits; 0 = OpenDHT's defaults, -1 = unlimited. The per-peer limit counts per
    // IP address, so many nodes on one address (tests on 127.0.0.1) must lift it.
    long max_req_per_sec = 0;
    long max_peer_req_per_sec = 0;
    bool maintain_storage = false;         // OpenDHT: storage nodes re-replicate on churn
    // Live searches spread over the key space that bound OpenDHT's walk over finished searches
    // (Directory::add_sentinels explains); 0 = none.
    unsigned search_sentinels = 16;
    std::function<uint64_t()> wall_clock_ms;  // HLC wall clock (Unix ms); empty = system clock (tests skew it)
};

enum class Answer : uint8_t { Found, Withdrawn, NotFound };
const char* to_string(Answer a);

enum class KeyKind : uint8_t { Eid, Mac };

// Answers to a lookup (resolve()/resolve_mac(), same cookie):
//   - exactly one Resolved. Found/Withdrawn is pushed as soon as the search delivers the first
//     valid record for the key (often a storage node's first reply, or this node's own storage):
//     the record is the best one held for the key at that moment (held_ may hold a newer one
//     than the value just read, e.g. from a watch or a direct notification). NotFound is pushed
//     only when the whole search is done (absence needs every replica's answer).
//   - then zero or more Refined, each pushed when the rest of the same search (up to its end)
//     made the held record newer than the one last answered for this cookie (a stale replica
//     answered first). Same cookie, kind, tenant, eid/mac as the Resolved it refines; the
//     record's epoch is strictly higher than (or, equal epoch: wins the tie-break of) the
//     previous answer's. Apply it through the same epoch-ordered path as Resolved.
struct Event {
    enum class Type : uint8_t {
        Resolved,     // answer to resolve()/resolve_mac(); cookie = the caller's cookie
        WatchUpdate,  // a watched key got a newer record; cookie = watch id
        Published,    // publish()/withdraw() reached the DHT; cookie = MO id, ok = every key stored
        Refined,      // a newer record for a lookup already answered by Resolved (see above)
        Signed,       // publish() signed: record + envelope bytes, before the puts complete; cookie = MO id
    };
    Type type = Type::Resolved;
    uint64_t cookie = 0;
    KeyKind kind = KeyKind::Eid;
    TenantId tenant = 0;
    IpAddr eid;                 // kind == Eid
    MacAddr mac;                // kind == Mac
    Answer answer = Answer::NotFound;
    Record record;              // valid when answer != NotFound (and for Published, Signed)
    // Resolved: the search completed without error -- always true for an early Found/Withdrawn
    // (a valid record is an answer whatever the rest of the search does); Published: all puts acked.
    bool ok = true;
    uint32_t elapsed_us = 0;    // Resolved/Refined: time from resolve() to this answer
    Blob envelope;              // Signed: the signed envelope (encode_envelope bytes) that is being put
};

// Snapshot of the directory's counters.
struct DirectoryCounters {
    uint64_t published = 0, publish_failed = 0, withdrawn = 0, refreshed = 0, released = 0;
    uint64_t resolves = 0, resolve_found = 0, resolve_withdrawn = 0, resolve_not_found = 0,
             resolve_incomplete = 0;
    uint64_t resolve_refined = 0;  // Refined events (not lookups: a lookup counts once, in resolve_found/...)
    uint64_t watch_updates = 0;
    uint64_t accepted = 0;  // distinct valid values read
    // accept_envelope(): envelopes taken (valid, not older than held) / refused (any reason, every call).
    uint64_t direct_accepted = 0, direct_rejected = 0;
    // Rejections, once per distinct value (bytes):
    uint64_t rejected_malformed = 0, rejected_unsigned = 0, rejected_untrusted = 0,
             rejected_bad_signature = 0, rejected_name_mismatch = 0, rejected_expired = 0,
             rejected_wrong_key = 0;  // valid record under a key it does not belong to
    // Valid records older than the record already held for the key (replays, late deliveries,
    // leftovers of earlier hosts); they never replace the held one.
    uint64_t rejected_stale = 0;
    // As a storage node: edits of an LM slot refused (invalid record, other signer, lower epoch).
    uint64_t store_edit_refused = 0;

    uint64_t rejected_forged() const { return rejected_untrusted + rejected_bad_signature + rejected_name_mismatch; }
    uint64_t rejected_total() const {
        return rejected_malformed + rejected_unsigned + rejected_forged() + rejected_expired + rejected_wrong_key +
               rejected_stale;
    }
};

class Directory {
public:
    // Loads the CA and (optionally) the identity from the PEM paths in cfg, starts the node and
    // bootstraps. Throws std::runtime_error on failure.
    explicit Directory(const DhtConfig& cfg);
    // Same with in-memory credentials. Without an identity the directory is read-only (resolve,
    // watch; and it serves as a storage node).
    Directory(const DhtConfig& cfg, std::shared_ptr<::dht::crypto::Certificate> ca,
              std::optional<::dht::crypto::Identity> identity);
    ~Directory();
    Directory(const Directory&) = delete;
    Directory& operator=(const Directory&) = delete;

    // ---- publishing (needs an identity) ----
    // Publishes r under every EID key and the MAC key. r.epoch == 0: a fresh HLC epoch is used
    // (normal case); otherwise the given epoch is used and observed. publisher and expiry are
    // filled in. Returns the epoch. The record is refreshed until withdraw()/release().
    Epoch publish(Record r);
    // Signed tombstone with a fresh, higher epoch under the same keys; stops refreshing.
    // Returns the tombstone's epoch, or 0 if this directory does not publish that MO.
    Epoch withdraw(TenantId tenant, MoId mo);
    // Stops refreshing (the MO moved away; the new AR's newer record supersedes ours).
    bool release(TenantId tenant, MoId mo);
    // Re-signs and republishes records whose refresh is due (all of them if force).
    // poll() calls it; returns how many were republished.
    size_t refresh(bool force = false);
    // Records this directory currently publishes.
    std::vector<Record> owned() const;

    // ---- lookups (answers arrive as Event::Resolved through poll()) ----
    void resolve(TenantId tenant, const IpAddr& eid, uint64_t cookie);
    void resolve_mac(TenantId tenant, const MacAddr& mac, uint64_t cookie);
    // ---- direct notifications (LM MoveNotify: the new AR sends its signed envelope) ----
    // Verifies envelope bytes exactly like a value read from the DHT (envelope and record well
    // formed, certificate chains to the domain CA, signature, "pub" == certificate CN, not
    // expired; rejections counted in the rejected_* counters once per distinct bytes, as for DHT
    // reads), observes the epoch in the HLC and merges the record into the held records of every
    // key it belongs to (record_keys()), so a later read of an older (stale) DHT value cannot roll
    // it back. Returns the record when valid and not older than what is held -- also when the
    // same record is already held (idempotent: a retransmitted notification is accepted again).
    // Otherwise nullopt and *why: the verifier's verdict, or Verdict::Stale when a key already
    // holds a newer record (nothing is changed then). Counted in direct_accepted/direct_rejected
    // (every call). Thread-safe; cheap when the same bytes were verified before (cache).
    std::optional<Record> accept_envelope(const uint8_t* p, size_t n, Verdict* why = nullptr);
    std::optional<Record> accept_envelope(const Blob& b, Verdict* why = nullptr) {
        return accept_envelope(b.data(), b.size(), why);
    }

    // Best record held for a key without asking the network (nullopt: none or expired).
    std::optional<Record> cached(TenantId tenant, const IpAddr& eid) const;
    std::optional<Record> cached_mac(TenantId tenant, const MacAddr& mac) const;

    // ---- watches (Event::WatchUpdate with cookie = the returned id) ----
    uint64_t watch(TenantId tenant, const IpAddr& eid);
    uint64_t watch_mac(TenantId tenant, const MacAddr& mac);
    void unwatch(uint64_t watch_id);

    // Event::Signed: after publish() (not a refresh, not withdraw()) the signer thread pushes the
    // signed record and its envelope bytes as soon as it is signed, before the puts complete (the
    // new AR sends them to the old AR in a MoveNotify). Always on; owners that do not use it drop it.

    // ---- event queue ----
    // Hands queued events to fn on the calling thread (at most max), after running due refreshes.
    size_t poll(const std::function<void(Event&&)>& fn, size_t max = SIZE_MAX);
    // Blocks until an event is queued or the timeout passes (tests, lmctl; not the control lcore).
    bool wait(std::chrono::milliseconds timeout);
    // A descriptor that is readable (POLLIN) while events are queued: an eventfd written when the
    // queue goes from empty to non-empty and cleared when poll() empties it. The control lcore
    // waits on it between rounds, so an answer is applied as soon as it arrives rather than after
    // the rest of an idle back-off. Owned by the directory; do not read or close it.
    int event_fd() const { return event_fd_.get(); }

    // ---- clock, state ----
    void observe_epoch(Epoch e) { hlc_.observe(e); }  // epochs from LM headers, hints, ...
    Hlc& hlc() { return hlc_; }
    DirectoryCounters counters() const;
    bool can_publish() const { return signer_ != nullptr; }
    const std::string& name() const;  // AR name (certificate CN), empty when read-only
    uint16_t bound_port() const;
    size_t known_nodes() const;       // good + dubious nodes in the IPv4 and IPv6 routing tables
    // Stops the node abruptly (no graceful shutdown: like a crash). Idempotent.
    void stop();
    // The OpenDHT node (tests inject raw values; do not call from the data path).
    ::dht::DhtRunner& runner() { return *runner_; }

    // Registers the LM value type (lifetime kRecordTtl, edit policy described in trust.hpp) on a
    // node. The directory does it for its own node; exposed for bare storage nodes.
    static void register_value_type(::dht::DhtRunner& runner, std::shared_ptr<const Verifier> verifier,
                                    std::shared_ptr<std::atomic<uint64_t>> refused_counter = {});

private:
    struct AtomicCounters;
    struct Owned {
        Record rec;
        uint64_t next_refresh_ms = 0;
    };
    struct Lookup;

    void start(const DhtConfig& cfg);
    void add_sentinels(const DhtConfig& cfg);  // at the first lookup once the node knows others
    void lookup(const ::dht::InfoHash& key, KeyKind kind, TenantId tenant, const IpAddr& eid, const MacAddr& mac,
                uint64_t cookie);
    uint64_t watch_key(const ::dht::InfoHash& key, KeyKind kind, TenantId tenant, const IpAddr& eid,
                       const MacAddr& mac);
    // Verifies one value read under key; updates best when it is a better candidate. Returns true
    // when the value is a valid record for key (even one older than held: the key has an answer).
    bool ingest(const ::dht::InfoHash& key, const ::dht::Value& v, std::optional<Verified>& best);
    // Counts a verifier rejection (first: first time these bytes were seen).
    void count_rejection(Verdict v, bool first);
    // Merges a candidate into held_[key]; returns the (new) held record. Caller holds mu_.
    std::optional<Verified> merge_locked(const ::dht::InfoHash& key, const std::optional<Verified>& best,
                                         uint64_t now_ms, bool* changed);
    std::optional<Record> cached_key(const ::dht::InfoHash& key) const;
    void push(Event&& ev);
    enum class PubKind : uint8_t { Publish, Refresh, Withdraw };
    void enqueue_publish(Record r, PubKind kind);
    // Cancels OpenDHT's permanent puts of `old` (its value id, every key of it), through the job
    // queue (after any publication still waiting to be signed); keys where `next` -- the record
    // replacing it, if any -- is put under the same value id are left alone.
    void enqueue_cancel(const Record& old, const Record* next);
    void signer_loop();

    DhtConfig cfg_;
    std::shared_ptr<Verifier> verifier_;
    std::unique_ptr<Signer> signer_;
    Hlc hlc_;
    std::shared_ptr<AtomicCounters> ctr_;
    std::shared_ptr<std::atomic<uint64_t>> store_refused_;

    mutable std::mutex mu_;
    std::unordered_map<::dht::InfoHash, Verified, InfoHashHasher> held_;
    std::map<std::pair<TenantId, MoId>, Owned> owned_;
    std::atomic<uint64_t> next_due_ms_{UINT64_MAX};  // earliest refresh due among owned_
    struct Watch {
        ::dht::InfoHash key;
        std::shared_future<size_t> token;
    };
    std::map<uint64_t, Watch> watches_;
    uint64_t next_watch_id_ = 1;

    std::mutex qmu_;
    std::condition_variable qcv_;
    std::deque<Event> queue_;
    UniqueFd event_fd_;  // see event_fd(); set and cleared under qmu_ (push(), poll())

    std::mutex jmu_;
    std::condition_variable jcv_;
    std::deque<std::function<void()>> jobs_;
    bool jobs_stop_ = false;
    std::thread signer_thread_;

    std::unique_ptr<::dht::DhtRunner> runner_;
    std::atomic<bool> stopped_{false};
    bool sentinels_added_ = false;  // owner thread only (lookups)
};

}  // namespace lm::dir
