// lm-bench sweep: runs one bench mode over a parameter grid and collects one CSV row per point.
//
//   lm-bench sweep fastpath --csv FILE [--quick] [--only mos,burst,size,family,workers] [--mos LIST]
//                           [--timeout S] [--settle S] [--retries N] [-- ARGS...]
//   lm-bench sweep resolve  --csv FILE [--quick] [--nodes LIST] [--timeout S] [-- ARGS...]
//   lm-bench sweep handover --csv FILE [--quick] [--ars LIST] [--timeout S] [-- ARGS...]
//
// Every point is a child process (this executable: `lm-bench fastpath|resolve|handover ...
// --csv FILE.point --tag SWEEP`): EAL starts once per process, each point gets fresh memory (a
// 4M-MO cache, 256 DHT nodes), and a point that hangs is killed after --timeout seconds without
// losing the others. The child writes its row; the sweep appends it to FILE, or, for a point
// that wrote none (timeout, crash, no memory), a row with the parameters and the status. On a
// shared machine a fast-path point whose core was taken by other processes (fewer than 3 clean
// trials) is run again (--retries) and the cleanest attempt kept. ARGS after `--` go to every
// point. See docs/benchmarks.md, "Sweeps".
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <utility>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.hpp"
#include "dataplane/packet_path.hpp"  // kBurst: what the worker's rx_burst asks for

using namespace lm::bench;

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void sweep_usage() {
    std::fprintf(stderr,
                 "usage: lm-bench sweep fastpath --csv FILE [--quick] [--only mos,burst,size,family,workers] [--mos LIST]\n"
                 "                               [--timeout S] [--settle S] [--retries N] [-- ARGS...]\n"
                 "       lm-bench sweep resolve  --csv FILE [--quick] [--nodes LIST] [--timeout S] [-- ARGS...]\n"
                 "       lm-bench sweep handover --csv FILE [--quick] [--ars LIST] [--timeout S] [-- ARGS...]\n"
                 "One child process per point (lm-bench MODE ... --csv FILE --tag SWEEP), killed after --timeout s;\n"
                 "a point without a row gets one with its status. LIST: comma-separated numbers. ARGS go to every point.\n"
                 "fastpath: mos 1k..4M (encap, null); burst 1..kBurst (ring); size 64..1514, family 4/6 x 4/6,\n"
                 "          workers 1|2 (null), encap and decap. --quick: 15 trials per measurement (default 30)\n"
                 "          --settle S: wait up to S s for an idle CPU 0 before each point (quick 5, else 30);\n"
                 "          --retries N: run a point with < 3 clean trials again, keep the cleanest (quick 1, else 2).\n"
                 "resolve:  nodes 8,32,128,256; 10000 records, 1000 lookups (--quick: 2000, 500).\n"
                 "handover: ARs 10,100,300; 200 moves (--quick: 100).\n");
    std::exit(2);
}

std::vector<uint64_t> parse_list(const std::string& s) {
    std::vector<uint64_t> v;
    std::stringstream ss(s);
    for (std::string x; std::getline(ss, x, ',');)
        if (!x.empty()) v.push_back(std::strtoull(x.c_str(), nullptr, 0));
    if (v.empty()) sweep_usage();
    return v;
}

struct Point {
    std::vector<std::string> args;               // after "lm-bench"
    std::map<std::string, std::string> params;   // CSV columns for a row the sweep must write itself
    std::string label;
};

// The first data row of a CSV as column -> value (empty if there is none). Our rows never quote
// a comma except in the last columns' free text (cpu model, status), which are re-quoted as read.
std::map<std::string, std::string> csv_read_row(const std::string& path) {
    std::ifstream f(path);
    std::string header, row;
    if (!std::getline(f, header) || !std::getline(f, row)) return {};
    std::vector<std::string> vals;
    std::string cur;
    bool quoted = false;
    for (size_t i = 0; i < row.size(); ++i) {
        const char c = row[i];
        if (quoted) {
            if (c == '"' && i + 1 < row.size() && row[i + 1] == '"') cur += '"', ++i;
            else if (c == '"') quoted = false;
            else cur += c;
        } else if (c == '"') quoted = true;
        else if (c == ',') vals.push_back(cur), cur.clear();
        else cur += c;
    }
    vals.push_back(cur);
    const auto cols = csv_columns(header);
    std::map<std::string, std::string> m;
    for (size_t i = 0; i < cols.size() && i < vals.size(); ++i)
        if (!vals[i].empty()) m[cols[i]] = vals[i];
    return m;
}

