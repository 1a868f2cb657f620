// lm-bench handover: how fast every correspondent AR follows a move, over an in-process LM DHT.
//
//   lm-bench handover [--ars N] [--moves N] [--seed N] [--poll-us N] [--begin-ms N] [--gap-ms N]
//                     [--cap-ms N] [--no-migrate-begin] [--fresh-only] [--dht-cpus all|control] [--lcore N]
//                     [--csv FILE] [--tag NAME] [--eal EAL-ARGS...]
//
// N access routers in one process, without DPDK ports: each is a dir::Directory (an OpenDHT node
// on 127.0.0.1 with its own AR identity from one domain CA; together they are the DHT), a real
// ControlPlane (config from YAML: IPv6 locator 2001:db8:100::<i+1>, static next-hop MAC) and a
// fake worker: its update ring is drained into a real LocatorCache, as PacketPath::apply does.
// One MO (EID 2001:db8:ff::1) is attached on AR 0; every other AR gets a miss for it, resolves
// it and watches it (the control plane watches what it resolves). Then the MO moves `moves`
// times to a seeded-random other AR k: [migrate-begin on the old AR, --begin-ms of polling,]
// t0, ControlPlane::attach() on AR k (what `lmctl attach` and attach detection do: publish a
// newer signed record), and the bench polls every control plane (one thread, one round = poll +
// drain every AR, then sleep --poll-us as ControlPlane::run does) until every AR but k maps the
// EID to k's locator in its worker cache. The sample of a move is the time until the last AR
// has it; ARs still stale 1 s after t0 are counted (stale_after_1s, per AR per move) and the move
// gives up after --cap-ms. The old AR learns the move from its DHT watch (migrate-begin watches
// the EID) or from the new AR's move notification: control packets the control planes transmit
// are delivered at once to the addressed AR's punt ring (the core network and the data plane's
// punt, emulated). See docs/benchmarks.md, "Handover".
//
// The last line of output is one JSON object.
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/config.hpp"
#include "common/log.hpp"
#include "common/ring_msg.hpp"
#include "controlplane/control_plane.hpp"
#include "dataplane/dpdk_env.hpp"
#include "dataplane/locator_cache.hpp"
#include "dht/directory.hpp"
#include "dht/pki.hpp"
#include "dht/trust.hpp"
#include "bench/bench_util.hpp"

#include <opendht/dhtrunner.h>  // after the project headers (see dht/directory.hpp)

using namespace lm;
using namespace lm::bench;

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& s) {
    std::fprintf(stderr, "lm-bench handover: %s\n", s.c_str());
    std::fflush(stdout);
    std::exit(1);
}

struct HoOptions {
    unsigned ars = 100;
    unsigned moves = 200;
    uint64_t seed = 0x4C4D2D68616E646Full;  // "LM-hando"
    unsigned poll_us = 200;       // sleep between control rounds (ControlPlane::run sleeps 200 us)
    unsigned begin_ms = 50;       // migrate-begin on the old AR this long before the attach
    unsigned gap_ms = 50;         // polling between the end of a move and the next one
    unsigned cap_ms = 3000;       // a move gives up on still-stale ARs after this long
    bool migrate_begin = true;
    bool dht_all_cpus = true;     // the directories' threads on every CPU (false: the control lcore's)
    bool fresh_only = false;      // move only to ARs that never published the MO (at most ars - 1 moves)
    dir::KeyType key_type;        // the CA's and the ARs' keys (--key-type; Ed25519 by default)
    unsigned lcore = 0;
    std::vector<std::string> eal;
    std::string csv, tag;         // --csv FILE: append a row (before the teardown); --tag: its "sweep" column
};

constexpr uint32_t kNetworkId = 0x4C4DBE02;  // apart from `resolve` and the tests' DHTs
constexpr TenantId kTenant = 1;
constexpr MoId kMo = 0x4C4D'4D4F'0000'0001ull;
constexpr uint8_t kAccessIndex = 0, kCoreIndex = 1;  // port order in the config below
constexpr uint16_t kLmPort = 4341;                    // Config::udp_port default
constexpr unsigned kUpdateRing = 512;                 // per fake worker (the control plane keeps a backlog)
constexpr unsigned kCacheEntries = 64;                // per fake worker: one MO is all it holds

double secs_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

IpAddr parse_ip(const char* s) {
    auto a = IpAddr::parse(s);
    if (!a) fail(std::string("bad address ") + s);
    return *a;
}

// AR i's locator: 2001:db8:100::/96 + (i + 1).
IpAddr ar_locator(unsigned i) {
    IpAddr a = parse_ip("2001:db8:100::");
    const uint32_t be = rte_cpu_to_be_32(i + 1);
    std::memcpy(a.b.data() + 12, &be, 4);
    return a;
}
// The AR a locator belongs to, or -1.
int ar_of_locator(const uint8_t* a16, unsigned n) {
    static const IpAddr base = parse_ip("2001:db8:100::");
    if (std::memcmp(a16, base.b.data(), 12) != 0) return -1;
    uint32_t be;
    std::memcpy(&be, a16 + 12, 4);
    const uint32_t v = rte_be_to_cpu_32(be);
    return v >= 1 && v <= n ? int(v - 1) : -1;
}

