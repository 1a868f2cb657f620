#include "dht/directory.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include <opendht/dhtrunner.h>

#include "dht/pki.hpp"

namespace lm::dir {

using Clock = std::chrono::steady_clock;

struct Directory::AtomicCounters {
    std::atomic<uint64_t> published{0}, publish_failed{0}, withdrawn{0}, refreshed{0}, released{0};
    std::atomic<uint64_t> resolves{0}, resolve_found{0}, resolve_withdrawn{0}, resolve_not_found{0},
        resolve_incomplete{0}, resolve_refined{0};
    std::atomic<uint64_t> watch_updates{0}, accepted{0}, direct_accepted{0}, direct_rejected{0};
    std::atomic<uint64_t> rejected_malformed{0}, rejected_unsigned{0}, rejected_untrusted{0},
        rejected_bad_signature{0}, rejected_name_mismatch{0}, rejected_expired{0}, rejected_wrong_key{0},
        rejected_stale{0};
};

struct Directory::Lookup {
    ::dht::InfoHash key;
    Event ev;  // prototype: type, cookie, kind, tenant, eid/mac
    Clock::time_point start;
    std::mutex mu;  // get callbacks may in principle overlap the done callback
    std::optional<Verified> best;      // best valid candidate read by this search
    std::optional<Verified> answered;  // record of the last Resolved/Refined pushed (Found/Withdrawn)
    bool resolved = false;             // the Resolved event was pushed
};

const char* to_string(Answer a) {
    switch (a) {
        case Answer::Found: return "found";
        case Answer::Withdrawn: return "withdrawn";
        case Answer::NotFound: return "not-found";
    }
    return "?";
}

namespace {

::dht::SockAddr make_bind(const std::string& host, uint16_t port, int af) {
    if (af == AF_INET) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1)
            throw std::runtime_error("lm dht: bad IPv4 bind address " + host);
        return ::dht::SockAddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
    }
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    if (inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) != 1)
        throw std::runtime_error("lm dht: bad IPv6 bind address " + host);
    return ::dht::SockAddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
}

// "host:port", "[v6]:port" -> (host, port)
std::pair<std::string, std::string> split_host_port(const std::string& s) {
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string::npos || close + 2 > s.size() || s[close + 1] != ':')
            throw std::runtime_error("lm dht: bad bootstrap address " + s);
        return {s.substr(1, close - 1), s.substr(close + 2)};
    }
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
        throw std::runtime_error("lm dht: bootstrap address needs host:port: " + s);
    return {s.substr(0, colon), s.substr(colon + 1)};
}

uint64_t ttl_ms() { return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(kRecordTtl).count()); }

}  // namespace

// ---- construction ---------------------------------------------------------------------------

Directory::Directory(const DhtConfig& cfg)
    : Directory(cfg, load_certificate(cfg.ca_cert),
                cfg.identity_key.empty()
                    ? std::nullopt
                    : std::optional<::dht::crypto::Identity>(
                          load_identity(cfg.identity_key, cfg.identity_cert, cfg.key_password))) {}

Directory::Directory(const DhtConfig& cfg, std::shared_ptr<::dht::crypto::Certificate> ca,
                     std::optional<::dht::crypto::Identity> identity)
    : cfg_(cfg),
      verifier_(std::make_shared<Verifier>(std::move(ca), cfg.clock_skew_ms)),
      hlc_(cfg.wall_clock_ms ? cfg.wall_clock_ms : Hlc::WallMs(unix_ms_now)),
      ctr_(std::make_shared<AtomicCounters>()),
      store_refused_(std::make_shared<std::atomic<uint64_t>>(0)) {
    if (identity) signer_ = std::make_unique<Signer>(std::move(*identity));
    if (cfg_.refresh_interval.count() <= 0 || cfg_.refresh_interval >= kRecordTtl)
        throw std::invalid_argument("lm dht: refresh_interval must be in (0, kRecordTtl)");
    start(cfg_);
}