// Runs this executable with `args`; "ok", "exit N", "signal N" or "timeout after S s".
std::string run_child(const std::vector<std::string>& args, unsigned timeout_s) {
    std::vector<std::string> a = args;
    a.insert(a.begin(), "lm-bench");
    std::vector<char*> argv;
    for (auto& x : a) argv.push_back(x.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) return "fork failed";
    if (pid == 0) {
        execv("/proc/self/exe", argv.data());
        std::perror("lm-bench sweep: execv");
        _exit(127);
    }
    const auto t0 = Clock::now();
    int st = 0;
    bool timed_out = false;
    for (;;) {
        const pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (r < 0) return "waitpid failed";
        const double el = std::chrono::duration<double>(Clock::now() - t0).count();
        // SIGTERM at the timeout (the child's default action ends it), SIGKILL 10 s later.
        if (!timed_out && el > timeout_s) {
            timed_out = true;
            std::printf("lm-bench sweep: point still running after %u s: SIGTERM to pid %d\n", timeout_s, int(pid));
            std::fflush(stdout);
            kill(pid, SIGTERM);
        } else if (timed_out && el > timeout_s + 10.0) {
            kill(pid, SIGKILL);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (timed_out) return "timeout after " + std::to_string(timeout_s) + " s";
    if (WIFEXITED(st)) return WEXITSTATUS(st) == 0 ? "ok" : "exit " + std::to_string(WEXITSTATUS(st));
    if (WIFSIGNALED(st)) return "signal " + std::to_string(WTERMSIG(st));
    return "unknown";
}

// Waits up to `max_s` for one second in which CPU `cpu` (the bench's main lcore; lcore N is CPU
// N as EAL's -l maps it) was at most 15 % busy: a point whose core is taken by another process
// has few clean trials. Returns that CPU's and the others' busy share (%) in the last second.
std::pair<double, double> settle(unsigned max_s, unsigned cpu) {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    CPU_SET(cpu, &mine);
    const auto t0 = Clock::now();
    for (;;) {
        const CpuTimes a = CpuTimes::read();
        std::this_thread::sleep_for(std::chrono::seconds(1));
        const CpuTimes b = CpuTimes::read();
        double own = 0;
        if (cpu < a.total.size() && cpu < b.total.size() && b.total[cpu] > a.total[cpu])
            own = 100.0 * double(b.busy[cpu] - a.busy[cpu]) / double(b.total[cpu] - a.total[cpu]);
        if (own <= 15 || std::chrono::duration<double>(Clock::now() - t0).count() >= max_s)
            return {own, CpuTimes::others_busy_pct(a, b, mine)};
    }
}

std::string str(uint64_t v) { return std::to_string(v); }

std::vector<Point> fastpath_grid(const std::vector<std::string>& only, const std::vector<uint64_t>& mos_list) {
    auto want = [&](const char* s) { return only.empty() || std::find(only.begin(), only.end(), s) != only.end(); };
    std::vector<Point> pts;
    const unsigned full = lm::kBurst;
    auto add = [&](const char* tag, const char* wl, const char* vdev, uint64_t mos, unsigned burst, unsigned size,
                   const char* inner, const char* outer, unsigned workers) {
        Point p;
        p.args = {"fastpath", "--tag", tag, "--workload", wl, "--vdev", vdev, "--mos", str(mos), "--size", str(size),
                  "--inner", inner, "--outer", outer, "--workers", str(workers)};
        if (burst != lm::kBurst) p.args.insert(p.args.end(), {"--burst", str(burst)});
        p.params = {{"sweep", tag},         {"workload", wl},   {"vdev", vdev},   {"mos", str(mos)},
                    {"burst", str(burst)},  {"frame", str(size)}, {"inner", inner}, {"outer", outer},
                    {"workers", str(workers)}};
        p.label = std::string(tag) + ": " + wl + " " + vdev + " mos " + str(mos) + " burst " + str(burst) + " size " +
                  str(size) + " inner " + inner + " outer " + outer + " workers " + str(workers);
        pts.push_back(std::move(p));
    };
    // Cache size: encap, uniform over N cached MOs (cache N + 10 %, at least 65536).
    if (want("mos"))
        for (uint64_t m : mos_list) add("mos", "encap", "null", m, full, 64, "mix", "mix", 1);
    // Burst: the packets the NIC holds per rx_burst (powers of 2 up to what the worker asks
    // for); net_null always fills the worker's burst, so net_ring.
    if (want("burst"))
        for (const char* wl : {"encap", "decap"})
            for (unsigned b = 1; b <= full; b *= 2) add("burst", wl, "ring", 10000, b, 64, "mix", "mix", 1);
    // Packet size (access frame without FCS; LM frames 52-72 bytes longer).
    if (want("size"))
        for (const char* wl : {"encap", "decap"})
            for (unsigned s : {64u, 128u, 256u, 512u, 1024u, 1514u}) add("size", wl, "null", 10000, full, s, "mix", "mix", 1);
    // Inner / outer family, one of each at a time.
    if (want("family"))
        for (const char* wl : {"encap", "decap"})
            for (const char* outer : {"4", "6"})
                for (const char* inner : {"4", "6"}) add("family", wl, "null", 10000, full, 64, inner, outer, 1);
    // 1 vs 2 workers (2 lcores).
    if (want("workers"))
        for (const char* wl : {"encap", "decap"})
            for (unsigned w : {1u, 2u}) add("workers", wl, "null", 10000, full, 64, "mix", "mix", w);
    return pts;
}

}  // namespace

int sweep_main(int argc, char** argv) {
    if (argc < 3) sweep_usage();
    const std::string mode = argv[2];
    if (mode != "fastpath" && mode != "resolve" && mode != "handover") sweep_usage();
    std::string csv;
    bool quick = false;
    unsigned timeout_s = 0, settle_s = 0, retries = 0;
    bool settle_set = false, retries_set = false;
    std::vector<std::string> only, pass;
    std::vector<uint64_t> list;
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) sweep_usage();
            return argv[++i];
        };
        if (a == "--csv") csv = next();
        else if (a == "--quick") quick = true;
        else if (a == "--timeout") timeout_s = unsigned(std::strtoul(next().c_str(), nullptr, 0));
        else if (a == "--settle") settle_s = unsigned(std::strtoul(next().c_str(), nullptr, 0)), settle_set = true;
        else if (a == "--retries" && mode == "fastpath") retries = unsigned(std::strtoul(next().c_str(), nullptr, 0)), retries_set = true;
        else if (a == "--only" && mode == "fastpath") {
            std::stringstream ss(next());
            for (std::string x; std::getline(ss, x, ',');) {
                if (x != "mos" && x != "burst" && x != "size" && x != "family" && x != "workers") sweep_usage();
                only.push_back(x);
            }
        } else if ((a == "--mos" && mode == "fastpath") || (a == "--nodes" && mode == "resolve") ||
                   (a == "--ars" && mode == "handover"))
            list = parse_list(next());
        else if (a == "--") {
            for (++i; i < argc; ++i) pass.emplace_back(argv[i]);
        } else sweep_usage();
    }
    if (csv.empty()) sweep_usage();

    std::vector<Point> pts;
    std::string header;
    if (mode == "fastpath") {
        header = kFastpathCsvHeader;
        if (!timeout_s) timeout_s = 300;
        if (!settle_set) settle_s = quick ? 5 : 30;
        if (!retries_set) retries = quick ? 1 : 2;
        pts = fastpath_grid(only, list.empty() ? std::vector<uint64_t>{1'000, 10'000, 100'000, 1'000'000, 4'000'000} : list);
        // --quick: half the trials (15 x 250 000 packets per measurement, after 500 000).
        for (auto& p : pts)
            if (quick) p.args.insert(p.args.end(), {"--trials", "15", "--warmup", "500000"});
    } else if (mode == "resolve") {
        header = kResolveCsvHeader;
        if (!timeout_s) timeout_s = quick ? 420 : 1800;
        for (uint64_t n : list.empty() ? std::vector<uint64_t>{8, 32, 128, 256} : list) {
            Point p;
            const std::string records = quick ? "2000" : "10000", lookups = quick ? "500" : "1000";
            // Sequential lookups only: the concurrent phase is not part of the figures.
            p.args = {"resolve", "--tag", "nodes", "--nodes", str(n), "--records", records, "--lookups", lookups,
                      "--concurrency", "0"};
            p.params = {{"sweep", "nodes"}, {"nodes", str(n)}, {"records", records}, {"lookups", lookups}};
            p.label = "resolve: " + str(n) + " nodes, " + records + " records, " + lookups + " lookups";
            pts.push_back(std::move(p));
        }
    } else {
        header = kHandoverCsvHeader;
        if (!timeout_s) timeout_s = quick ? 420 : 1800;
        for (uint64_t n : list.empty() ? std::vector<uint64_t>{10, 100, 300} : list) {
            Point p;
            // --quick: 100 moves (the p99 of fewer than 100 is their maximum).
            const std::string moves = quick ? "100" : "200";
            p.args = {"handover", "--tag", "ars", "--ars", str(n), "--moves", moves};
            p.params = {{"sweep", "ars"}, {"ars", str(n)}, {"moves_asked", moves}};
            p.label = "handover: " + str(n) + " ARs, " + moves + " moves";
            pts.push_back(std::move(p));
        }
    }

    std::printf("lm-bench sweep %s: %zu points%s, timeout %u s per point, rows to %s; cpu: %s, %ld online, load average %s\n",
                mode.c_str(), pts.size(), quick ? " (quick)" : "", timeout_s, csv.c_str(), cpu_model().c_str(),
                sysconf(_SC_NPROCESSORS_ONLN), loadavg().c_str());
    std::fflush(stdout);
    const auto t0 = Clock::now();
    unsigned ok = 0, bad = 0;
    for (size_t i = 0; i < pts.size(); ++i) {
        Point& p = pts[i];
        // The point writes its row to a file of its own: the sweep keeps the best attempt.
        const std::string tmp = csv + ".point";
        p.args.insert(p.args.end(), {"--csv", tmp});
        p.args.insert(p.args.end(), pass.begin(), pass.end());
        const RunInfo ri = RunInfo::now();
        std::map<std::string, std::string> best;
        std::string status;
        unsigned attempt = 0;
        for (; attempt <= retries; ++attempt) {
            if (settle_s) {
                const auto [own, others] = settle(settle_s, 0);
                std::printf("lm-bench sweep: CPU 0 %.0f %% busy, the others %.0f %%, in the last second before the point%s\n", own,
                            others, own > 15 ? " (CPU 0 did not settle)" : "");
            }
            std::printf("\n==== lm-bench sweep %s: point %zu/%zu%s: %s (load average %s)\n", mode.c_str(), i + 1, pts.size(),
                        attempt ? (", attempt " + std::to_string(attempt + 1)).c_str() : "", p.label.c_str(), loadavg().c_str());
            std::printf("==== lm-bench");
            for (auto& a : p.args) std::printf(" %s", a.c_str());
            std::printf("\n");
            std::remove(tmp.c_str());
            const auto tp = Clock::now();
            status = run_child(p.args, timeout_s);
            const double took = std::chrono::duration<double>(Clock::now() - tp).count();
            const auto row = csv_read_row(tmp);
            std::remove(tmp.c_str());
            std::printf("==== point %zu/%zu: %s in %.1f s%s\n", i + 1, pts.size(), status.c_str(), took,
                        row.empty() ? ", no row" : ", row written");
            std::fflush(stdout);
            if (row.empty()) break;  // a point that fails fails again (no memory, a crash): no retry
            // Fast path: most clean trials wins (ties: fewer cycles, i.e. less interference).
            auto clean = [](const std::map<std::string, std::string>& r) {
                auto it = r.find("clean_trials");
                return it == r.end() ? 0L : std::strtol(it->second.c_str(), nullptr, 10);
            };
            auto cycles = [](const std::map<std::string, std::string>& r) {
                auto it = r.find("path_cycles");
                return it == r.end() ? 0.0 : std::strtod(it->second.c_str(), nullptr);
            };
            if (best.empty() || clean(row) > clean(best) || (clean(row) == clean(best) && cycles(row) < cycles(best))) best = row;
            const auto st = row.find("status");
            if (mode != "fastpath" || clean(best) >= 3 || st == row.end() || st->second != "ok") break;
            if (attempt < retries) std::printf("lm-bench sweep: %ld clean trials (< 3): running the point again\n", clean(best));
        }
        if (!best.empty()) {
            if (mode == "fastpath") best["attempts"] = std::to_string(std::min(attempt + 1, retries + 1));
            csv_append(csv, header, best);
            (best["status"] == "ok" ? ok : bad)++;
        } else {
            ri.add_to(p.params, status);
            csv_append(csv, header, p.params);
            ++bad;
        }
    }
    std::printf("lm-bench sweep %s: %u points with figures, %u without, %.1f s\n", mode.c_str(), ok, bad,
                std::chrono::duration<double>(Clock::now() - t0).count());
    return bad ? 1 : 0;
}