std::string ar_yaml(unsigned i) {
    return "router: { name: ar" + std::to_string(i) + " }\n" +
           "locators: { v6: " + ar_locator(i).str() + " }\n" +
           R"(gateway: { ipv6: 2001:db8:ff::fffe, mac: 02:00:5e:00:00:01 }
ports:
  - { name: access0, device: net_null0, role: access, tenant: 1 }
  - { name: core0, device: net_null1, role: core }
core: { next_hop: { ipv6: 2001:db8:1ff::1, mac: 02:00:00:00:0f:fe } }
mobile_prefixes: [2001:db8:ff::/48]
peer_prefixes: [2001:db8:100::/48]
)";
}

dir::DhtConfig node_config(uint16_t bootstrap_port) { return loopback_dht_config(bootstrap_port, kNetworkId); }


double mean_of(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / double(v.size());
}
std::string dist(std::vector<double> v, const char* unit = "ms") {
    std::sort(v.begin(), v.end());
    char b[256];
    std::snprintf(b, sizeof b, "n %zu, min %.2f p50 %.2f p90 %.2f p99 %.2f max %.2f mean %.2f %s", v.size(),
                  v.empty() ? 0 : v.front(), percentile(v, 50), percentile(v, 90), percentile(v, 99),
                  v.empty() ? 0 : v.back(), mean_of(v), unit);
    return b;
}

double rss_mb() {
    std::ifstream f("/proc/self/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
    return 0;
}
unsigned thread_count() {
    std::ifstream f("/proc/self/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("Threads:", 0) == 0) return unsigned(std::strtoul(line.c_str() + 8, nullptr, 10));
    return 0;
}
double process_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}


// One access router: directory, control plane, fake worker. Never moved (the control plane keeps
// a reference to cfg): held by unique_ptr.
struct Ar {
    unsigned index = 0;
    IpAddr loc;
    Config cfg;
    std::unique_ptr<dir::Directory> dir;
    RingPtr updates, miss, punt;
    std::unique_ptr<LocatorCache> cache;
    std::unique_ptr<ControlPlane> cp;
    // What the fake worker saw.
    uint64_t upserts = 0, upsert_failed = 0, deletes = 0, miss_failed = 0, attach_updates = 0;
    AttachState mo_state = AttachState::Deliver;
    bool mo_attached = false;

    // PacketPath::apply on the cache (and the MO's attachment state, for the report).
    void drain() {
        UpdateMsg u[32];
        unsigned n;
        while ((n = rte_ring_dequeue_burst_elem(updates.get(), u, sizeof(UpdateMsg), 32, nullptr)) > 0) {
            for (unsigned i = 0; i < n; ++i) {
                switch (u[i].op) {
                    case UpdateOp::UpsertMapping:
                        ++upserts;
                        if (!cache->upsert(u[i].key, u[i].value)) ++upsert_failed;
                        break;
                    case UpdateOp::DeleteMapping:
                        ++deletes;
                        cache->erase(u[i].key);
                        break;
                    case UpdateOp::MissFailed: ++miss_failed; break;
                    case UpdateOp::UpsertAttachment:
                        if (u[i].mo_id == kMo) ++attach_updates, mo_attached = true, mo_state = u[i].state;
                        break;
                    case UpdateOp::DeleteAttachment:
                        if (u[i].mo_id == kMo) mo_attached = false;
                        break;
                    default: break;
                }
            }
        }
    }
};

struct Net {
    std::vector<std::unique_ptr<Ar>>* ars = nullptr;
    RingPtr tx;  // every control plane's "worker 0" tx ring: one producer thread, one consumer
    uint64_t lm_delivered = 0, lm_dropped = 0, other = 0;

    // The core network and the receiving data plane's punt: an LM control packet (IPv6, UDP to
    // port 4341) to an AR's locator lands on that AR's punt ring; everything else (gateway
    // announcements to the MO, neighbour probes) is dropped.
    void deliver() {
        rte_mbuf* m[32];
        unsigned n;
        while ((n = rte_ring_dequeue_burst_elem(tx.get(), m, sizeof(rte_mbuf*), 32, nullptr)) > 0) {
            for (unsigned i = 0; i < n; ++i) {
                rte_mbuf* p = m[i];
                int to = -1;
                if (p->port == kCoreIndex && p->nb_segs == 1 &&
                    p->data_len >= sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) + sizeof(rte_udp_hdr)) {
                    auto* eh = rte_pktmbuf_mtod(p, const rte_ether_hdr*);
                    auto* ip6 = rte_pktmbuf_mtod_offset(p, const rte_ipv6_hdr*, sizeof(rte_ether_hdr));
                    auto* udp = rte_pktmbuf_mtod_offset(p, const rte_udp_hdr*, sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr));
                    if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6) && ip6->proto == IPPROTO_UDP &&
                        udp->dst_port == rte_cpu_to_be_16(kLmPort))
                        to = ar_of_locator(ip6->dst_addr, unsigned(ars->size()));
                }
                if (to < 0) {
                    ++other;
                    rte_pktmbuf_free(p);
                    continue;
                }
                PuntMsg pm{};
                pm.mbuf = p;
                pm.port_index = kCoreIndex;
                pm.reason = PuntReason::LmControl;
                if (rte_ring_enqueue_elem((*ars)[size_t(to)]->punt.get(), &pm, sizeof pm) == 0) {
                    ++lm_delivered;
                } else {
                    ++lm_dropped;
                    rte_pktmbuf_free(p);
                }
            }
        }
    }
};