void Directory::start(const DhtConfig& cfg) {
    if (!cfg.ipv4 && !cfg.ipv6) throw std::invalid_argument("lm dht: neither IPv4 nor IPv6 enabled");
    ::dht::DhtRunner::Config rc;
    rc.threaded = true;
    rc.dht_config.node_config.network = cfg.network_id;
    rc.dht_config.node_config.max_req_per_sec = cfg.max_req_per_sec;
    rc.dht_config.node_config.max_peer_req_per_sec = cfg.max_peer_req_per_sec;
    rc.dht_config.node_config.maintain_storage = cfg.maintain_storage;
    if (cfg.ipv4) rc.bind4 = make_bind(cfg.bind4, cfg.port, AF_INET);
    if (cfg.ipv6) rc.bind6 = make_bind(cfg.bind6, cfg.port, AF_INET6);

    event_fd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!event_fd_) throw std::runtime_error("lm dht: eventfd failed");
    runner_ = std::make_unique<::dht::DhtRunner>();
    runner_->run(rc, ::dht::DhtRunner::Context{});
    register_value_type(*runner_, verifier_, store_refused_);
    for (const auto& b : cfg.bootstrap) {
        auto [host, port] = split_host_port(b);
        runner_->bootstrap(host, port);
    }
    if (signer_) signer_thread_ = std::thread([this] { signer_loop(); });
}

Directory::~Directory() { stop(); }

void Directory::stop() {
    if (stopped_.exchange(true)) return;
    {
        std::lock_guard lk(jmu_);
        jobs_stop_ = true;  // queued publications are dropped
    }
    jcv_.notify_all();
    if (signer_thread_.joinable()) signer_thread_.join();
    if (runner_) runner_->join();  // no OpenDHT callback runs after this
}

void Directory::register_value_type(::dht::DhtRunner& runner, std::shared_ptr<const Verifier> verifier,
                                    std::shared_ptr<std::atomic<uint64_t>> refused) {
    // Edit policy of an LM slot (same key, same value id): the new value must be a valid record
    // for this key; it replaces an invalid/expired old value, or a valid one of the same signer
    // with an epoch >= the old one (refresh, newer epoch). Anything else is refused.
    auto edit = [verifier, refused](::dht::InfoHash key, const std::shared_ptr<::dht::Value>& old_v,
                                    std::shared_ptr<::dht::Value>& new_v, const ::dht::InfoHash&,
                                    const ::dht::SockAddr&) {
        const uint64_t now = unix_ms_now();
        Verified nv, ov;
        bool ok = verifier->verify(new_v->data, nv, now) == Verdict::Ok && record_matches_key(nv.rec, key);
        if (ok && verifier->verify(old_v->data, ov, now) == Verdict::Ok)
            ok = ov.signer == nv.signer && nv.rec.epoch >= ov.rec.epoch;
        if (!ok && refused) refused->fetch_add(1, std::memory_order_relaxed);
        return ok;
    };
    runner.registerType(::dht::ValueType(kLmValueType, "lm-record", kRecordTtl,
                                         ::dht::ValueType::DEFAULT_STORE_POLICY, edit));
}

// ---- publishing -----------------------------------------------------------------------------

Epoch Directory::publish(Record r) {
    if (!signer_) throw std::logic_error("lm dht: publish() on a read-only directory");
    if (r.tenant > kMaxTenant) throw std::invalid_argument("lm dht: tenant id exceeds 24 bits");
    if (r.epoch == 0) {
        r.epoch = hlc_.next();
    } else {
        hlc_.observe(r.epoch);
    }
    r.publisher = signer_->name();
    r.withdrawn = false;
    const uint64_t now = unix_ms_now();
    r.expiry_ms = now + ttl_ms();
    std::optional<Record> prev;
    {
        std::lock_guard lk(mu_);
        const uint64_t due = now + uint64_t(cfg_.refresh_interval.count()) * 1000;
        auto it = owned_.find({r.tenant, r.mo});
        if (it != owned_.end()) prev = std::move(it->second.rec);  // an earlier publication of this MO
        owned_.insert_or_assign({r.tenant, r.mo}, Owned{r, due});
        if (due < next_due_ms_.load()) next_due_ms_ = due;
    }
    // The earlier publication is a value of its own (another epoch: another value id): stop
    // re-announcing it, it expires after kRecordTtl.
    if (prev) enqueue_cancel(*prev, &r);
    const Epoch e = r.epoch;
    enqueue_publish(std::move(r), PubKind::Publish);
    return e;
}

