// Small pieces the lm-bench subcommands share (lm_bench.cpp, handover_bench.cpp, sweep.cpp): EAL
// start-up for the control-plane benches, thread affinity, the machine's description, a seeded
// RNG, nearest-rank percentiles, the loopback DHT node configuration, and the sweeps' CSV rows.
#pragma once

#include <pthread.h>
#include <rte_eal.h>
#include <sched.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
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

// ---- CSV rows of the sweeps (lm-bench ... --csv FILE, lm-bench sweep) -------------------------
// Every mode appends one row per result to FILE, writing the header first when FILE is new or
// empty. The columns are fixed per mode (below); the last ones describe the machine and its
// load, which on a shared machine matter as much as the figures. `lm-bench sweep` writes a row
// with only the parameters and a status (timeout, exit N) for a point that produced none.

inline constexpr const char* kMachineColumns = "status,timestamp,cpu,cpus,load_start,load_end";
inline const std::string kFastpathCsvHeader =
    std::string("sweep,workload,vdev,mos,cache_entries,burst,frame,inner,outer,workers,baseline_cycles,path_cycles,"
                "delta_cycles,ratio,path_mpps,baseline_mpps,clean_trials,trials,attempts,others_busy_pct,hugepages,tsc_mhz,") +
    kMachineColumns;
inline const std::string kResolveCsvHeader =
    std::string("sweep,nodes,records,lookups,publishers,answered,failed,p50_us,p90_us,p99_us,max_us,mean_us,join_s,"
                "publish_s,lookup_cpus,total_s,") +
    kMachineColumns;
inline const std::string kHandoverCsvHeader =
    std::string("sweep,ars,moves_asked,moves,p50_ms,p90_ms,p99_ms,max_ms,stale_after_1s,capped_moves,first_p50_ms,"
                "cpu_ms_per_move,process_cpus,rss_mb,total_s,") +
    kMachineColumns;

inline double load1() {
    std::ifstream f("/proc/loadavg");
    double a = 0;
    f >> a;
    return a;
}

inline std::string csv_quote(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
    return q + "\"";
}

// The header's columns, in order.
inline std::vector<std::string> csv_columns(const std::string& header) {
    std::vector<std::string> v;
    std::stringstream ss(header);
    for (std::string c; std::getline(ss, c, ',');) v.push_back(c);
    return v;
}

// One row from column -> value (columns missing from the map stay empty); false (and a message
// on stderr) if the file cannot be written or a value names no column (a programming error).
inline bool csv_append(const std::string& path, const std::string& header, const std::map<std::string, std::string>& values) {
    const auto cols = csv_columns(header);
    for (const auto& [k, v] : values)
        if (std::find(cols.begin(), cols.end(), k) == cols.end()) {
            std::fprintf(stderr, "lm-bench: CSV column '%s' is not in the header\n", k.c_str());
            return false;
        }
    std::string row;
    for (size_t i = 0; i < cols.size(); ++i) {
        if (i) row += ',';
        if (auto it = values.find(cols[i]); it != values.end()) row += csv_quote(it->second);
    }
    std::error_code ec;
    const bool fresh = !std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0;
    std::ofstream f(path, std::ios::app);
    if (f && fresh) f << header << '\n';
    if (f) f << row << '\n';
    if (!f) std::fprintf(stderr, "lm-bench: cannot write %s\n", path.c_str());
    return bool(f);
}

inline std::string fmt_num(double v, int decimals) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return b;
}

// The machine columns: taken at the start of a run (load_start) and when the row is written.
struct RunInfo {
    std::string timestamp;  // UTC, ISO 8601
    double load_start = 0;

    static RunInfo now() {
        RunInfo r;
        const std::time_t t = std::time(nullptr);
        char b[32];
        std::tm tm{};
        gmtime_r(&t, &tm);
        std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
        r.timestamp = b;
        r.load_start = load1();
        return r;
    }
    void add_to(std::map<std::string, std::string>& v, const std::string& status = "ok") const {
        v["status"] = status;
        v["timestamp"] = timestamp;
        v["cpu"] = cpu_model();
        v["cpus"] = std::to_string(sysconf(_SC_NPROCESSORS_ONLN));
        v["load_start"] = fmt_num(load_start, 2);
        v["load_end"] = fmt_num(load1(), 2);
    }
};

// Busy jiffies and all jiffies of each CPU, from /proc/stat (index = CPU number).
struct CpuTimes {
    std::vector<uint64_t> busy, total;
    static CpuTimes read() {
        CpuTimes c;
        std::ifstream f("/proc/stat");
        for (std::string line; std::getline(f, line);) {
            if (line.rfind("cpu", 0) != 0 || line.size() < 4 || !std::isdigit(static_cast<unsigned char>(line[3]))) continue;
            std::istringstream is(line.substr(3));
            size_t n = 0;
            uint64_t v[8] = {};
            is >> n;
            for (auto& x : v) is >> x;  // user nice system idle iowait irq softirq steal
            if (c.busy.size() <= n) c.busy.resize(n + 1), c.total.resize(n + 1);
            uint64_t tot = 0;
            for (auto x : v) tot += x;
            c.total[n] = tot;
            c.busy[n] = tot - v[3] - v[4];
        }
        return c;
    }
    // Busy share (%) of the CPUs not in `mine` between `a` and `b`; negative if there are none.
    static double others_busy_pct(const CpuTimes& a, const CpuTimes& b, const cpu_set_t& mine) {
        uint64_t busy = 0, total = 0;
        for (size_t i = 0; i < a.total.size() && i < b.total.size(); ++i) {
            if (CPU_ISSET(i, &mine)) continue;
            busy += b.busy[i] - a.busy[i];
            total += b.total[i] - a.total[i];
        }
        return total ? 100.0 * double(busy) / double(total) : -1;
    }
};

}  // namespace lm::bench