// Signature costs on this machine: signing (the new AR's signer thread, once per move) and verifying
// (every watching AR, once per distinct record), median of `n`.
void measure_crypto(const ::dht::crypto::Identity& id, std::shared_ptr<::dht::crypto::Certificate> ca) {
    dir::Signer signer(id);
    dir::Verifier verifier(ca);
    dir::Record r;
    r.mo = kMo;
    r.tenant = kTenant;
    r.eids = {parse_ip("2001:db8:ff::1")};
    r.mac = MacAddr{{0x02, 0xdb, 0, 0, 0, 1}};
    r.loc6 = ar_locator(0);
    r.expiry_ms = uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count()) + 600'000;
    std::vector<double> sign_ms, verify_ms;
    size_t bytes = 0;
    const uint64_t now_ms = r.expiry_ms - 600'000;
    for (int i = 0; i < 21; ++i) {
        r.epoch = Epoch(1000 + i);
        auto t = Clock::now();
        const dir::Envelope env = signer.sign(r);
        sign_ms.push_back(ms_between(t, Clock::now()));
        const dir::Blob data = dir::encode_envelope(env);
        bytes = data.size();
        dir::Verified out;
        t = Clock::now();
        const auto v = verifier.verify(data, out, now_ms);
        verify_ms.push_back(ms_between(t, Clock::now()));
        if (v != dir::Verdict::Ok) fail(std::string("self-test: a signed record does not verify: ") + dir::to_string(v));
    }
    verify_ms.erase(verify_ms.begin());  // the first one also checks the certificate chain
    std::sort(sign_ms.begin(), sign_ms.end());
    std::sort(verify_ms.begin(), verify_ms.end());
    std::printf("crypto: %s sign %.3f ms, verify %.3f ms (medians of %zu); signed record %zu bytes\n",
                dir::key_type_of(*id.first)->str().c_str(), percentile(sign_ms, 50), percentile(verify_ms, 50), verify_ms.size(), bytes);
}

struct MoveStats {
    std::vector<double> last_ms;       // per move: attach -> the last AR updated (cap if some never were)
    std::vector<double> first_ms;      // per move: attach -> the first AR updated
    std::vector<double> per_ar_ms;     // per AR per move (updated ones)
    std::vector<double> old_ar_ms;     // per move: attach -> the old AR's cache points to the new AR
    std::vector<double> published_ms;  // per move: attach -> every put of the new record acked
    std::vector<double> round_us;      // duration of one control round over all ARs (no sleep)
    std::vector<double> cpu_ms;        // per move: CPU time the whole process used inside the move
    uint64_t stale_after_1s = 0;       // ARs still stale 1 s after the attach, summed over moves
    uint64_t never = 0;                // ARs still stale at the cap, summed over moves
    unsigned capped_moves = 0;
    unsigned old_learned = 0;          // moves whose old AR counted moved_away
    unsigned old_forwarding = 0;       // ... and whose fake worker got the Forward attachment
    unsigned attach_errors = 0;
    // Moves to an AR that had published the MO's record before (its value slot in the DHT is
    // edited) and to one that never had (a new value): how many of each gave up at the cap.
    unsigned to_repeat = 0, to_repeat_capped = 0, to_fresh = 0, to_fresh_capped = 0;
};