Epoch Directory::withdraw(TenantId tenant, MoId mo) {
    if (!signer_) throw std::logic_error("lm dht: withdraw() on a read-only directory");
    Record t;
    {
        std::lock_guard lk(mu_);
        auto it = owned_.find({tenant, mo});
        if (it == owned_.end()) return 0;
        t = it->second.rec;
        owned_.erase(it);
    }
    const Record old = t;
    t.epoch = hlc_.next();
    t.withdrawn = true;
    t.loc4.reset();
    t.loc6.reset();
    // The tombstone lives one TTL, as long as any older record it must shadow.
    t.expiry_ms = unix_ms_now() + ttl_ms();
    const Epoch e = t.epoch;
    ctr_->withdrawn.fetch_add(1, std::memory_order_relaxed);
    // The tombstone has its own value id (new epoch): the record's permanent puts are cancelled.
    enqueue_cancel(old, &t);
    enqueue_publish(std::move(t), PubKind::Withdraw);
    return e;
}

bool Directory::release(TenantId tenant, MoId mo) {
    Record r;
    {
        std::lock_guard lk(mu_);
        auto it = owned_.find({tenant, mo});
        if (it == owned_.end()) return false;
        r = std::move(it->second.rec);
        owned_.erase(it);
    }
    ctr_->released.fetch_add(1, std::memory_order_relaxed);
    // Stop OpenDHT's re-announcing of the permanent puts of the current record's value id (the
    // record stays on the storage nodes until it expires; the new AR's newer record supersedes it).
    enqueue_cancel(r, nullptr);
    return true;
}

void Directory::enqueue_cancel(const Record& old, const Record* next) {
    const uint64_t vid = signer_->value_id(old.epoch);
    std::vector<::dht::InfoHash> keys;
    for (const auto& k : record_keys(old)) {
        if (next && signer_->value_id(next->epoch) == vid) {
            const auto nk = record_keys(*next);
            if (std::find(nk.begin(), nk.end(), k) != nk.end()) continue;  // same value, edited in place
        }
        keys.push_back(k);
    }
    if (keys.empty()) return;
    // Through the job queue, so it runs after any publication of `old` still waiting to be signed
    // (its put's completion only re-puts it as permanent while it is still the MO's current record).
    {
        std::lock_guard lk(jmu_);
        jobs_.emplace_back([this, keys = std::move(keys), vid] {
            for (const auto& k : keys) runner_->cancelPut(k, vid);
        });
    }
    jcv_.notify_one();
}

std::vector<Record> Directory::owned() const {
    std::lock_guard lk(mu_);
    std::vector<Record> out;
    out.reserve(owned_.size());
    for (const auto& [k, o] : owned_) out.push_back(o.rec);
    return out;
}

size_t Directory::refresh(bool force) {
    if (!signer_) return 0;
    const uint64_t now = unix_ms_now();
    if (!force && now < next_due_ms_.load(std::memory_order_relaxed)) return 0;  // the cheap path of poll()
    std::vector<Record> due;
    {
        std::lock_guard lk(mu_);
        uint64_t next = UINT64_MAX;
        for (auto& [k, o] : owned_) {
            if (force || o.next_refresh_ms <= now) {
                o.rec.expiry_ms = now + ttl_ms();
                o.next_refresh_ms = now + uint64_t(cfg_.refresh_interval.count()) * 1000;
                due.push_back(o.rec);
            }
            next = std::min(next, o.next_refresh_ms);
        }
        next_due_ms_ = next;
    }
    for (auto& r : due) enqueue_publish(std::move(r), PubKind::Refresh);
    ctr_->refreshed.fetch_add(due.size(), std::memory_order_relaxed);
    return due.size();
}

