// lm-router: one process per access router. EAL arguments first, then `--` and ours.
// The main lcore runs the control plane; every other lcore EAL gives us runs one worker.
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include <boost/program_options.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

#include "common/config.hpp"
#include "common/log.hpp"
#include "controlplane/control_plane.hpp"
#include "controlplane/telemetry.hpp"
#include "dataplane/dp_config.hpp"
#include "dataplane/dpdk_env.hpp"
#include "dataplane/ports.hpp"
#include "dataplane/worker.hpp"
#include "dht/directory.hpp"

namespace po = boost::program_options;

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

struct AppOptions {
    std::string config;
    std::optional<lm::LogLevel> log_level;
    bool check_config = false;
};

// Returns 0 to continue, or an exit code (help/version: 0 via `exit_now`).
int parse_app_options(int argc, char** argv, AppOptions& o, bool& exit_now) {
    po::options_description desc("lm-router options (after EAL arguments and --)");
    std::string level;
    desc.add_options()("help,h", "show this help")("version,V", "print the version")(
        "config,c", po::value<std::string>(&o.config), "YAML configuration file (required)")(
        "log-level", po::value<std::string>(&level), "debug|info|warning|error (overrides router.log_level)")(
        "check-config", po::bool_switch(&o.check_config), "validate the configuration file and exit (0: valid, 2: not)");
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "lm-router: " << e.what() << "\n" << desc;
        return 2;
    }
    if (vm.count("help")) {
        std::cout << "usage: lm-router [EAL options] -- --config FILE [--log-level L]\n"
                     "       lm-router --check-config --config FILE\n\n"
                  << desc;
        exit_now = true;
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "lm-router " << LM_VERSION << "\n";
        exit_now = true;
        return 0;
    }
    if (o.config.empty()) {
        std::cerr << "lm-router: --config FILE is required (see --help)\n";
        return 2;
    }
    if (!level.empty()) {
        o.log_level = lm::log::parse_level(level);
        if (!o.log_level) {
            std::cerr << "lm-router: --log-level: expected debug, info, warning or error, got '" << level << "'\n";
            return 2;
        }
    }
    return 0;
}

int worker_main(void* arg) {
    static_cast<lm::Worker*>(arg)->run(g_stop);
    return 0;
}

void print_final_counters(const std::vector<std::unique_ptr<lm::Worker>>& workers, const lm::Config& cfg) {
    // One JSON line on stderr at exit: what the router did, for operators and tests.
    std::string s = "{";
    auto add = [&](std::string_view k, uint64_t v) { s += fmt::format("{}\"{}\":{}", s.size() > 1 ? "," : "", k, v); };
#define X(e, n) add(n, [&] { uint64_t t = 0; for (auto& w : workers) t += w->counters().e.get(); return t; }());
    LM_PATH_COUNTERS(X)
#undef X
    for (size_t i = 0; i < size_t(lm::Drop::Count); ++i) {
        uint64_t t = 0;
        for (auto& w : workers) t += w->counters().drops[i].get();
        add(fmt::format("drop_{}", lm::kDropNames[i]), t);
    }
    for (size_t p = 0; p < cfg.ports.size(); ++p) {
        uint64_t rx = 0, tx = 0;
        for (auto& w : workers) rx += w->counters().ports[p].rx_packets.get(), tx += w->counters().ports[p].tx_packets.get();
        add(fmt::format("{}_rx", cfg.ports[p].name), rx);
        add(fmt::format("{}_tx", cfg.ports[p].name), tx);
    }
    s += "}";
    lm::log::info("final counters: {}", s);
}

