// Small pieces the lm-bench subcommands share (lm_bench.cpp, handover_bench.cpp): EAL start-up
// for the control-plane benches, thread affinity, the machine's description, a seeded RNG,
// nearest-rank percentiles, and the loopback DHT node configuration.
#pragma once

#include <pthread.h>
#include <rte_eal.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "dht/directory.hpp"

namespace lm::bench {

inline constexpr uint64_t kSeed = 0x4C4D2D62656E6368ull;  // "LM-bench": every run draws the same packets

// xorshift64*: fast, seeded, the same sequence on every machine.
struct Rng {
    uint64_t s = kSeed;
    uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1Dull;
    }
    uint32_t below(uint32_t n) { return uint32_t((uint64_t(uint32_t(next() >> 32)) * n) >> 32); }
};

// Nearest-rank percentile of sorted values.
inline double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    size_t r = size_t(std::ceil(p / 100.0 * double(sorted.size())));
    r = std::clamp<size_t>(r, 1, sorted.size());
    return sorted[r - 1];
}

inline cpu_set_t thread_affinity() {
    cpu_set_t s;
    CPU_ZERO(&s);
    pthread_getaffinity_np(pthread_self(), sizeof s, &s);
    return s;
}
inline void set_thread_affinity(const cpu_set_t& s) { pthread_setaffinity_np(pthread_self(), sizeof s, &s); }

inline std::string loadavg() {
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    f >> a >> b >> c;
    return a + " " + b + " " + c;
}

inline std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("model name", 0) == 0) {
            auto c = line.find(':');
            return c == std::string::npos ? line : line.substr(c + 2);
        }
    return "unknown";
}

// EAL for the control-plane benches: one lcore, no hugepages, no PCI, no telemetry; extra
// arguments appended. Prints the command line under `what`; false if EAL did not start.
inline bool start_eal(const char* what, unsigned lcore, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"lm-bench", "-l", std::to_string(lcore), "--no-pci", "--no-huge", "--no-shconf",
                                     "-m", "512", "--log-level=lib.eal:error", "--no-telemetry"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::printf("lm-bench %s: EAL", what);
    for (size_t i = 1; i < args.size(); ++i) std::printf(" %s", args[i].c_str());
    std::printf("\n");
    return rte_eal_init(int(argv.size()), argv.data()) >= 0;
}
struct EalCleanup {
    ~EalCleanup() { rte_eal_cleanup(); }
};

// A DHT node on 127.0.0.1 (any port), joining through bootstrap_port (0: first node).
inline dir::DhtConfig loopback_dht_config(uint16_t bootstrap_port, uint32_t network_id) {
    dir::DhtConfig c;
    c.port = 0;
    c.bind4 = "127.0.0.1";
    c.ipv6 = false;
    if (bootstrap_port) c.bootstrap = {"127.0.0.1:" + std::to_string(bootstrap_port)};
    // Every node shares 127.0.0.1: OpenDHT's per-IP rate limit would treat them all as one peer.
    c.max_peer_req_per_sec = -1;
    c.max_req_per_sec = -1;
    c.network_id = network_id;
    // No re-signing during a run: records live kRecordTtl (600 s) on the storage nodes.
    c.refresh_interval = std::chrono::seconds(590);
    return c;
}

}  // namespace lm::bench