void Directory::enqueue_publish(Record r, PubKind kind) {
    {
        std::lock_guard lk(jmu_);
        jobs_.emplace_back([this, r = std::move(r), kind]() mutable {
            const bool report = kind != PubKind::Refresh;
            Envelope env = signer_->sign(r);
            Verified self{r, signer_->key_id(), ::dht::InfoHash::get(env.rec)};
            self.rec.publisher = signer_->name();
            auto keys = record_keys(r);
            {
                std::lock_guard lk(mu_);
                bool changed = false;
                for (const auto& k : keys) merge_locked(k, self, unix_ms_now(), &changed);
            }
            auto data = encode_envelope(env);
            // Keeping the put's search alive. OpenDHT 2.4 keeps a finished ("done") search 62 min
            // and, for every message the node handles, walks all of them (Dht::trySearchInsert): an
            // AR with thousands of attached MOs paid ~1 ms of CPU per message it handled, which
            // delayed its answers (docs/benchmarks.md). A search with a "permanent" put is never
            // done, and the walk stops at it; release() cancels it.
            //  - A new publication (new epoch, so a value id no replica has) is put as permanent
            //    at once: OpenDHT probes each replica for the id, finds nothing, sends the bytes.
            //  - A refresh keeps the value id, and OpenDHT only probes for a permanent value (id +
            //    seq, and our seq is always 0): a replica that has the slot would get a mere expiry
            //    refresh, never the new bytes (the later expiry). So a refresh is put normally
            //    first, and once that put is over the same value is put again as permanent, if it
            //    is still this MO's current record. Doing that for new publications too (as before)
            //    made every replica send each watcher one more "refreshed" update per move: ~40% of
            //    a move's DHT packets (lm-bench handover, docs/benchmarks.md).
            //  - A tombstone stays a normal put (it lives one TTL).
            // Value id: this publication's own (publisher, epoch) id -- a refresh keeps it (an edit
            // of the same value), a new epoch is a new value, which OpenDHT 2.4's listeners always
            // deliver (a known id would be taken for a refresh and never reach them; record.hpp).
            const uint64_t vid = signer_->value_id(r.epoch);
            const bool keep_alive = kind != PubKind::Withdraw;
            const std::pair<TenantId, MoId> slot{r.tenant, r.mo};
            if (kind == PubKind::Publish) {
                Event ev;
                ev.type = Event::Type::Signed;
                ev.cookie = self.rec.mo;
                ev.tenant = self.rec.tenant;
                ev.answer = Answer::Found;
                ev.record = self.rec;
                ev.envelope = data;
                push(std::move(ev));
            }
            struct PutState {
                std::atomic<size_t> remaining;
                std::atomic<bool> all_ok{true};
            };
            auto st = std::make_shared<PutState>();
            st->remaining = keys.size();
            for (const auto& k : keys) {
                auto v = std::make_shared<::dht::Value>(kLmValueType, data, vid);
                const bool permanent_now = kind == PubKind::Publish;
                runner_->put(k, v, ::dht::DoneCallbackSimple([this, st, self, report, keep_alive, permanent_now, slot, k, v](bool ok) {
                    if (keep_alive && !permanent_now && !stopped_) {
                        std::lock_guard lk(mu_);  // held across put(): release() cancels after it
                        auto it = owned_.find(slot);
                        if (it != owned_.end() && it->second.rec.epoch == self.rec.epoch &&
                            it->second.rec.expiry_ms == self.rec.expiry_ms)
                            runner_->put(k, v, ::dht::DoneCallbackSimple{}, ::dht::time_point::max(), true);
                    }
                    if (!ok) st->all_ok = false;
                    if (st->remaining.fetch_sub(1) != 1) return;
                    const bool all = st->all_ok;
                    (all ? ctr_->published : ctr_->publish_failed).fetch_add(1, std::memory_order_relaxed);
                    if (!report) return;
                    Event ev;
                    ev.type = Event::Type::Published;
                    ev.cookie = self.rec.mo;
                    ev.tenant = self.rec.tenant;
                    ev.answer = self.rec.withdrawn ? Answer::Withdrawn : Answer::Found;
                    ev.record = self.rec;
                    ev.ok = all;
                    push(std::move(ev));
                }), ::dht::time_point::max(), permanent_now);
            }
        });
    }
    jcv_.notify_one();
}