int run(int argc, char** argv) {
    // Split at "--": EAL gets what is before, we get what is after. Parse ours first so a bad
    // option or config fails before EAL touches the machine.
    int sep = argc;
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "--") { sep = i; break; }
    bool exit_now = false;
    AppOptions opt;
    std::vector<char*> app_argv{argv[0]};
    // Without "--": --help, --version and --check-config (which never start EAL) take the rest.
    if (sep == argc && argc > 1 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h" ||
                                    std::string_view(argv[1]) == "--version" || std::string_view(argv[1]) == "-V" ||
                                    std::string_view(argv[1]) == "--check-config"))
        for (int i = 1; i < argc; ++i) app_argv.push_back(argv[i]);
    for (int i = sep + 1; i < argc; ++i) app_argv.push_back(argv[i]);
    if (int rc = parse_app_options(int(app_argv.size()), app_argv.data(), opt, exit_now); rc || exit_now) return rc;

    lm::Config cfg;
    try {
        cfg = lm::load_config_file(opt.config);
    } catch (const lm::ConfigError& e) {
        std::cerr << "lm-router: config error: " << e.what() << "\n";
        return 2;
    }
    lm::log::set_level(opt.log_level.value_or(cfg.log_level));
    if (cfg.ports.size() > lm::kMaxPorts) {
        std::cerr << "lm-router: at most " << lm::kMaxPorts << " ports are supported\n";
        return 2;
    }
    if (opt.check_config) {
        std::cout << fmt::format("lm-router: {}: configuration valid ({} ports, {} workers, {} static mappings, {} "
                                 "static attachments{})\n",
                                 opt.config, cfg.ports.size(), cfg.workers, cfg.static_mappings.size(),
                                 cfg.static_attachments.size(), cfg.dht ? ", dht" : "");
        return 0;
    }

    lm::Eal eal(sep, argv);
    std::vector<unsigned> lcores;
    unsigned lc;
    RTE_LCORE_FOREACH_WORKER(lc) lcores.push_back(lc);
    if (lcores.size() < cfg.workers)
        throw std::runtime_error(fmt::format("router.workers is {} but EAL gave {} worker lcore(s): pass e.g. -l 0-{}",
                                             cfg.workers, lcores.size(), cfg.workers));

    const int socket = int(rte_socket_id());
    const unsigned nb_ports = unsigned(cfg.ports.size());
    // rx rings + tx rings + staging + per-lcore caches + control packets, per worker and port.
    // Also the miss and hold buffers, the punt ring and the per-lcore mempool caches.
    const unsigned nb_mbufs = std::max(8191u, nb_ports * cfg.workers * (1024 + 1024 + 2 * 64) +
                                                  cfg.workers * (cfg.pending_packets + cfg.hold_packets) + 1024 + (cfg.workers + 1) * 256 + 2048);
    auto pool = lm::make_pktmbuf_pool("lm_pool", nb_mbufs, socket);

    std::vector<uint16_t> port_ids;
    std::vector<lm::MacAddr> macs;
    std::vector<lm::PortRuntime> runtime;
    for (auto& pc : cfg.ports) {
        auto op = lm::open_port(pc, cfg.workers, pool.get());
        port_ids.push_back(op.port_id);
        macs.push_back(op.mac);
        runtime.push_back({op.port_id, op.mac});
        lm::log::info("port {} ({}) is {} role {} mac {}", pc.name, pc.device, op.port_id,
                      pc.role == lm::PortRole::Core ? "core" : "access", op.mac.str());
    }
    struct PortCloser {
        std::vector<uint16_t>& ids;
        ~PortCloser() { for (auto id : ids) lm::close_port(id); }  // flushes pcap writers
    } closer{port_ids};

    const lm::DpConfig dp = lm::make_dp_config(cfg, port_ids, macs);
    auto miss_ring = lm::make_mpsc_ring("lm_miss", sizeof(lm::MissMsg), 4096, socket);
    auto punt_ring = lm::make_mpsc_ring("lm_punt", sizeof(lm::PuntMsg), 1024, socket);

    std::vector<std::unique_ptr<lm::Worker>> workers;
    std::vector<lm::WorkerHandle> handles;
    for (unsigned w = 0; w < cfg.workers; ++w) {
        lm::WorkerParams p;
        p.id = w;
        p.cache_entries = cfg.cache_entries;
        p.attachment_entries = cfg.attachment_entries;
        p.idle_backoff_us = cfg.idle_backoff_us;
        p.wait_ready = true;  // no packet before the control lcore's start-up state (ControlPlane::start)
        p.socket = socket;
        p.pool = pool.get();
        p.miss_ring = miss_ring.get();
        p.punt_ring = punt_ring.get();
        workers.push_back(std::make_unique<lm::Worker>(dp, p));
        handles.push_back({workers.back()->update_ring(), workers.back()->tx_ring(), &workers.back()->counters()});
    }

    // The LM directory. Created on the main lcore after EAL init, so OpenDHT's threads inherit
    // the control core's affinity and never run on a worker's core.
    std::unique_ptr<lm::dir::Directory> directory;
    if (cfg.dht) {
        lm::dir::DhtConfig dc;
        dc.port = cfg.dht->port;
        // IPv4 unless only an IPv6 address is given (an IPv6-only management network).
        dc.ipv4 = cfg.dht->bind4.has_value() || !cfg.dht->bind6.has_value();
        if (cfg.dht->bind4) dc.bind4 = cfg.dht->bind4->str();
        dc.ipv6 = cfg.dht->bind6.has_value();
        if (cfg.dht->bind6) dc.bind6 = cfg.dht->bind6->str();
        dc.bootstrap = cfg.dht->bootstrap;
        dc.ca_cert = cfg.dht->ca_cert;
        dc.identity_key = cfg.dht->identity_key;
        dc.identity_cert = cfg.dht->identity_cert;
        dc.max_peer_req_per_sec = cfg.dht->max_peer_req_per_sec;
        directory = std::make_unique<lm::dir::Directory>(dc);
        lm::log::info("LM directory: node '{}' on UDP {}, {} bootstrap node(s)", directory->name(),
                      directory->bound_port(), dc.bootstrap.size());
    }

    lm::ControlPlane control(cfg, runtime, handles, pool.get(), miss_ring.get(), punt_ring.get(), directory.get());
    control.start();
    lm::telemetry_register(&control);

    // Whatever ends the run (signal or exception), workers stop and no telemetry handler or
    // operator request still uses the control plane before anything is destroyed.
    struct Teardown {
        lm::ControlPlane& control;
        bool done = false;
        void operator()() {
            if (done) return;
            done = true;
            g_stop.store(true);
            control.shutdown();          // wakes operator requests still waiting
            lm::telemetry_unregister();  // waits for running telemetry handlers
            rte_eal_mp_wait_lcore();     // workers leave their loops
        }
        ~Teardown() { (*this)(); }
    } teardown{control};

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    for (unsigned w = 0; w < cfg.workers; ++w)
        if (int r = rte_eal_remote_launch(worker_main, workers[w].get(), lcores[w]); r != 0)
            throw std::runtime_error(fmt::format("cannot launch worker {} on lcore {}", w, lcores[w]));
    lm::log::info("{} running: {} worker(s), {} port(s), udp port {}", cfg.name, cfg.workers, nb_ports, cfg.udp_port);

    control.run(g_stop);
    teardown();
    control.drain();
    print_final_counters(workers, cfg);
    lm::log::info("{} stopped", cfg.name);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "lm-router: " << e.what() << "\n";
        return 1;
    }
}