int handover_bench(const HoOptions& o) {
    const auto t_start = Clock::now();
    const RunInfo ri = RunInfo::now();
    const unsigned N = o.ars;
    if (N < 2) fail("--ars must be at least 2");
    if (N > 60000) fail("--ars must be at most 60000");
    log::set_level(LogLevel::Warning);  // a few info lines per move and AR otherwise

    const cpu_set_t all_cpus = thread_affinity();
    if (!start_eal("handover", o.lcore, o.eal)) fail("EAL initialisation failed");
    EalCleanup eal_cleanup;
    const cpu_set_t control_cpus = thread_affinity();  // EAL pinned this (main) thread to the lcore
    std::printf("cpu: %s, %d online, control lcore %u, load average %s\n", cpu_model().c_str(), CPU_COUNT(&all_cpus),
                rte_lcore_id(), loadavg().c_str());
    std::printf("setup: %u ARs, %u moves, %s, poll %u us, gap %u ms, cap %u ms, seed %#" PRIx64
                ", directories' threads on %s\n",
                N, o.moves,
                o.migrate_begin ? ("migrate-begin on the old AR " + std::to_string(o.begin_ms) + " ms before the attach").c_str()
                                : "no migrate-begin",
                o.poll_us, o.gap_ms, o.cap_ms, o.seed, o.dht_all_cpus ? "every CPU" : "the control lcore's CPU");
    std::fflush(stdout);

    // ---- PKI: one domain CA, one AR identity per router (key generation on every CPU) --------
    auto t = Clock::now();
    const auto ca = dir::create_domain_ca("lm-bench-domain-ca", o.key_type);
    std::vector<std::optional<::dht::crypto::Identity>> ids(N);
    {
        std::atomic<unsigned> next{0};
        auto gen = [&] {
            for (unsigned i; (i = next++) < N;) ids[i] = dir::issue_ar_identity(ca, "ar" + std::to_string(i), o.key_type);
        };
        std::vector<std::thread> th;
        for (int k = 0; k < std::max(1, CPU_COUNT(&all_cpus)); ++k) th.emplace_back(gen);
        for (auto& x : th) x.join();
    }
    std::printf("pki: CA + %u AR identities (%s) in %.2f s\n", N, o.key_type.str().c_str(), secs_since(t));
    measure_crypto(*ids[0], ca.second);
    std::fflush(stdout);

    // ---- the DHT: every AR's directory is one node ------------------------------------------
    t = Clock::now();
    std::vector<std::unique_ptr<Ar>> ars;
    uint16_t port0 = 0;
    set_thread_affinity(o.dht_all_cpus ? all_cpus : control_cpus);  // OpenDHT's threads inherit it
    for (unsigned i = 0; i < N; ++i) {
        auto a = std::make_unique<Ar>();
        a->index = i;
        a->loc = ar_locator(i);
        a->dir = std::make_unique<dir::Directory>(node_config(port0), ca.second, std::move(ids[i]));
        if (i == 0) port0 = a->dir->bound_port();
        ars.push_back(std::move(a));
    }
    set_thread_affinity(control_cpus);
    ids.clear();
    // As in `resolve`: once everyone is up, each node also pings the 8 nodes after it in creation
    // order (OpenDHT learns nodes it has no traffic with only slowly).
    auto loopback = [](uint16_t port) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return ::dht::SockAddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
    };
    for (size_t i = 0; i < N; ++i) {
        std::vector<::dht::SockAddr> peers;
        for (size_t d = 1; d <= std::min<size_t>(8, N - 1); ++d) peers.push_back(loopback(ars[(i + d) % N]->dir->bound_port()));
        ars[i]->dir->runner().bootstrap(std::move(peers));
    }
    const size_t want_known = std::min<size_t>(8, N / 2);
    auto min_known = [&] {
        size_t m = SIZE_MAX;
        for (auto& a : ars) m = std::min(m, a->dir->known_nodes());
        return m;
    };
    {
        const auto deadline = Clock::now() + std::chrono::seconds(120);
        auto last_print = Clock::now();
        while (min_known() < want_known && Clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            if (secs_since(last_print) >= 5) {
                last_print = Clock::now();
                std::printf("  dht: joining, %.0f s: the least connected node knows %zu nodes (want %zu)\n", secs_since(t),
                            min_known(), want_known);
                std::fflush(stdout);
            }
        }
    }
    if (min_known() < want_known) std::printf("dht: WARNING: a node knows only %zu nodes (wanted %zu); going on\n", min_known(), want_known);
    std::printf("dht: %u nodes up on 127.0.0.1 in %.2f s (every node knows >= %zu)\n", N, secs_since(t), min_known());
    std::fflush(stdout);

    // ---- the routers: control plane + fake worker each ----------------------------------------
    t = Clock::now();
    const double rss0 = rss_mb();
    const int socket = int(rte_socket_id());
    // Control packets only (gateway announcements, move notifications): one pool for everyone.
    auto pool = make_pktmbuf_pool("ho_pool", 2047, socket);
    Net net;
    net.ars = &ars;
    net.tx = make_spsc_ring("ho_tx", sizeof(rte_mbuf*), 4096, socket);
    WorkerCounters wc;  // read by telemetry only: one for all
    for (auto& a : ars) {
        const std::string n = std::to_string(a->index);
        a->cfg = load_config_string(ar_yaml(a->index), "<lm-bench handover ar" + n + ">");
        a->cfg.dht = DhtSettings{};
        a->cfg.dht->max_watches = 16;
        a->cfg.dht->cache_ttl_s = 3600;    // no re-resolve during a run: only watches move mappings
        a->cfg.dht->negative_ttl_ms = 0;   // a set-up miss that raced the first put is asked again at once
        a->updates = make_spsc_ring("ho_u" + n, sizeof(UpdateMsg), kUpdateRing, socket);
        a->miss = make_mpsc_ring("ho_m" + n, sizeof(MissMsg), 64, socket);
        a->punt = make_mpsc_ring("ho_p" + n, sizeof(PuntMsg), 1024, socket);  // as lm-router
        a->cache = std::make_unique<LocatorCache>("ho_c" + n, kCacheEntries, socket);
        std::vector<PortRuntime> ports{{0, MacAddr{{0x02, 0, 0, 0x0a, uint8_t(a->index >> 8), uint8_t(a->index)}}},
                                       {1, MacAddr{{0x02, 0, 0, 0x0c, uint8_t(a->index >> 8), uint8_t(a->index)}}}};
        std::vector<WorkerHandle> handles{{a->updates.get(), net.tx.get(), &wc}};
        a->cp = std::make_unique<ControlPlane>(a->cfg, ports, handles, pool.get(), a->miss.get(), a->punt.get(), a->dir.get());
        a->cp->start();
        a->drain();
    }
    net.deliver();
    const double rss1 = rss_mb();
    std::printf("routers: %u control planes + fake workers in %.2f s; process RSS %.0f MB (%.0f KB per AR with its"
                " DHT node; control planes + rings + caches %.0f KB per AR), %u threads\n",
                N, secs_since(t), rss1, rss1 * 1024 / N, (rss1 - rss0) * 1024 / N, thread_count());
    std::fflush(stdout);

    const EidKey key = EidKey::make(kTenant, parse_ip("2001:db8:ff::1"));
    StaticAttachment mo;
    mo.tenant = kTenant;
    mo.mo_id = kMo;
    mo.eids = {key.ip()};
    mo.mac = MacAddr{{0x02, 0xdb, 0, 0, 0, 1}};
    mo.port = "access0";

    std::vector<uint8_t> done(N, 0);
    MoveStats st;
    // ControlPlane::idle_wait for all the ARs at once: the back-off ends early when any AR's
    // directory has an event, as each AR's own control loop would.
    std::vector<pollfd> dir_fds;
    for (const auto& a : ars) dir_fds.push_back(pollfd{a->dir->event_fd(), POLLIN, 0});
    auto sleep_round = [&] {
        if (o.poll_us) ControlPlane::wait_readable(dir_fds, std::chrono::microseconds(o.poll_us));
    };
    // One control round: every AR polls its control plane and applies its updates; then the
    // packets they sent are delivered. check(j) after AR j's round; returns how long it took.
    auto round = [&](auto&& check) {
        const auto r0 = Clock::now();
        for (unsigned j = 0; j < N; ++j) {
            Ar& a = *ars[j];
            a.cp->poll();
            a.drain();
            net.deliver();
            check(j);
        }
        return std::chrono::duration<double, std::micro>(Clock::now() - r0).count();
    };
    auto poll_for = [&](double ms) {
        const auto t0 = Clock::now();
        while (ms_between(t0, Clock::now()) < ms) {
            round([](unsigned) {});
            sleep_round();
        }
    };
    // The MO's record as AR k published it last (epoch), from its directory.
    auto owned_epoch = [&](unsigned k) -> Epoch {
        for (auto& r : ars[k]->dir->owned())
            if (r.mo == kMo && r.tenant == kTenant) return r.epoch;
        return 0;
    };
    auto maps_to = [&](unsigned j, unsigned k, Epoch e) {
        const MappingValue* v = ars[j]->cache->lookup(key);
        return v && !(v->flags & MappingValue::kLocal) && v->mo_id == kMo && v->locator == ars[k]->loc && v->epoch >= e;
    };

    // ---- the MO on AR 0; every other AR resolves and watches it -----------------------------
    t = Clock::now();
    if (auto err = ars[0]->cp->attach(mo); !err.empty()) fail("attach on AR 0: " + err);
    {
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        while (ars[0]->dir->counters().published + ars[0]->dir->counters().publish_failed == 0 && Clock::now() < deadline)
            poll_for(1);
        const auto dc = ars[0]->dir->counters();
        std::printf("mo: attached on AR 0, record stored in %.1f ms (%s)\n", secs_since(t) * 1e3,
                    dc.published ? "every put acked" : dc.publish_failed ? "a put incomplete" : "no answer in 30 s");
    }
    t = Clock::now();
    {
        const Epoch e0 = owned_epoch(0);
        auto ask = [&](unsigned j) {
            MissMsg mm{};
            mm.key = key;
            mm.worker = 0;
            if (rte_ring_enqueue_elem(ars[j]->miss.get(), &mm, sizeof mm) != 0) fail("miss ring full");
        };
        std::vector<uint64_t> failed_seen(N, 0);
        for (unsigned j = 1; j < N; ++j) ask(j);
        unsigned have = 0, retried = 0;
        const auto deadline = Clock::now() + std::chrono::seconds(60);
        while (have < N - 1 && Clock::now() < deadline) {
            round([&](unsigned j) {
                if (j == 0 || done[j]) return;
                if (maps_to(j, 0, e0)) {
                    done[j] = 1, ++have;
                } else if (ars[j]->miss_failed > failed_seen[j]) {  // not found yet: ask again
                    failed_seen[j] = ars[j]->miss_failed;
                    ++retried;
                    ask(j);
                }
            });
            sleep_round();
        }
        if (have < N - 1) fail("set-up: only " + std::to_string(have) + " of " + std::to_string(N - 1) + " ARs resolved the MO in 60 s");
        size_t watching = 0;
        for (unsigned j = 1; j < N; ++j) watching += ars[j]->cp->watches();
        std::printf("resolve: %u ARs resolved the MO in %.2f s (%u misses asked again), %zu of them watch it\n", N - 1,
                    secs_since(t), retried, watching);
    }
    // Let the listens settle on the storage nodes, and see what the DHT costs at rest.
    {
        poll_for(1000);
        const double c0 = process_cpu_s();
        const auto w0 = Clock::now();
        std::vector<double> rounds;
        while (secs_since(w0) < 1.0) {
            rounds.push_back(round([](unsigned) {}));
            sleep_round();
        }
        std::printf("idle: the process uses %.2f CPUs with nothing moving; a control round over %u ARs takes %s\n",
                    (process_cpu_s() - c0) / secs_since(w0), N, dist(rounds, "us").c_str());
        std::fflush(stdout);
    }

    // ---- the moves ------------------------------------------------------------------------------
    Rng rng{o.seed ? o.seed : 1};
    unsigned cur = 0;
    std::vector<uint8_t> published_before(N, 0);
    published_before[0] = 1;
    const double cpu0 = process_cpu_s();
    double move_wall_s = 0;
    const auto t_moves = Clock::now();
    uint64_t notify_accepted0 = 0;
    for (auto& a : ars) notify_accepted0 += a->cp->counters().move_notify_accepted.get();
    for (unsigned mv = 0; mv < o.moves; ++mv) {
        unsigned k;
        if (o.fresh_only) {  // an AR that never published the MO, while there is one
            std::vector<unsigned> fresh;
            for (unsigned j = 0; j < N; ++j)
                if (!published_before[j]) fresh.push_back(j);
            if (fresh.empty()) {
                std::printf("  --fresh-only: every AR has published the MO once: stopping after %u moves\n", mv);
                break;
            }
            k = fresh[rng.below(uint32_t(fresh.size()))];
        } else {
            k = rng.below(N - 1);
            if (k >= cur) ++k;  // never the current AR
        }
        const bool repeat = published_before[k];
        published_before[k] = 1;
        (repeat ? st.to_repeat : st.to_fresh)++;
        if (o.migrate_begin) {
            if (auto err = ars[cur]->cp->migrate_begin(kTenant, kMo); !err.empty()) fail("migrate-begin on AR " + std::to_string(cur) + ": " + err);
            poll_for(o.begin_ms);
        }
        const uint64_t moved0 = ars[cur]->cp->counters().moved_away.get();
        const uint64_t pub0 = ars[k]->dir->counters().published + ars[k]->dir->counters().publish_failed;
        std::fill(done.begin(), done.end(), 0);
        done[k] = 1;
        unsigned left = N - 1;
        double first = -1, last = -1, old_ms = -1, pub_ms = -1;
        bool counted_1s = false;
        const double cpu_m0 = process_cpu_s();
        const auto t0 = Clock::now();
        if (auto err = ars[k]->cp->attach(mo); !err.empty()) {
            ++st.attach_errors;
            std::printf("  move %u: attach on AR %u refused: %s\n", mv, k, err.c_str());
            continue;
        }
        const Epoch ek = owned_epoch(k);
        while (left > 0) {
            st.round_us.push_back(round([&](unsigned j) {
                if (done[j] || !maps_to(j, k, ek)) return;
                const double ms = ms_between(t0, Clock::now());
                done[j] = 1;
                --left;
                st.per_ar_ms.push_back(ms);
                if (first < 0) first = ms;
                last = ms;
                if (j == cur) old_ms = ms;
            }));
            if (pub_ms < 0 && ars[k]->dir->counters().published + ars[k]->dir->counters().publish_failed > pub0)
                pub_ms = ms_between(t0, Clock::now());
            if (!left) break;
            const double el = ms_between(t0, Clock::now());
            if (!counted_1s && el >= 1000) {
                counted_1s = true;
                st.stale_after_1s += left;
            }
            if (el >= o.cap_ms) break;
            sleep_round();
        }
        move_wall_s += secs_since(t0);
        st.cpu_ms.push_back((process_cpu_s() - cpu_m0) * 1e3);
        if (left) {
            ++st.capped_moves;
            (repeat ? st.to_repeat_capped : st.to_fresh_capped)++;
            st.never += left;
            last = o.cap_ms;
            std::string who;
            for (unsigned j = 0; j < N && who.size() < 80; ++j)
                if (!done[j]) who += (who.empty() ? "" : ",") + std::to_string(j) + (j == cur ? "(old)" : "");
            std::printf("  move %u: AR %u -> %u (%s): %u ARs still stale after %u ms: %s\n", mv, cur, k,
                        repeat ? "it published the MO before" : "its first record of the MO", left, o.cap_ms, who.c_str());
        }
        st.last_ms.push_back(last);
        if (first >= 0) st.first_ms.push_back(first);
        if (old_ms >= 0) st.old_ar_ms.push_back(old_ms);
        if (pub_ms >= 0) st.published_ms.push_back(pub_ms);
        const bool learned = ars[cur]->cp->counters().moved_away.get() > moved0;
        st.old_learned += learned;
        st.old_forwarding += learned && ars[cur]->mo_attached && ars[cur]->mo_state == AttachState::Forward;
        if ((mv + 1) % 20 == 0 || mv + 1 == o.moves) {
            std::vector<double> v = st.last_ms;
            std::sort(v.begin(), v.end());
            std::printf("  moves: %u/%u, p50 %.2f ms, p99 %.2f ms, max %.2f ms so far; this one %.2f ms (first AR %.2f ms,"
                        " %.2f CPU-ms)\n",
                        mv + 1, o.moves, percentile(v, 50), percentile(v, 99), v.back(), last, first,
                        (process_cpu_s() - cpu_m0) * 1e3);
            std::fflush(stdout);
        }
        cur = k;
        poll_for(o.gap_ms);
    }
    const double moves_s = secs_since(t_moves);
    const double cpus_moving = (process_cpu_s() - cpu0) / moves_s;

    // ---- report ---------------------------------------------------------------------------------
    std::vector<double> last_sorted = st.last_ms;
    std::sort(last_sorted.begin(), last_sorted.end());
    std::printf("handover (attach -> every other AR's worker cache maps the EID to the new AR), %zu moves:\n",
                st.last_ms.size());
    std::printf("  last AR updated:  %s\n", dist(st.last_ms).c_str());
    std::printf("  first AR updated: %s\n", dist(st.first_ms).c_str());
    std::printf("  every AR (per AR per move): %s\n", dist(st.per_ar_ms).c_str());
    std::printf("  old AR's cache:   %s\n", dist(st.old_ar_ms).c_str());
    std::printf("  new AR's puts acked (both keys): %s\n", dist(st.published_ms).c_str());
    std::printf("  control round over %u ARs (poll + drain, no sleep): %s; sleep between rounds %u us\n", N,
                dist(st.round_us, "us").c_str(), o.poll_us);
    std::printf("  stale 1 s after the attach: %" PRIu64 " (AR x move); still stale at %u ms: %" PRIu64 " in %u moves;"
                " attach refused: %u\n",
                st.stale_after_1s, o.cap_ms, st.never, st.capped_moves, st.attach_errors);
    uint64_t notify_accepted = 0;
    for (auto& a : ars) notify_accepted += a->cp->counters().move_notify_accepted.get();
    std::printf("  moves to an AR that had published the MO before: %u (%u gave up); to a new one: %u (%u gave up)\n",
                st.to_repeat, st.to_repeat_capped, st.to_fresh, st.to_fresh_capped);
    std::printf("  the old AR learned the move (moved_away) in %u of %zu moves, its worker forwarding in %u;"
                " move notifications accepted: %" PRIu64 " (LM control packets delivered %" PRIu64 ", dropped %" PRIu64 ")\n",
                st.old_learned, st.last_ms.size(), st.old_forwarding, notify_accepted - notify_accepted0, net.lm_delivered,
                net.lm_dropped);
    std::printf("  CPU per move (every DHT node, the control loop): %s = %.2f CPU-ms per AR\n", dist(st.cpu_ms).c_str(),
                mean_of(st.cpu_ms) / N);
    std::printf("  load: the process used %.2f CPUs during the moves (%.1f s, %.1f s of it inside a move), load average %s\n",
                cpus_moving, moves_s, move_wall_s, loadavg().c_str());
    {
        uint64_t wu = 0, stale = 0, found = 0, resolves = 0, moved = 0, upfail = 0;
        dir::DirectoryCounters d{};
        for (auto& a : ars) {
            const auto& c = a->cp->counters();
            wu += c.dht_watch_updates.get();
            stale += c.dht_stale_ignored.get();
            found += c.dht_found.get();
            resolves += c.dht_resolves.get();
            moved += c.moved_away.get();
            upfail += a->upsert_failed;
            const auto x = a->dir->counters();
            d.published += x.published;
            d.publish_failed += x.publish_failed;
            d.watch_updates += x.watch_updates;
            d.accepted += x.accepted;
            d.rejected_stale += x.rejected_stale;
            d.store_edit_refused += x.store_edit_refused;
            d.resolves += x.resolves;
        }
        std::printf("control (all ARs): resolves %" PRIu64 " (found %" PRIu64 "), watch_updates %" PRIu64
                    ", stale_ignored %" PRIu64 ", moved_away %" PRIu64 "; fake workers: cache full %" PRIu64 "\n",
                    resolves, found, wu, stale, moved, upfail);
        std::printf("directories (all ARs): published %" PRIu64 " (incomplete %" PRIu64 "), watch_updates %" PRIu64
                    ", records accepted %" PRIu64 ", rejected_stale %" PRIu64 ", store_edit_refused %" PRIu64 "\n",
                    d.published, d.publish_failed, d.watch_updates, d.accepted, d.rejected_stale, d.store_edit_refused);
    }
    const double p99 = percentile(last_sorted, 99);
    std::printf("target: p99 %.2f ms (<= 10 %s), stale_after_1s %" PRIu64 " (= 0 %s); total run %.1f s\n", p99,
                p99 <= 10 ? "met" : "MISSED", st.stale_after_1s, st.stale_after_1s == 0 ? "met" : "MISSED",
                secs_since(t_start));
    std::fflush(stdout);
    if (!o.csv.empty()) {  // before the teardown, which a sweep's timeout may cut short
        std::vector<double> first = st.first_ms, cpu = st.cpu_ms;
        std::sort(first.begin(), first.end());
        std::sort(cpu.begin(), cpu.end());
        std::map<std::string, std::string> v = {
            {"sweep", o.tag.empty() ? "point" : o.tag},
            {"ars", std::to_string(N)},
            {"moves_asked", std::to_string(o.moves)},
            {"moves", std::to_string(st.last_ms.size())},
            {"p50_ms", fmt_num(percentile(last_sorted, 50), 2)},
            {"p90_ms", fmt_num(percentile(last_sorted, 90), 2)},
            {"p99_ms", fmt_num(p99, 2)},
            {"max_ms", fmt_num(last_sorted.empty() ? 0 : last_sorted.back(), 2)},
            {"stale_after_1s", std::to_string(st.stale_after_1s)},
            {"capped_moves", std::to_string(st.capped_moves)},
            {"first_p50_ms", fmt_num(percentile(first, 50), 2)},
            {"cpu_ms_per_move", fmt_num(percentile(cpu, 50), 1)},
            {"process_cpus", fmt_num(cpus_moving, 2)},
            {"rss_mb", fmt_num(rss_mb(), 0)},
            {"total_s", fmt_num(secs_since(t_start), 1)},
        };
        ri.add_to(v);
        if (!csv_append(o.csv, kHandoverCsvHeader, v)) fail("cannot append to " + o.csv);
    }

    // ---- tear down: control planes, then every OpenDHT node (in parallel: a join each) ---------
    t = Clock::now();
    for (auto& a : ars) {
        a->cp->drain();
        a->cp.reset();
    }
    net.deliver();
    {
        std::vector<std::thread> stoppers;
        for (unsigned s = 0; s < 8; ++s)
            stoppers.emplace_back([&, s] {
                for (size_t i = s; i < ars.size(); i += 8) ars[i]->dir->stop();
            });
        for (auto& th : stoppers) th.join();
    }
    ars.clear();
    net.tx.reset();
    pool.reset();
    std::printf("teardown: %.2f s\n", secs_since(t));
    std::printf("{\"bench\":\"handover\",\"ars\":%u,\"moves\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
                "\"stale_after_1s\":%" PRIu64 "}\n",
                N, st.last_ms.size(), percentile(last_sorted, 50), p99, last_sorted.empty() ? 0 : last_sorted.back(),
                st.stale_after_1s);
    std::fflush(stdout);
    return 0;
}

