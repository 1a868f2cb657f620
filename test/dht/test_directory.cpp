// The LM directory over a real OpenDHT network: 32 nodes in this process on 127.0.0.1.
//
// Node 0 is the bootstrap node; nodes 1..4 are the ARs ar1..ar4 (can publish); every other node is
// a read-only directory (a reader and storage node). Node 6 doubles as the attacker: it injects
// raw values with its DhtRunner. The cluster is built once and shared by the test cases below,
// which run in declaration order; the last one kills 30% of the nodes.
//
// No fixed sleeps: every wait polls a condition with a deadline.
#include <poll.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <vector>

// OpenDHT's headers before Catch2: its WARN macro would clash with dht::Logger::WARN.
#include <opendht/dhtrunner.h>

#include "dht/directory.hpp"
#include "dht_fixtures.hpp"
// clang-format off
#include "catch.hpp"
// clang-format on

using namespace std::chrono_literals;
using namespace lm;
using namespace lm::dir;
using namespace lm::dir::test;

namespace {

constexpr size_t kNodes = 32;
constexpr auto kWait = 20s;  // deadline for one DHT operation in a test

struct Cluster {
    std::vector<std::unique_ptr<Directory>> nodes;
    std::vector<bool> alive;
    // Per-node HLC wall clock offsets (ms): ar3 runs 50 ms ahead of everybody (migrate-back test).
    std::vector<std::shared_ptr<std::atomic<int64_t>>> skew;
    uint64_t next_cookie = 1;
    uint16_t port0 = 0;

    Directory& operator[](size_t i) { return *nodes.at(i); }

    static DhtConfig config(uint16_t bootstrap_port, std::shared_ptr<std::atomic<int64_t>> skew) {
        DhtConfig c;
        c.port = 0;
        c.bind4 = "127.0.0.1";
        c.ipv6 = false;
        if (bootstrap_port) c.bootstrap = {"127.0.0.1:" + std::to_string(bootstrap_port)};
        // Every node shares 127.0.0.1: OpenDHT's per-IP rate limit would treat them as one peer.
        c.max_peer_req_per_sec = -1;
        c.max_req_per_sec = -1;
        c.network_id = 0x4C4D7E57;
        c.wall_clock_ms = [skew] { return uint64_t(int64_t(unix_ms_now()) + skew->load()); };
        return c;
    }

    Cluster() {
        const auto& k = pki();
        const ::dht::crypto::Identity* ids[] = {&k.ar1, &k.ar2, &k.ar3, &k.ar4};
        for (size_t i = 0; i < kNodes; ++i) {
            skew.push_back(std::make_shared<std::atomic<int64_t>>(0));
            std::optional<::dht::crypto::Identity> id;
            if (i >= 1 && i <= 4) id = *ids[i - 1];
            nodes.push_back(std::make_unique<Directory>(config(port0, skew.back()), k.ca.second, id));
            alive.push_back(true);
            if (i == 0) port0 = nodes[0]->bound_port();
        }
        REQUIRE(port0 != 0);
        // Connected: every node knows a good part of the network.
        const bool ok = eventually(
            [&] {
                for (auto& n : nodes)
                    if (n->known_nodes() < 8) return false;
                return true;
            },
            30s, 50ms);
        REQUIRE(ok);
    }

    void kill(size_t i) {
        nodes.at(i)->stop();
        alive.at(i) = false;
    }

    // Waits for an event matching pred on node i (other events are dropped).
    std::optional<Event> await(size_t i, const std::function<bool(const Event&)>& pred,
                               std::chrono::milliseconds timeout = kWait) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::optional<Event> found;
        while (!found && std::chrono::steady_clock::now() < deadline) {
            nodes.at(i)->wait(20ms);
            nodes.at(i)->poll([&](Event&& ev) {
                if (!found && pred(ev)) found = std::move(ev);
            });
        }
        return found;
    }

    Event resolve(size_t i, TenantId t, const IpAddr& eid) {
        const uint64_t c = next_cookie++;
        nodes.at(i)->resolve(t, eid, c);
        auto ev = await(i, [&](const Event& e) { return e.type == Event::Type::Resolved && e.cookie == c; });
        REQUIRE(ev);
        return *ev;
    }
    Event resolve_mac(size_t i, TenantId t, const MacAddr& m) {
        const uint64_t c = next_cookie++;
        nodes.at(i)->resolve_mac(t, m, c);
        auto ev = await(i, [&](const Event& e) { return e.type == Event::Type::Resolved && e.cookie == c; });
        REQUIRE(ev);
        return *ev;
    }
    // Publishes on AR node i and waits until every key is stored.
    Epoch publish(size_t i, const Record& r) {
        const Epoch e = nodes.at(i)->publish(r);
        auto ev = await(i, [&](const Event& x) {
            return x.type == Event::Type::Published && x.cookie == r.mo && x.record.epoch == e;
        });
        REQUIRE(ev);
        CHECK(ev->ok);
        return e;
    }
    Epoch withdraw(size_t i, TenantId t, MoId mo) {
        const Epoch e = nodes.at(i)->withdraw(t, mo);
        REQUIRE(e != 0);
        auto ev = await(i, [&](const Event& x) {
            return x.type == Event::Type::Published && x.cookie == mo && x.record.epoch == e;
        });
        REQUIRE(ev);
        CHECK(ev->ok);
        CHECK(ev->answer == Answer::Withdrawn);
        return e;
    }
    // Resolves until pred holds (a fresh put may not be visible to every search at once).
    Event resolve_until(size_t i, TenantId t, const IpAddr& eid, const std::function<bool(const Event&)>& pred) {
        Event last;
        const bool ok = eventually(
            [&] {
                last = resolve(i, t, eid);
                return pred(last);
            },
            kWait, 1ms);
        INFO("last answer: " << to_string(last.answer) << " " << last.record.str());
        REQUIRE(ok);
        return last;
    }
};