void Directory::signer_loop() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lk(jmu_);
            jcv_.wait(lk, [this] { return jobs_stop_ || !jobs_.empty(); });
            if (jobs_stop_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        try {
            job();
        } catch (const std::exception&) {
            ctr_->publish_failed.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

// ---- reading --------------------------------------------------------------------------------

void Directory::count_rejection(Verdict verdict, bool first) {
    if (!first) return;
    auto& c = *ctr_;
    switch (verdict) {
        case Verdict::Malformed: c.rejected_malformed++; break;
        case Verdict::Unsigned: c.rejected_unsigned++; break;
        case Verdict::UntrustedSigner: c.rejected_untrusted++; break;
        case Verdict::BadSignature: c.rejected_bad_signature++; break;
        case Verdict::NameMismatch: c.rejected_name_mismatch++; break;
        case Verdict::Expired: c.rejected_expired++; break;
        case Verdict::Stale: c.rejected_stale++; break;
        case Verdict::Ok: break;
    }
}

bool Directory::ingest(const ::dht::InfoHash& key, const ::dht::Value& v, std::optional<Verified>& best) {
    if (v.type != kLmValueType) return false;
    const uint64_t now = unix_ms_now();
    Verified rec;
    bool first = false;
    const Verdict verdict = verifier_->verify(v.data, rec, now, &first);
    auto& c = *ctr_;
    if (verdict != Verdict::Ok) {
        count_rejection(verdict, first);
        return false;
    }
    if (!record_matches_key(rec.rec, key)) {
        if (first) c.rejected_wrong_key++;
        return false;
    }
    hlc_.observe(rec.rec.epoch);
    if (first) c.accepted++;
    {
        std::lock_guard lk(mu_);
        auto it = held_.find(key);
        if (it != held_.end() && newer_than(it->second, rec) && it->second.rec.expiry_ms + cfg_.clock_skew_ms >= now) {
            if (first && rec.rec.epoch < it->second.rec.epoch) c.rejected_stale++;
            return true;
        }
    }
    if (!best || newer_than(rec, *best)) best = std::move(rec);
    return true;
}

std::optional<Record> Directory::accept_envelope(const uint8_t* p, size_t n, Verdict* why) {
    auto& c = *ctr_;
    auto reject = [&](Verdict v) -> std::optional<Record> {
        if (why) *why = v;
        c.direct_rejected.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
    };
    const uint64_t now = unix_ms_now();
    Verified rec;
    bool first = false;
    const Verdict verdict = (p && n) ? verifier_->verify(p, n, rec, now, &first) : Verdict::Malformed;
    if (verdict != Verdict::Ok) {
        count_rejection(verdict, first);
        return reject(verdict);
    }
    if (first) c.accepted++;
    hlc_.observe(rec.rec.epoch);
    const auto keys = record_keys(rec.rec);
    {
        std::lock_guard lk(mu_);
        // All or nothing: older than what any of its keys holds -> nothing changes.
        for (const auto& k : keys) {
            auto it = held_.find(k);
            if (it != held_.end() && newer_than(it->second, rec) && it->second.rec.expiry_ms + cfg_.clock_skew_ms >= now) {
                if (first && rec.rec.epoch < it->second.rec.epoch) c.rejected_stale++;
                return reject(Verdict::Stale);
            }
        }
        bool changed = false;
        for (const auto& k : keys) merge_locked(k, rec, now, &changed);
    }
    if (why) *why = Verdict::Ok;
    c.direct_accepted.fetch_add(1, std::memory_order_relaxed);
    return std::move(rec.rec);
}

std::optional<Verified> Directory::merge_locked(const ::dht::InfoHash& key, const std::optional<Verified>& best,
                                                uint64_t now_ms, bool* changed) {
    auto it = held_.find(key);
    if (it != held_.end() && it->second.rec.expiry_ms + cfg_.clock_skew_ms < now_ms) {
        held_.erase(it);
        it = held_.end();
    }
    if (best && (it == held_.end() || newer_than(*best, it->second))) {
        held_[key] = *best;
        if (changed) *changed = true;
        return *best;
    }
    if (it == held_.end()) return std::nullopt;
    return it->second;
}

void Directory::add_sentinels(const DhtConfig& cfg) {
    // OpenDHT 2.4 keeps a finished search 62 minutes and, for every message the node handles,
    // walks the searches around the sender's id until it meets a *live* one that does not take
    // the sender (Dht::trySearchInsert). A lookup that leaves no watch behind (past
    // dht.max_watches, or an EID nobody publishes) is such a finished search, so a router that
    // resolved many EIDs paid a walk over all of them per message: lm-bench resolve --no-watch
    // went from p50 1.0 / p99 4.1 ms to 2.3 / 13.6 ms within 3 000 lookups, 28 % of the process's
    // CPU in Search::insertNode (docs/benchmarks.md). A few listens on keys spread evenly over the
    // 160-bit space (first byte i * 256 / n, the rest random so that routers do not all load the
    // same storage nodes) are live searches that cut every walk to the finished searches between
    // two of them. They filter every value out and cost a listen refresh to 4 nodes per sentinel
    // every ~30 s; only a directory that looks things up sets them.
    const unsigned n = cfg.search_sentinels;
    for (unsigned i = 0; i < n; ++i) {
        auto key = ::dht::InfoHash::getRandom();
        key[0] = uint8_t(i * 256 / n);
        runner_->listen(key, ::dht::ValueCallback([](const std::vector<std::shared_ptr<::dht::Value>>&, bool) { return true; }),
                        ::dht::Value::Filter([](const ::dht::Value&) { return false; }));
    }
}

// Answers (see Event in directory.hpp): the first valid record read gives the Resolved event at
// once (the search goes on); a newer record later in the same search gives a Refined event; the
// search's end gives NotFound if nothing valid was read, and counts an incomplete search.
void Directory::lookup(const ::dht::InfoHash& key, KeyKind kind, TenantId tenant, const IpAddr& eid,
                       const MacAddr& mac, uint64_t cookie) {
    auto lk = std::make_shared<Lookup>();
    lk->key = key;
    lk->ev.type = Event::Type::Resolved;
    lk->ev.cookie = cookie;
    lk->ev.kind = kind;
    lk->ev.tenant = tenant;
    lk->ev.eid = eid;
    lk->ev.mac = mac;
    lk->start = Clock::now();
    ctr_->resolves.fetch_add(1, std::memory_order_relaxed);
    // Not at start: a search made before the node knows anyone expires at once, and OpenDHT then
    // declares the connectivity changed (Dht::searchStep) -- 16 of those while bootstrapping.
    if (!sentinels_added_ && cfg_.search_sentinels && known_nodes() > 0) {
        sentinels_added_ = true;
        add_sentinels(cfg_);
    }
    // Pushes Resolved (first answer) or Refined (the held record became newer than the last
    // answer) for what is held now. Caller holds lk->mu. final_ok: set at the search's end.
    auto answer = [this](Lookup& l, bool at_end, bool search_ok) {
        std::optional<Verified> held;
        {
            std::lock_guard m(mu_);
            bool changed = false;
            held = merge_locked(l.key, l.best, unix_ms_now(), &changed);
        }
        const auto elapsed = [&] {
            return uint32_t(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - l.start).count());
        };
        auto& c = *ctr_;
        if (at_end && !search_ok) c.resolve_incomplete++;
        if (l.resolved) {
            if (!held || (l.answered && !newer_than(*held, *l.answered))) return;
            Event ev = l.ev;
            ev.type = Event::Type::Refined;
            ev.record = held->rec;
            ev.answer = held->rec.withdrawn ? Answer::Withdrawn : Answer::Found;
            ev.elapsed_us = elapsed();
            l.answered = std::move(held);
            c.resolve_refined++;
            push(std::move(ev));
            return;
        }
        if (!held && !at_end) return;  // absence is only known at the end
        Event ev = l.ev;
        if (held) {
            ev.record = held->rec;
            ev.answer = held->rec.withdrawn ? Answer::Withdrawn : Answer::Found;
        } else {
            ev.answer = Answer::NotFound;
        }
        ev.ok = at_end ? search_ok : true;
        ev.elapsed_us = elapsed();
        l.resolved = true;
        l.answered = std::move(held);
        auto& counter = ev.answer == Answer::Found       ? c.resolve_found
                        : ev.answer == Answer::Withdrawn ? c.resolve_withdrawn
                                                         : c.resolve_not_found;
        push(std::move(ev));
        counter++;  // after the event is queued: whoever sees the count finds the event
    };
    runner_->get(
        key,
        ::dht::GetCallback([this, lk, answer](const std::vector<std::shared_ptr<::dht::Value>>& vals) {
            std::lock_guard g(lk->mu);
            bool valid = false;
            const auto before = lk->best;
            for (const auto& v : vals)
                if (v && ingest(lk->key, *v, lk->best)) valid = true;
            // First valid record: answer now. Later: only if this reply improved the candidate.
            if (valid && (!lk->resolved || (lk->best && (!before || newer_than(*lk->best, *before)))))
                answer(*lk, false, true);
            return true;
        }),
        ::dht::DoneCallbackSimple([lk, answer](bool ok) {
            std::lock_guard g(lk->mu);
            answer(*lk, true, ok);
        }),
        ::dht::Value::TypeFilter(kLmValueType));
}

void Directory::resolve(TenantId tenant, const IpAddr& eid, uint64_t cookie) {
    lookup(eid_key(tenant, eid), KeyKind::Eid, tenant, eid, {}, cookie);
}

void Directory::resolve_mac(TenantId tenant, const MacAddr& mac, uint64_t cookie) {
    lookup(mac_key(tenant, mac), KeyKind::Mac, tenant, {}, mac, cookie);
}

std::optional<Record> Directory::cached_key(const ::dht::InfoHash& key) const {
    std::lock_guard lk(mu_);
    auto it = held_.find(key);
    if (it == held_.end() || it->second.rec.expiry_ms + cfg_.clock_skew_ms < unix_ms_now()) return std::nullopt;
    return it->second.rec;
}

std::optional<Record> Directory::cached(TenantId tenant, const IpAddr& eid) const {
    return cached_key(eid_key(tenant, eid));
}

std::optional<Record> Directory::cached_mac(TenantId tenant, const MacAddr& mac) const {
    return cached_key(mac_key(tenant, mac));
}

// ---- watches --------------------------------------------------------------------------------

uint64_t Directory::watch_key(const ::dht::InfoHash& key, KeyKind kind, TenantId tenant, const IpAddr& eid,
                              const MacAddr& mac) {
    uint64_t id;
    {
        std::lock_guard lk(mu_);
        id = next_watch_id_++;
    }
    Event proto;
    proto.type = Event::Type::WatchUpdate;
    proto.cookie = id;
    proto.kind = kind;
    proto.tenant = tenant;
    proto.eid = eid;
    proto.mac = mac;
    auto fut = runner_->listen(
        key,
        ::dht::ValueCallback([this, key, proto](const std::vector<std::shared_ptr<::dht::Value>>& vals, bool expired) {
            if (expired) return true;  // expiry is handled by the records' own expiry
            std::optional<Verified> best;
            for (const auto& v : vals)
                if (v) ingest(key, *v, best);
            if (!best) return true;
            bool changed = false;
            std::optional<Verified> held;
            {
                std::lock_guard m(mu_);
                held = merge_locked(key, best, unix_ms_now(), &changed);
            }
            if (!changed || !held) return true;
            Event ev = proto;
            ev.record = held->rec;
            ev.answer = held->rec.withdrawn ? Answer::Withdrawn : Answer::Found;
            ctr_->watch_updates.fetch_add(1, std::memory_order_relaxed);
            push(std::move(ev));
            return true;
        }),
        ::dht::Value::TypeFilter(kLmValueType));
    std::lock_guard lk(mu_);
    watches_[id] = Watch{key, fut.share()};
    return id;
}

uint64_t Directory::watch(TenantId tenant, const IpAddr& eid) {
    return watch_key(eid_key(tenant, eid), KeyKind::Eid, tenant, eid, {});
}

uint64_t Directory::watch_mac(TenantId tenant, const MacAddr& mac) {
    return watch_key(mac_key(tenant, mac), KeyKind::Mac, tenant, {}, mac);
}

void Directory::unwatch(uint64_t watch_id) {
    Watch w;
    {
        std::lock_guard lk(mu_);
        auto it = watches_.find(watch_id);
        if (it == watches_.end()) return;
        w = std::move(it->second);
        watches_.erase(it);
    }
    runner_->cancelListen(w.key, w.token);
}

// ---- queue ----------------------------------------------------------------------------------

void Directory::push(Event&& ev) {
    {
        std::lock_guard lk(qmu_);
        // Only the first event of a batch costs a syscall; poll() clears the fd under the same
        // lock when it takes the last event, so a queued event always leaves the fd readable.
        if (queue_.empty()) {
            const uint64_t one = 1;
            [[maybe_unused]] ssize_t n = write(event_fd_.get(), &one, sizeof one);
        }
        queue_.push_back(std::move(ev));
    }
    qcv_.notify_all();
}

size_t Directory::poll(const std::function<void(Event&&)>& fn, size_t max) {
    refresh(false);
    std::deque<Event> batch;
    {
        std::lock_guard lk(qmu_);
        if (max >= queue_.size()) {
            if (!queue_.empty()) {
                uint64_t cnt;
                [[maybe_unused]] ssize_t n = read(event_fd_.get(), &cnt, sizeof cnt);  // queue empty: not readable
            }
            batch.swap(queue_);
        } else {
            for (size_t i = 0; i < max; ++i) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
    }
    for (auto& ev : batch) fn(std::move(ev));
    return batch.size();
}

bool Directory::wait(std::chrono::milliseconds timeout) {
    std::unique_lock lk(qmu_);
    return qcv_.wait_for(lk, timeout, [this] { return !queue_.empty(); });
}

// ---- state ----------------------------------------------------------------------------------

DirectoryCounters Directory::counters() const {
    const auto& c = *ctr_;
    DirectoryCounters s;
    s.published = c.published;
    s.publish_failed = c.publish_failed;
    s.withdrawn = c.withdrawn;
    s.refreshed = c.refreshed;
    s.released = c.released;
    s.resolves = c.resolves;
    s.resolve_found = c.resolve_found;
    s.resolve_withdrawn = c.resolve_withdrawn;
    s.resolve_not_found = c.resolve_not_found;
    s.resolve_incomplete = c.resolve_incomplete;
    s.resolve_refined = c.resolve_refined;
    s.watch_updates = c.watch_updates;
    s.accepted = c.accepted;
    s.direct_accepted = c.direct_accepted;
    s.direct_rejected = c.direct_rejected;
    s.rejected_malformed = c.rejected_malformed;
    s.rejected_unsigned = c.rejected_unsigned;
    s.rejected_untrusted = c.rejected_untrusted;
    s.rejected_bad_signature = c.rejected_bad_signature;
    s.rejected_name_mismatch = c.rejected_name_mismatch;
    s.rejected_expired = c.rejected_expired;
    s.rejected_wrong_key = c.rejected_wrong_key;
    s.rejected_stale = c.rejected_stale;
    s.store_edit_refused = *store_refused_;
    return s;
}

const std::string& Directory::name() const {
    static const std::string empty;
    return signer_ ? signer_->name() : empty;
}

uint16_t Directory::bound_port() const {
    return runner_->getBoundPort(cfg_.ipv4 ? AF_INET : AF_INET6);
}

size_t Directory::known_nodes() const {
    size_t n = 0;
    if (cfg_.ipv4) n += runner_->getNodesStats(AF_INET).getKnownNodes();
    if (cfg_.ipv6) n += runner_->getNodesStats(AF_INET6).getKnownNodes();
    return n;
}

}  // namespace lm::dir