[[noreturn]] void handover_usage() {
    std::fprintf(stderr,
                 "usage: lm-bench handover [--ars N] [--moves N] [--seed N] [--poll-us N] [--begin-ms N] [--gap-ms N]\n"
                 "                         [--cap-ms N] [--no-migrate-begin] [--fresh-only] [--dht-cpus all|control] [--lcore N]\n"
                 "                         [--key-type ed25519|rsa2048|rsa3072|rsa4096] [--csv FILE] [--tag NAME] [--eal EAL-ARGS...]\n"
                 "attach -> every AR's worker cache updated, N routers' control planes on an in-process LM DHT\n"
                 "(defaults: 100 ARs, 200 moves, poll 200 us, migrate-begin 50 ms before each attach).\n");
    std::exit(2);
}

}  // namespace

int handover_main(int argc, char** argv) {
    HoOptions o;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto num = [&]() -> uint64_t {
            if (i + 1 >= argc) handover_usage();
            return std::strtoull(argv[++i], nullptr, 0);
        };
        if (a == "--ars") o.ars = unsigned(num());
        else if (a == "--moves") o.moves = unsigned(num());
        else if (a == "--seed") o.seed = num();
        else if (a == "--poll-us") o.poll_us = unsigned(num());
        else if (a == "--begin-ms") o.begin_ms = unsigned(num());
        else if (a == "--gap-ms") o.gap_ms = unsigned(num());
        else if (a == "--cap-ms") o.cap_ms = unsigned(std::max<uint64_t>(num(), 1000));
        else if (a == "--no-migrate-begin") o.migrate_begin = false;
        else if (a == "--fresh-only") o.fresh_only = true;
        else if (a == "--key-type" && i + 1 < argc) {
            auto t = dir::KeyType::parse(argv[++i]);
            if (!t) handover_usage();
            o.key_type = *t;
        }
        else if (a == "--lcore") o.lcore = unsigned(num());
        else if (a == "--csv" && i + 1 < argc) o.csv = argv[++i];
        else if (a == "--tag" && i + 1 < argc) o.tag = argv[++i];
        else if (a == "--dht-cpus" && i + 1 < argc) {
            const std::string v = argv[++i];
            if (v != "all" && v != "control") handover_usage();
            o.dht_all_cpus = v == "all";
        } else if (a == "--eal") {
            for (++i; i < argc; ++i) o.eal.emplace_back(argv[i]);
        } else handover_usage();
    }
    if (!o.moves) handover_usage();
    try {
        return handover_bench(o);
    } catch (const std::exception& e) {
        fail(std::string("handover: ") + e.what());
    }
}