Cluster& cluster() {
    static std::unique_ptr<Cluster> c;
    if (!c) {
        const auto t0 = std::chrono::steady_clock::now();
        c = std::make_unique<Cluster>();
        std::printf("  dht cluster: %zu nodes up in %.2f s\n", kNodes,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return *c;
}

Record mo_record(MoId mo, const char* eid4, const char* eid6, const char* m, const char* loc4) {
    Record r;
    r.mo = mo;
    r.tenant = 42;
    r.eids = {ip(eid4), ip(eid6)};
    r.mac = mac(m);
    r.loc4 = ip(loc4);
    return r;
}

std::shared_ptr<::dht::Value> raw_value(const Blob& data, uint64_t id) {
    return std::make_shared<::dht::Value>(kLmValueType, data, id);
}

// Attacker put from node `from`; waits for the put to finish.
void inject(Cluster& c, size_t from, const ::dht::InfoHash& key, std::shared_ptr<::dht::Value> v) {
    std::promise<bool> done;
    auto f = done.get_future();
    c[from].runner().put(key, v, [&done](bool ok) { done.set_value(ok); });
    REQUIRE(f.wait_for(kWait) == std::future_status::ready);
    f.get();  // a refused edit is still a completed put
}

}  // namespace

TEST_CASE("publish on one AR, resolve on others by EID and by MAC", "[dht][net]") {
    auto& c = cluster();
    auto r = mo_record(0x100, "192.0.2.10", "2001:db8::10", "02:00:00:00:01:00", "198.51.100.1");
    r.loc6 = ip("2001:db8:100::1");
    const Epoch e = c.publish(1, r);
    CHECK(e > 0);

    for (size_t reader : {20u, 9u}) {
        auto a = c.resolve_until(reader, 42, ip("192.0.2.10"), [](const Event& x) { return x.answer == Answer::Found; });
        CHECK(a.record.mo == 0x100);
        CHECK(a.record.epoch == e);
        CHECK(a.record.publisher == "ar1");
        CHECK(a.record.loc4 == ip("198.51.100.1"));
        CHECK(a.record.loc6 == ip("2001:db8:100::1"));
        CHECK(a.ok);
        auto b = c.resolve(reader, 42, ip("2001:db8::10"));
        CHECK(b.answer == Answer::Found);
        CHECK(b.record.epoch == e);
        auto m = c.resolve_mac(reader, 42, mac("02:00:00:00:01:00"));
        CHECK(m.answer == Answer::Found);
        CHECK(m.kind == KeyKind::Mac);
        CHECK(m.record.mo == 0x100);
        CHECK(m.record.eids.size() == 2);
        std::printf("  resolve on node %zu: %u us\n", reader, a.elapsed_us);
    }
    // Another tenant with the same address, and an unknown address: not found.
    CHECK(c.resolve(20, 43, ip("192.0.2.10")).answer == Answer::NotFound);
    CHECK(c.resolve(20, 42, ip("192.0.2.99")).answer == Answer::NotFound);
    // The reader verified and holds the record; the publisher's HLC is ahead of it.
    REQUIRE(c[20].cached(42, ip("192.0.2.10")));
    CHECK(c[20].hlc().last() >= e);
    CHECK(c[20].counters().accepted >= 1);
    CHECK(c[20].counters().rejected_total() == 0);
}

TEST_CASE("the event fd is readable exactly while answers are queued", "[dht][net]") {
    // The control lcore sleeps on event_fd() between rounds; a queued answer must wake it, and an
    // empty queue must not (or the loop would spin).
    auto& c = cluster();
    auto readable = [&](size_t i, int timeout_ms) {
        pollfd p{c[i].event_fd(), POLLIN, 0};
        return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
    };
    const size_t reader = 17;
    c[reader].poll([](Event&&) {});  // start empty
    REQUIRE_FALSE(readable(reader, 0));
    c[reader].resolve(42, ip("192.0.2.77"), 0xE7E7);  // unknown: NotFound at the search's end
    REQUIRE(readable(reader, int(std::chrono::duration_cast<std::chrono::milliseconds>(kWait).count())));
    CHECK(readable(reader, 0));  // stays readable until polled
    bool got = false;
    c[reader].poll([&](Event&& ev) { got = got || (ev.type == Event::Type::Resolved && ev.cookie == 0xE7E7); });
    CHECK(got);
    CHECK_FALSE(readable(reader, 0));
    // poll() with a budget smaller than the queue leaves the rest signalled.
    const auto nf0 = c[reader].counters().resolve_not_found;
    c[reader].resolve(42, ip("192.0.2.78"), 0xE7E8);
    c[reader].resolve(42, ip("192.0.2.79"), 0xE7E9);
    // The counter is raised after the event is queued: both events are there once it shows 2.
    REQUIRE(eventually([&] { return c[reader].counters().resolve_not_found >= nf0 + 2; }, kWait, 1ms));
    size_t n = 0;
    auto count = [&](Event&& ev) { n += ev.cookie == 0xE7E8 || ev.cookie == 0xE7E9; };
    c[reader].poll(count, 1);
    CHECK(n == 1);
    CHECK(readable(reader, 0));
    c[reader].poll(count);
    CHECK(n == 2);
    CHECK_FALSE(readable(reader, 0));
}

TEST_CASE("epoch order under reordered delivery: a lower epoch never wins", "[dht][net]") {
    auto& c = cluster();
    auto r = mo_record(0x200, "192.0.2.20", "2001:db8::20", "02:00:00:00:02:00", "198.51.100.2");
    // AR2 publishes epoch "2"; AR3's publication with epoch "1" arrives after it.
    const Epoch e2 = c[2].hlc().next() + 1000;
    auto r2 = r;
    r2.epoch = e2;
    c.publish(2, r2);
    auto r1 = r;
    r1.epoch = e2 - 500;
    r1.loc4 = ip("198.51.100.3");
    c.publish(3, r1);

    for (size_t reader : {11u, 25u}) {
        // The early answer may come from a replica that only has epoch 1 (a Refined to epoch 2
        // follows); once epoch 2 is held, no answer goes back to epoch 1.
        auto a = c.resolve_until(reader, 42, ip("192.0.2.20"), [&](const Event& x) { return x.record.epoch == e2; });
        CHECK(a.record.publisher == "ar2");
        CHECK(a.record.loc4 == ip("198.51.100.2"));
        for (int i = 0; i < 3; ++i) CHECK(c.resolve(reader, 42, ip("192.0.2.20")).record.epoch == e2);
    }
    // A reader that already holds epoch 2 keeps it even if a later answer only has epoch 1.
    CHECK(c[11].cached(42, ip("192.0.2.20"))->epoch == e2);
}

TEST_CASE("fast migrate-back AR2 -> AR3 -> AR2 with skewed clocks", "[dht][net]") {
    auto& c = cluster();
    // AR3's clock is 50 ms ahead of AR2's: without the HLC's observe(), AR2's migrate-back
    // epoch (minted a few ms later on a slower clock) would be lower than AR3's.
    c.skew[3]->store(50);
    auto r = mo_record(0x300, "192.0.2.30", "2001:db8::30", "02:00:00:00:03:00", "198.51.100.2");
    const auto t0 = std::chrono::steady_clock::now();
    const Epoch e1 = c.publish(2, r);
    // AR2, the old AR, watches the MO while it is away (to learn where it went).
    const uint64_t w = c[2].watch(42, ip("192.0.2.30"));

    // AR3 checks the MO's record at attach (observes e1), then publishes.
    auto seen = c.resolve_until(3, 42, ip("192.0.2.30"), [&](const Event& x) { return x.record.epoch == e1; });
    auto r3 = r;
    r3.loc4 = ip("198.51.100.3");
    const Epoch e2 = c.publish(3, r3);
    CHECK(e2 > e1);
    c[2].release(42, 0x300);

    // AR2 learns e2 from its watch, then the MO comes back at once.
    auto upd = c.await(2, [&](const Event& x) {
        return x.type == Event::Type::WatchUpdate && x.cookie == w && x.record.epoch == e2;
    });
    REQUIRE(upd);
    CHECK(upd->record.publisher == "ar3");
    const Epoch e3 = c.publish(2, r);  // no DHT read: a stale replica would not matter
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    c[2].unwatch(w);
    std::printf("  migrate-back: e1=%#llx e2=%#llx e3=%#llx (%.1f ms for 3 publications)\n", (unsigned long long)e1,
                (unsigned long long)e2, (unsigned long long)e3, ms);
    CHECK(e3 > e2);
    // AR2's wall clock is behind e2's: e3 came from observe(e2), not from the clock.
    CHECK(Hlc::ms_of(e3) <= Hlc::ms_of(e2));

    for (size_t reader : {14u, 27u, 1u}) {
        auto a = c.resolve_until(reader, 42, ip("192.0.2.30"), [&](const Event& x) { return x.record.epoch == e3; });
        CHECK(a.record.publisher == "ar2");
        CHECK(a.record.loc4 == ip("198.51.100.2"));
    }
    c.skew[3]->store(0);
}

TEST_CASE("withdraw publishes a tombstone with a higher epoch", "[dht][net]") {
    auto& c = cluster();
    auto r = mo_record(0x400, "192.0.2.40", "2001:db8::40", "02:00:00:00:04:00", "198.51.100.1");
    const Epoch e = c.publish(1, r);
    auto a = c.resolve_until(17, 42, ip("192.0.2.40"), [](const Event& x) { return x.answer == Answer::Found; });
    CHECK(a.record.epoch == e);

    const Epoch t = c.withdraw(1, 42, 0x400);
    CHECK(t > e);
    auto w = c.resolve_until(17, 42, ip("192.0.2.40"), [](const Event& x) { return x.answer == Answer::Withdrawn; });
    CHECK(w.record.epoch == t);
    CHECK(w.record.withdrawn);
    CHECK_FALSE(w.record.loc4);
    // The record and the tombstone are two values under each key (two epochs: two value ids), so
    // the early answer of a lookup may be the record (a reply carrying only it came first) and
    // the tombstone follows as Refined: wait for it.
    CHECK(eventually([&] { return c.resolve_mac(17, 42, mac("02:00:00:00:04:00")).answer == Answer::Withdrawn; },
                     kWait, 1ms));
    c.resolve_until(23, 42, ip("2001:db8::40"), [&](const Event& x) { return x.answer == Answer::Withdrawn; });
    CHECK(c[1].withdraw(42, 0x400) == 0);  // no longer published here
}

TEST_CASE("forged, unsigned, tampered and replayed records are rejected and counted", "[dht][net][trust]") {
    auto& c = cluster();
    const auto& k = pki();
    constexpr size_t kAttacker = 6, kReader = 19;
    auto r = mo_record(0x500, "192.0.2.50", "2001:db8::50", "02:00:00:00:05:00", "198.51.100.2");
    // AR2 publishes e1, then e2 (same slot: its own record is replaced).
    const Epoch e1 = c[2].hlc().next();
    auto r1 = r;
    r1.epoch = e1;
    r1.publisher = "ar2";
    // Another expiry than publish() gives it, so the recording is not the very value AR2 puts
    // (signatures are deterministic, and Ed25519 signs within the same millisecond).
    r1.expiry_ms = unix_ms_now() + 500'000;
    const Blob old_env = encode_envelope(Signer(k.ar2).sign(r1));  // what an attacker recorded
    c.publish(2, r1);
    const Epoch e2 = c.publish(2, r);
    REQUIRE(e2 > e1);
    auto a = c.resolve_until(kReader, 42, ip("192.0.2.50"), [&](const Event& x) { return x.record.epoch == e2; });
    const auto before = c[kReader].counters();

    // The attacker wants traffic for 192.0.2.50 at 203.0.113.66 with a much higher epoch.
    auto evil = r;
    evil.epoch = e2 + 1'000'000;
    evil.publisher = "ar2";
    evil.loc4 = ip("203.0.113.66");
    evil.expiry_ms = unix_ms_now() + 600'000;
    const auto key = eid_key(42, ip("192.0.2.50"));
    std::mt19937_64 rng(0x5eed);
    // unsigned
    inject(c, kAttacker, key, raw_value(encode_record(evil), rng()));
    // forged: certificate from another CA, and self-signed
    inject(c, kAttacker, key, raw_value(encode_envelope(Signer(k.rogue_ar2).sign(evil)), rng()));
    inject(c, kAttacker, key, raw_value(encode_envelope(Signer(k.self_signed_ar2).sign(evil)), rng()));
    // tampered: AR2's genuine envelope with the locator and epoch changed after signing
    {
        Envelope t = *decode_envelope(encode_envelope(Signer(k.ar2).sign(r)));
        auto rec = *decode_record(t.rec);
        rec.loc4 = evil.loc4;
        rec.epoch = evil.epoch;
        t.rec = encode_record(rec);
        inject(c, kAttacker, key, raw_value(encode_envelope(t), rng()));
    }
    // AR2's genuine record of another MO, copied under this key
    {
        auto other = mo_record(0x501, "192.0.2.51", "2001:db8::51", "02:00:00:00:05:01", "203.0.113.66");
        other.epoch = evil.epoch;
        other.expiry_ms = evil.expiry_ms;
        inject(c, kAttacker, key, raw_value(encode_envelope(Signer(k.ar2).sign(other)), rng()));
    }
    // replayed: AR2's genuine old-epoch record, under another value id
    inject(c, kAttacker, key, raw_value(old_env, rng()));
    // and into AR2's live slot (the value id of its e2 publication): storage nodes refuse to roll
    // the slot back / overwrite it
    const uint64_t live = Signer(k.ar2).value_id(e2);
    inject(c, kAttacker, key, raw_value(old_env, live));
    inject(c, kAttacker, key, raw_value(encode_envelope(Signer(k.rogue_ar2).sign(evil)), live));

    DirectoryCounters now;
    const bool all_counted = eventually(
        [&] {
            auto x = c.resolve(kReader, 42, ip("192.0.2.50"));
            CHECK(x.answer == Answer::Found);
            CHECK(x.record.epoch == e2);
            CHECK(x.record.loc4 == ip("198.51.100.2"));
            now = c[kReader].counters();
            return now.rejected_unsigned > before.rejected_unsigned &&
                   now.rejected_untrusted >= before.rejected_untrusted + 2 &&
                   now.rejected_bad_signature > before.rejected_bad_signature &&
                   now.rejected_wrong_key > before.rejected_wrong_key &&
                   now.rejected_stale > before.rejected_stale;
        },
        kWait, 1ms);
    INFO("unsigned " << now.rejected_unsigned << " untrusted " << now.rejected_untrusted << " bad-sig "
                     << now.rejected_bad_signature << " wrong-key " << now.rejected_wrong_key << " stale "
                     << now.rejected_stale);
    CHECK(all_counted);
    std::printf("  reader counters: unsigned=%llu untrusted=%llu bad_signature=%llu wrong_key=%llu stale=%llu "
                "accepted=%llu\n",
                (unsigned long long)now.rejected_unsigned, (unsigned long long)now.rejected_untrusted,
                (unsigned long long)now.rejected_bad_signature, (unsigned long long)now.rejected_wrong_key,
                (unsigned long long)now.rejected_stale, (unsigned long long)now.accepted);
    // Another reader that never resolved before gets the genuine record too (AR2's e1 value is
    // still stored beside e2 -- another epoch, another value id -- so an early answer may be e1).
    auto fresh = c.resolve_until(29, 42, ip("192.0.2.50"), [&](const Event& x) { return x.record.epoch == e2; });
    CHECK(fresh.record.epoch == e2);
    CHECK(fresh.record.loc4 == ip("198.51.100.2"));
    // The answer came with the first valid record; the rest of the search reads the forgeries.
    CHECK(eventually([&] { return c[29].counters().rejected_forged() >= 2; }, kWait));
    // Storage nodes refused the edits of AR2's slot.
    uint64_t refused = 0;
    for (size_t i = 0; i < kNodes; ++i) refused += c[i].counters().store_edit_refused;
    CHECK(refused >= 1);
    CHECK(c[kReader].cached(42, ip("192.0.2.50"))->loc4 == ip("198.51.100.2"));
}

TEST_CASE("watch delivers a new locator", "[dht][net]") {
    auto& c = cluster();
    constexpr size_t kWatcher = 15;
    auto r = mo_record(0x700, "192.0.2.70", "2001:db8::70", "02:00:00:00:07:00", "198.51.100.1");
    const uint64_t w = c[kWatcher].watch(42, ip("192.0.2.70"));
    const uint64_t wm = c[kWatcher].watch_mac(42, mac("02:00:00:00:07:00"));
    const Epoch e1 = c.publish(1, r);
    auto u1 = c.await(kWatcher, [&](const Event& x) {
        return x.type == Event::Type::WatchUpdate && x.cookie == w && x.record.epoch == e1;
    });
    REQUIRE(u1);
    CHECK(u1->record.loc4 == ip("198.51.100.1"));
    CHECK(u1->kind == KeyKind::Eid);

    // The MO migrates to AR4 (which checked the record first).
    c.resolve_until(4, 42, ip("192.0.2.70"), [&](const Event& x) { return x.record.epoch == e1; });
    auto r4 = r;
    r4.loc4 = ip("198.51.100.4");
    const Epoch e2 = c.publish(4, r4);
    c[1].release(42, 0x700);
    bool eid_seen = false, mac_seen = false;
    const bool ok = eventually(
        [&] {
            c[kWatcher].poll([&](Event&& x) {
                if (x.type != Event::Type::WatchUpdate || x.record.epoch != e2) return;
                CHECK(x.record.loc4 == ip("198.51.100.4"));
                CHECK(x.record.publisher == "ar4");
                if (x.cookie == w) eid_seen = true;
                if (x.cookie == wm) mac_seen = true;
            });
            return eid_seen && mac_seen;
        },
        kWait);
    CHECK(ok);
    c[kWatcher].unwatch(w);
    c[kWatcher].unwatch(wm);
    CHECK(c[kWatcher].counters().watch_updates >= 3);
}

// lm-bench handover found it: with one value id per AR, OpenDHT 2.4's listen took AR1's second
// record of an MO (same id as its first) for a refresh and never delivered it to watchers.
TEST_CASE("watch delivers the record of an AR that published the MO before (P1 -> P2 -> P1)", "[dht][net]") {
    auto& c = cluster();
    constexpr size_t kWatcher = 16;
    auto r = mo_record(0x710, "192.0.2.71", "2001:db8::71", "02:00:00:00:07:10", "198.51.100.1");
    auto r2 = r;
    r2.loc4 = ip("198.51.100.2");
    const uint64_t w = c[kWatcher].watch(42, ip("192.0.2.71"));
    const uint64_t wm = c[kWatcher].watch_mac(42, mac("02:00:00:00:07:10"));
    auto update = [&](uint64_t cookie, Epoch e) {
        auto u = c.await(kWatcher, [&](const Event& x) {
            return x.type == Event::Type::WatchUpdate && x.cookie == cookie && x.record.epoch == e;
        });
        return u;
    };
    // epoch 1 on P1 (ar1)
    const Epoch e1 = c.publish(1, r);
    REQUIRE(update(w, e1));
    // epoch 2 on P2 (ar2), which read P1's record first; P1 lets go
    c.resolve_until(2, 42, ip("192.0.2.71"), [&](const Event& x) { return x.record.epoch == e1; });
    const Epoch e2 = c.publish(2, r2);
    c[1].release(42, 0x710);
    auto u2 = update(w, e2);
    REQUIRE(u2);
    CHECK(u2->record.publisher == "ar2");
    // epoch 3 back on P1: its second publication of the MO
    c.resolve_until(1, 42, ip("192.0.2.71"), [&](const Event& x) { return x.record.epoch == e2; });
    const Epoch e3 = c.publish(1, r);
    REQUIRE(e3 > e2);
    c[2].release(42, 0x710);
    auto u3 = update(w, e3);
    REQUIRE(u3);
    CHECK(u3->record.publisher == "ar1");
    CHECK(u3->record.loc4 == ip("198.51.100.1"));
    // the MAC watch too (its event may have been dropped by the wait above: look at what it holds)
    CHECK(eventually([&] {
        c[kWatcher].poll([](Event&&) {});
        auto m = c[kWatcher].cached_mac(42, mac("02:00:00:00:07:10"));
        return m && m->epoch == e3;
    }, kWait));
    CHECK(c[kWatcher].cached(42, ip("192.0.2.71"))->epoch == e3);
    // P1's epoch-1 value is still stored (its own slot, no longer refreshed): readers choose e3.
    c.resolve_until(27, 42, ip("2001:db8::71"), [&](const Event& x) { return x.record.epoch == e3; });
    c[kWatcher].unwatch(w);
    c[kWatcher].unwatch(wm);
    c[1].release(42, 0x710);
}

TEST_CASE("refresh re-signs with a later expiry, same epoch", "[dht][net]") {
    auto& c = cluster();
    auto r = mo_record(0x800, "192.0.2.80", "2001:db8::80", "02:00:00:00:08:00", "198.51.100.1");
    const Epoch e = c.publish(1, r);
    auto a = c.resolve_until(21, 42, ip("192.0.2.80"), [&](const Event& x) { return x.record.epoch == e; });
    const uint64_t exp0 = a.record.expiry_ms;
    // Make sure the clock moves so the expiry differs.
    REQUIRE(eventually([&] { return unix_ms_now() > exp0 - 600'000 + 5; }, 1s, 1ms));
    const auto before = c[1].counters().refreshed;
    CHECK(c[1].refresh(true) >= 1);
    CHECK(c[1].counters().refreshed > before);
    auto b = c.resolve_until(21, 42, ip("192.0.2.80"), [&](const Event& x) { return x.record.expiry_ms > exp0; });
    CHECK(b.record.epoch == e);
    CHECK(b.record.publisher == "ar1");

    // The timer path: an AR with a 1 s refresh interval republishes from poll() by itself.
    auto cfg = Cluster::config(c.port0, std::make_shared<std::atomic<int64_t>>(0));
    cfg.refresh_interval = std::chrono::seconds(1);
    Directory ar(cfg, pki().ca.second, pki().ar4);
    REQUIRE(eventually([&] { return ar.known_nodes() >= 8; }, kWait, 20ms));
    auto r2 = mo_record(0x810, "192.0.2.81", "2001:db8::81", "02:00:00:00:08:10", "198.51.100.4");
    const Epoch e2 = ar.publish(r2);
    const uint64_t exp2 = unix_ms_now() + 600'000;
    const bool refreshed = eventually(
        [&] {
            ar.poll([](Event&&) {});
            return ar.counters().refreshed >= 1;
        },
        5s);
    CHECK(refreshed);
    auto d = c.resolve_until(21, 42, ip("192.0.2.81"), [&](const Event& x) { return x.record.expiry_ms > exp2; });
    CHECK(d.record.epoch == e2);
    CHECK(d.record.publisher == "ar4");
}

// A fresh read-only node bootstrapped into the cluster (it holds nothing yet).
static std::unique_ptr<Directory> fresh_reader(Cluster& c) {
    auto d = std::make_unique<Directory>(Cluster::config(c.port0, std::make_shared<std::atomic<int64_t>>(0)),
                                         pki().ca.second, std::nullopt);
    REQUIRE(eventually([&] { return d->known_nodes() >= 8; }, kWait, 20ms));
    return d;
}

// Collects the events of one cookie on d until pred(events) or the timeout.
static std::vector<Event> collect(Directory& d, uint64_t cookie, const std::function<bool(const std::vector<Event>&)>& pred,
                           std::chrono::milliseconds timeout = kWait) {
    std::vector<Event> evs;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred(evs) && std::chrono::steady_clock::now() < deadline) {
        d.wait(10ms);
        d.poll([&](Event&& e) {
            if (e.cookie == cookie && (e.type == Event::Type::Resolved || e.type == Event::Type::Refined))
                evs.push_back(std::move(e));
        });
    }
    return evs;
}

TEST_CASE("early answer from a stale replica, then Refined with the newer record", "[dht][net][early]") {
    auto& c = cluster();
    const auto& k = pki();
    auto r = mo_record(0xA00, "192.0.2.160", "2001:db8::160", "02:00:00:00:0a:00", "198.51.100.2");
    const Epoch e2 = c.publish(2, r);
    c.resolve_until(13, 42, ip("192.0.2.160"), [&](const Event& x) { return x.record.epoch == e2; });
    // An older record of the same MO, genuinely signed by AR2 (what a lagging replica holds).
    auto old = r;
    old.epoch = e2 - 1000;
    old.publisher = "ar2";
    old.loc4 = ip("198.51.100.22");
    old.expiry_ms = unix_ms_now() + 600'000;
    const Blob stale = encode_envelope(Signer(k.ar2).sign(old));

    // The stale value is put from the reader: when the reader is one of the key's storage nodes,
    // OpenDHT answers the get from its own storage first (the stale record), then the search
    // finds e2 and a Refined follows. When it is not, the replicas hold both values and may
    // answer with both at once: one Resolved with e2. Either way the lookup ends on e2, an early
    // answer is the stale record, and the only follow-up is one Refined with e2.
    auto f = fresh_reader(c);
    {
        std::promise<bool> done;
        auto fut = done.get_future();
        f->runner().put(eid_key(42, ip("192.0.2.160")), raw_value(stale, 0x5157A1E), [&done](bool ok) { done.set_value(ok); });
        REQUIRE(fut.wait_for(kWait) == std::future_status::ready);
    }
    const auto before = f->counters();
    f->resolve(42, ip("192.0.2.160"), 77);
    auto evs = collect(*f, 77, [&](const std::vector<Event>& v) { return !v.empty() && v.back().record.epoch == e2; });
    std::string got;
    for (const auto& e : evs) got += std::to_string(int(e.type)) + " " + to_string(e.answer) + " " + e.record.str() + "; ";
    INFO("events: " << got);
    REQUIRE(!evs.empty());
    REQUIRE(evs.size() <= 2);
    CHECK(evs[0].type == Event::Type::Resolved);
    CHECK(evs[0].answer == Answer::Found);
    CHECK(evs[0].ok);
    CHECK(evs.back().record.epoch == e2);
    CHECK(evs.back().record.loc4 == ip("198.51.100.2"));
    if (evs.size() == 2) {
        CHECK(evs[0].record.epoch == old.epoch);
        CHECK(evs[0].record.loc4 == ip("198.51.100.22"));
        CHECK(evs[1].type == Event::Type::Refined);
        CHECK(evs[1].answer == Answer::Found);
        CHECK(evs[1].kind == KeyKind::Eid);
        CHECK(evs[1].tenant == 42);
        CHECK(evs[1].eid == ip("192.0.2.160"));
        CHECK(evs[1].elapsed_us >= evs[0].elapsed_us);
        std::printf("  early answer (stale) after %u us, refined after %u us\n", evs[0].elapsed_us, evs[1].elapsed_us);
    } else {
        std::printf("  the replicas answered with both values at once: e2 after %u us\n", evs[0].elapsed_us);
    }
    // Nothing else for this cookie (a Refined only comes with a newer record).
    auto rest = collect(*f, 77, [](const std::vector<Event>& v) { return !v.empty(); }, 500ms);
    CHECK(rest.empty());
    const auto after = f->counters();
    CHECK(after.resolves == before.resolves + 1);
    CHECK(after.resolve_found == before.resolve_found + 1);  // one lookup, counted once
    CHECK(after.resolve_refined == before.resolve_refined + (evs.size() - 1));
    CHECK(f->cached(42, ip("192.0.2.160"))->epoch == e2);

    // Held e2 now: the next answer is e2 at once, with no Refined.
    f->resolve(42, ip("192.0.2.160"), 78);
    auto again = collect(*f, 78, [](const std::vector<Event>& v) { return !v.empty(); });
    REQUIRE(again.size() == 1);
    CHECK(again[0].record.epoch == e2);
    CHECK(collect(*f, 78, [](const std::vector<Event>& v) { return !v.empty(); }, 500ms).empty());
    f->stop();
}

TEST_CASE("NotFound is answered only when the whole search is done", "[dht][net][early]") {
    auto& c = cluster();
    const auto& k = pki();
    // Only a forged value under the key: values arrive, none valid, so no early answer.
    auto evil = mo_record(0xA10, "192.0.2.170", "2001:db8::170", "02:00:00:00:0a:10", "203.0.113.66");
    evil.epoch = c[2].hlc().next();
    evil.expiry_ms = unix_ms_now() + 600'000;
    const auto key = eid_key(42, ip("192.0.2.170"));
    inject(c, 6, key, raw_value(encode_envelope(Signer(k.rogue_ar2).sign(evil)), 0xE11));
    auto f = fresh_reader(c);
    const auto before = f->counters();
    f->resolve(42, ip("192.0.2.170"), 90);
    auto evs = collect(*f, 90, [](const std::vector<Event>& v) { return !v.empty(); });
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].type == Event::Type::Resolved);
    CHECK(evs[0].answer == Answer::NotFound);
    CHECK(evs[0].ok);  // the search completed
    const auto after = f->counters();
    // The forged value was read (and rejected) before the answer: the answer waited.
    CHECK(after.rejected_untrusted > before.rejected_untrusted);
    CHECK(after.resolve_not_found == before.resolve_not_found + 1);
    CHECK(collect(*f, 90, [](const std::vector<Event>& v) { return !v.empty(); }, 500ms).empty());
    // An unknown key: NotFound too, once.
    f->resolve(42, ip("192.0.2.171"), 91);
    auto nf = collect(*f, 91, [](const std::vector<Event>& v) { return !v.empty(); });
    REQUIRE(nf.size() == 1);
    CHECK(nf[0].answer == Answer::NotFound);
    f->stop();
}

TEST_CASE("publish() pushes Signed with the envelope; refresh and withdraw do not", "[dht][net][direct]") {
    auto& c = cluster();
    auto r = mo_record(0xB00, "192.0.2.180", "2001:db8::180", "02:00:00:00:0b:00", "198.51.100.3");
    const Epoch e = c[3].publish(r);
    auto sig = c.await(3, [&](const Event& x) { return x.type == Event::Type::Signed && x.cookie == 0xB00; });
    REQUIRE(sig);
    CHECK(sig->record.epoch == e);
    CHECK(sig->record.publisher == "ar3");
    CHECK(sig->tenant == 42);
    CHECK(sig->answer == Answer::Found);
    REQUIRE_FALSE(sig->envelope.empty());
    Verifier v(pki().ca.second);
    Verified out;
    REQUIRE(v.verify(sig->envelope, out, unix_ms_now()) == Verdict::Ok);
    CHECK(out.rec == sig->record);
    // The puts complete afterwards.
    auto pub = c.await(3, [&](const Event& x) { return x.type == Event::Type::Published && x.cookie == 0xB00; });
    REQUIRE(pub);
    CHECK(pub->ok);
    // A refresh and a withdraw sign too, but are not publications of a new attachment.
    CHECK(c[3].refresh(true) >= 1);
    const Epoch t = c[3].withdraw(42, 0xB00);
    REQUIRE(t > e);
    int signed_events = 0;
    auto w = c.await(3, [&](const Event& x) {
        if (x.type == Event::Type::Signed) ++signed_events;
        return x.type == Event::Type::Published && x.cookie == 0xB00 && x.record.epoch == t;
    });
    REQUIRE(w);
    CHECK(w->answer == Answer::Withdrawn);
    c.await(3, [&](const Event& x) { return x.type == Event::Type::Signed && ++signed_events; }, 300ms);
    CHECK(signed_events == 0);
}

TEST_CASE("accept_envelope: a direct notification is verified like a DHT value and not rolled back", "[dht][net][direct]") {
    auto& c = cluster();
    const auto& k = pki();
    constexpr size_t kOld = 24;  // the old AR (read-only here) receiving the MoveNotify
    auto& d = c[kOld];
    auto r = mo_record(0xC00, "192.0.2.190", "2001:db8::190", "02:00:00:00:0c:00", "198.51.100.3");
    r.epoch = c[3].hlc().next() + 5'000;
    r.expiry_ms = unix_ms_now() + 600'000;
    const Blob good = encode_envelope(Signer(k.ar3).sign(r));
    const auto c0 = d.counters();

    auto expect_reject = [&](const Blob& b, Verdict want) {
        Verdict why = Verdict::Ok;
        auto got = d.accept_envelope(b.data(), b.size(), &why);
        INFO("want " << to_string(want) << ", verdict " << to_string(why));
        CHECK_FALSE(got);
        CHECK(why == want);
    };
    expect_reject(Blob{0x01, 0x02, 0x03}, Verdict::Malformed);
    expect_reject(Blob{}, Verdict::Malformed);
    expect_reject(encode_record(r), Verdict::Unsigned);
    expect_reject(encode_envelope(Signer(k.rogue_ar2).sign(r)), Verdict::UntrustedSigner);
    expect_reject(encode_envelope(Signer(k.self_signed_ar2).sign(r)), Verdict::UntrustedSigner);
    {
        Envelope t = *decode_envelope(good);
        auto rec = *decode_record(t.rec);
        rec.loc4 = ip("203.0.113.66");
        t.rec = encode_record(rec);
        expect_reject(encode_envelope(t), Verdict::BadSignature);
    }
    {
        auto ex = r;
        ex.expiry_ms = unix_ms_now() - 3'600'000;
        expect_reject(encode_envelope(Signer(k.ar3).sign(ex)), Verdict::Expired);
    }
    auto c1 = d.counters();
    CHECK(c1.direct_rejected == c0.direct_rejected + 7);
    CHECK(c1.direct_accepted == c0.direct_accepted);
    CHECK(c1.rejected_malformed >= c0.rejected_malformed + 1);
    CHECK(c1.rejected_unsigned == c0.rejected_unsigned + 1);
    CHECK(c1.rejected_untrusted == c0.rejected_untrusted + 2);
    CHECK(c1.rejected_bad_signature == c0.rejected_bad_signature + 1);
    CHECK(c1.rejected_expired == c0.rejected_expired + 1);
    CHECK_FALSE(d.cached(42, ip("192.0.2.190")));

    // The valid one: taken, under every key of the record, and the epoch observed.
    Verdict why = Verdict::Malformed;
    auto got = d.accept_envelope(good, &why);
    REQUIRE(got);
    CHECK(why == Verdict::Ok);
    CHECK(got->epoch == r.epoch);
    CHECK(got->publisher == "ar3");
    CHECK(got->loc4 == ip("198.51.100.3"));
    CHECK(d.cached(42, ip("192.0.2.190"))->epoch == r.epoch);
    CHECK(d.cached(42, ip("2001:db8::190"))->epoch == r.epoch);
    CHECK(d.cached_mac(42, mac("02:00:00:00:0c:00"))->epoch == r.epoch);
    CHECK(d.hlc().last() >= r.epoch);
    // Idempotent: the same notification again is accepted again.
    CHECK(d.accept_envelope(good));
    auto c2 = d.counters();
    CHECK(c2.direct_accepted == c1.direct_accepted + 2);
    CHECK(c2.direct_rejected == c1.direct_rejected);

    // A valid but older record (the previous AR's, or a replay): refused as stale, nothing changes.
    auto older = r;
    older.epoch = r.epoch - 10;
    older.loc4 = ip("198.51.100.1");
    auto g1 = d.accept_envelope(encode_envelope(Signer(k.ar1).sign(older)), &why);
    CHECK_FALSE(g1);
    CHECK(why == Verdict::Stale);
    CHECK(d.counters().direct_rejected == c2.direct_rejected + 1);
    CHECK(d.counters().rejected_stale == c2.rejected_stale + 1);
    CHECK(d.cached(42, ip("192.0.2.190"))->loc4 == ip("198.51.100.3"));

    // The DHT still has only the older record (AR1's publication lags): a lookup does not roll
    // the notified record back.
    c.publish(1, older);
    auto a = c.resolve(kOld, 42, ip("192.0.2.190"));
    CHECK(a.answer == Answer::Found);
    CHECK(a.record.epoch == r.epoch);
    CHECK(a.record.loc4 == ip("198.51.100.3"));
    auto m = c.resolve_mac(kOld, 42, mac("02:00:00:00:0c:00"));
    CHECK(m.record.epoch == r.epoch);
    // Whereas a reader that got no notification sees AR1's (older) record from the DHT.
    auto other = c.resolve_until(26, 42, ip("192.0.2.190"), [](const Event& x) { return x.answer == Answer::Found; });
    CHECK(other.record.epoch == older.epoch);
    CHECK(d.cached(42, ip("192.0.2.190"))->epoch == r.epoch);
    c[1].release(42, 0xC00);
}

TEST_CASE("30% of the nodes die: no record is lost", "[dht][net][churn]") {
    auto& c = cluster();
    // A batch of MOs published (and replicated) before the failure.
    std::vector<std::pair<MoId, Epoch>> mos;
    for (int i = 0; i < 8; ++i) {
        const std::string e4 = "192.0.2." + std::to_string(100 + i);
        const std::string e6 = "2001:db8::1:" + std::to_string(100 + i);
        const std::string m = "02:00:00:00:09:" + std::to_string(10 + i);
        auto r = mo_record(MoId(0x900 + i), e4.c_str(), e6.c_str(), m.c_str(), "198.51.100.2");
        mos.emplace_back(r.mo, c.publish(i < 4 ? 2 : 1, r));
    }
    // Kill 10 of 32 nodes (31%) abruptly, none of them a publisher or the readers below.
    size_t killed = 0;
    for (size_t i = kNodes - 1; killed < 10; --i) {
        c.kill(i);
        ++killed;
    }
    // Both readers resolve all 8 EIDs concurrently (resolve() is asynchronous); an answer that is
    // not Found yet (a search that only met dead nodes) is asked again until the deadline.
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t reader : {12u, 5u}) {
        std::map<uint64_t, int> pending;  // cookie -> MO index
        auto ask = [&](int i) {
            const uint64_t cookie = c.next_cookie++;
            pending[cookie] = i;
            c[reader].resolve(42, ip(("192.0.2." + std::to_string(100 + i)).c_str()), cookie);
        };
        for (int i = 0; i < 8; ++i) ask(i);
        int found = 0;
        const bool ok = eventually(
            [&] {
                c[reader].wait(20ms);
                c[reader].poll([&](Event&& x) {
                    auto it = pending.find(x.cookie);
                    if (x.type != Event::Type::Resolved || it == pending.end()) return;
                    const int i = it->second;
                    pending.erase(it);
                    if (x.answer != Answer::Found) return ask(i);
                    CHECK(x.record.mo == mos[size_t(i)].first);
                    CHECK(x.record.epoch == mos[size_t(i)].second);
                    ++found;
                });
                return found == 8;
            },
            kWait, 1ms);
        CHECK(ok);
    }
    std::printf("  after killing %zu/%zu nodes: 2 x 8 concurrent resolves in %.2f s\n", killed, kNodes,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}
