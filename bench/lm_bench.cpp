// lm-bench: fast-path benchmarks on one worker core, with in-process virtual devices, and the
// LM directory's miss-to-answer latency over an in-process DHT ("resolve", at the end of the file).
//
//   lm-bench fastpath [--vdev null|ring] [--packets N] [--trials N] [--warmup N] [--lcore N]
//                     [--huge|--no-huge] [--only baseline|hot|decap|1m] [--csv FILE] [--eal EAL-ARGS...]
//   lm-bench fastpath --workload encap|decap [--mos N] [--cache N] [--burst N] [--size N]
//                     [--inner 4|6|mix] [--outer 4|6|mix] [--workers 1|2] [--csv FILE] [--tag NAME] ...
//                     (one sweep point: run_point(); `lm-bench sweep` runs the grids, sweep.cpp)
//
// The method is described in docs/benchmarks.md. Every workload runs the real worker loop,
// Worker::poll_once() (rx_burst -> PacketPath::process -> tx_burst on every port); the baseline
// runs the same rx_burst and tx_burst with no processing in between, on the same vdev, with the
// same burst size and the same refill, so only the path's own cost differs. Two vdevs:
//
// --vdev null (default): every port is a net_null ethdev (copy=0). Its rx allocates mbufs from
// the mempool and its tx frees them, as a NIC driver refilling its rx ring and completing tx
// does. An rx callback ("refill") writes the workload's headers into every received mbuf, from
// templates, with destinations from a seeded PRNG: see class NullBench.
//
// --vdev ring: every port is a net_ring ethdev (rte_eth_from_rings). A fixed set of 4096 mbufs
// circulates: a per-port "wire" ring holds packets whose bytes are written; before each round
// the bench plays the NIC for one burst per port (writes the mbuf descriptor fields as a PMD's
// rx does, moves the mbufs to the port's rx ring); after it, the recycle step takes what was
// transmitted off the tx rings, rewrites only the header bytes the path changed and queues it at
// the back of its wire ring. See class Bench.
//
// The last line of output is one JSON object (see docs/benchmarks.md for the fields).
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_udp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/config.hpp"
#include "common/lm_wire.hpp"
#include "common/ring_msg.hpp"
#include "controlplane/control_plane.hpp"
#include "dataplane/dp_config.hpp"
#include "dataplane/dpdk_env.hpp"
#include "dataplane/locator_cache.hpp"
#include "dataplane/worker.hpp"
#include "dht/directory.hpp"
#include "dht/pki.hpp"
#include "bench/bench_util.hpp"

#include <opendht/dhtrunner.h>  // after the project headers: DhtRunner::bootstrap for the re-join

using namespace lm;
using namespace lm::bench;

namespace {

// ---- set-up constants ------------------------------------------------------------------------

constexpr unsigned kAccessPorts = 4;              // one per tenant (1..4): multiplies the v4 EID space
constexpr unsigned kNbPorts = kAccessPorts + 1;   // + the core port
constexpr uint8_t kCore = kAccessPorts;           // index of the core port in DpConfig
constexpr unsigned kSlots = 4096;                 // mbufs in flight (1024 per access port)
constexpr unsigned kRingSize = 8192;              // net_ring rx/tx rings
constexpr uint16_t kFrameLen = 64;                // access frames as the PMD hands them over
constexpr uint16_t kMaxFrameLen = 1514;           // an IP MTU of 1500 (1518 on the wire with the FCS)
constexpr uint32_t kHotMos = 10'000;
constexpr uint32_t kBigMos = 1'000'000;
constexpr uint32_t kBigCacheEntries = 1'100'000;  // 1M MOs + 10% headroom, as an operator would size it
constexpr uint32_t kDecapMos = 1'000;

const char* kLoc4 = "203.0.113.1";
const char* kLoc6 = "2001:db8:a::1";
const char* kPeer4 = "203.0.113.7";    // source of decap packets (a remote AR)
const char* kPeer6 = "2001:db8:b::7";
const char* kSrc4 = "192.0.2.10";      // senders behind the access ports
const char* kSrc6 = "2001:db8:200::10";

// ---- small helpers ---------------------------------------------------------------------------

[[noreturn]] void die(const std::string& s) {
    std::fprintf(stderr, "lm-bench: %s\n", s.c_str());
    std::fflush(stdout);
    std::exit(1);
}

IpAddr ip(const char* s) {
    auto a = IpAddr::parse(s);
    if (!a) die(std::string("bad address ") + s);
    return *a;
}
Prefix pfx(const char* s) {
    auto p = Prefix::parse(s);
    if (!p) die(std::string("bad prefix ") + s);
    return *p;
}
MacAddr mac(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return MacAddr{{0x02, 0x00, a, b, c, d}}; }

// xorshift64*: a few cycles per draw, identical sequence in every run.

// ---- the MO population -----------------------------------------------------------------------
// An MO is (access port t, inner family f, index k). Tenant = t + 1. Its EID is 198.18.0.0/15
// (RFC 2544 benchmarking space; 10.0.0.0/8 in sweeps of more than ~1M MOs) + k + 1 for v4 and
// 2001:db8:100::/40 + k + 1 for v6; its locator alternates v4/v6 with k, over 200 remote ARs
// per family.

constexpr uint32_t kEid4Base = 0xC6120000u;      // 198.18.0.0/15: 131 071 EIDs per tenant
constexpr uint32_t kEid4WideBase = 0x0A000000u;  // 10.0.0.0/8, for sweeps of more (4M MOs: 500 000 per tenant)
uint32_t eid4_be(uint32_t k, uint32_t base = kEid4Base) { return rte_cpu_to_be_32(base + k + 1); }  // base + k + 1
void eid6(uint32_t k, uint8_t* out) {
    static const uint8_t base[16] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(out, base, 16);
    uint32_t lo = rte_cpu_to_be_32(k + 1);
    std::memcpy(out + 12, &lo, 4);
}
MoId mo_id(unsigned t, unsigned f, uint32_t k) { return 0x4C4D000000000000ull | uint64_t(t) << 40 | uint64_t(f) << 32 | k; }

// Inner or outer IP family of a workload's packets: both (the fixed workloads), or one.
enum class Fam : uint8_t { Mix, V4, V6 };

// What the sweeps vary in the packets (docs/benchmarks.md, "Sweeps"). The defaults are the
// fixed workloads': 64-byte access frames, both families inside and outside, full bursts (kBurst).
struct Shape {
    uint16_t frame = kFrameLen;  // access frame bytes (no FCS); LM frames carry its IP packet
    Fam inner = Fam::Mix, outer = Fam::Mix;
    unsigned burst = kBurst;     // packets the NIC hands over per rx_burst (--vdev ring only)
    uint32_t eid4_base = kEid4Base;  // kEid4WideBase when a tenant has more IPv4 MOs than a /15 holds
    unsigned inner_len() const { return frame - RTE_ETHER_HDR_LEN; }
    unsigned families() const { return inner == Fam::Mix ? 2 : 1; }
    unsigned first_family() const { return inner == Fam::V6 ? 1 : 0; }
    // A random draw -> v6 or not, as `x & mask | bit` (no branch, one draw whatever the family).
    static uint64_t mask(Fam f) { return f == Fam::Mix ? 1 : 0; }
    static uint64_t bit(Fam f) { return f == Fam::V6 ? 1 : 0; }
    // LM frame kinds (bit 0 inner v6, bit 1 outer v6) from a 2-bit draw.
    uint64_t kind_mask() const { return mask(inner) | mask(outer) << 1; }
    uint64_t kind_bits() const { return bit(inner) | bit(outer) << 1; }
};

const char* fam_name(Fam f) { return f == Fam::Mix ? "mix" : f == Fam::V4 ? "4" : "6"; }

// Outer family of MO k's locator: alternating with k unless the workload fixes it.
MappingValue mapping(unsigned t, unsigned f, uint32_t k, Fam outer = Fam::Mix) {
    MappingValue v;
    v.mo_id = mo_id(t, f, k);
    v.epoch = 0x0001'8F00'0000'0001ull;
    const uint8_t ar = uint8_t(2 + (k >> 1) % 200);
    if (outer == Fam::Mix ? (k & 1) : outer == Fam::V6) {
        v.locator = ip("2001:db8:b::");
        v.locator.b[15] = ar;
    } else {
        v.locator = ip("203.0.113.0");
        v.locator.b[3] = ar;
    }
    return v;
}

// ---- ports and rings -------------------------------------------------------------------------

struct Ports {
    std::array<rte_ring*, kNbPorts> rx{}, tx{};
    std::array<rte_ring*, kNbPorts> wire{};  // packets written, waiting to be "received" on port p
    std::array<uint16_t, kNbPorts> id{};
};

uint16_t open_ring_port(const std::string& name, rte_ring* rx, rte_ring* tx, rte_mempool* pool) {
    rte_ring* rxa[1] = {rx};
    rte_ring* txa[1] = {tx};
    int pid = rte_eth_from_rings(name.c_str(), rxa, 1, txa, 1, rte_socket_id());
    if (pid < 0) die("rte_eth_from_rings " + name + " failed");
    rte_eth_conf conf{};
    if (rte_eth_dev_configure(uint16_t(pid), 1, 1, &conf) != 0) die("configure " + name);
    if (rte_eth_rx_queue_setup(uint16_t(pid), 0, 1024, rte_socket_id(), nullptr, pool) != 0) die("rxq " + name);
    if (rte_eth_tx_queue_setup(uint16_t(pid), 0, 1024, rte_socket_id(), nullptr) != 0) die("txq " + name);
    if (rte_eth_dev_start(uint16_t(pid)) != 0) die("start " + name);
    return uint16_t(pid);
}

DpConfig make_config(const Ports& ports, const Shape& sh = {}) {
    DpConfig c;
    c.nb_ports = kNbPorts;
    c.core_index = kCore;
    for (unsigned t = 0; t < kAccessPorts; ++t) {
        auto& p = c.ports[t];
        p.port_id = ports.id[t];
        p.role = PortRole::Access;
        p.tenant = t + 1;
        p.mtu = 1500;
        p.mac = mac(0, 0, 0x0a, uint8_t(t));
    }
    auto& core = c.ports[kCore];
    core.port_id = ports.id[kCore];
    core.role = PortRole::Core;
    // Room for the largest access packet plus the IPv6 encapsulation (a core MTU an operator
    // raises for 1500-byte access MTUs); 1500 for the fixed workloads.
    core.mtu = std::max(1500u, sh.inner_len() + wire::kOverheadV6);
    core.mac = mac(0, 0, 0x0c, 0);
    c.has_loc4 = c.has_loc6 = true;
    c.loc4 = ip(kLoc4);
    c.loc6 = ip(kLoc6);
    c.has_gw4 = c.has_gw6 = true;
    c.gw4 = ip("192.0.2.1");
    c.gw6 = ip("2001:db8:200::1");
    c.gw_mac = MacAddr{{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}};
    c.mobile = {MobilePrefix{pfx(sh.eid4_base == kEid4Base ? "198.18.0.0/15" : "10.0.0.0/8"), std::nullopt},
                MobilePrefix{pfx("2001:db8:100::/40"), std::nullopt}};
    c.peers = {pfx("203.0.113.0/24"), pfx("2001:db8:b::/48")};
    c.udp_port = wire::kDefaultUdpPort;
    c.udp_csum_v6 = false;
    c.df = DfPolicy::Copy;
    c.mss_v4 = 1500 - wire::kOverheadV6 - 40;  // what mss_clamp: auto derives; inert for UDP
    c.mss_v6 = 1500 - wire::kOverheadV6 - 60;
    return c;
}

// ---- frames ----------------------------------------------------------------------------------
// Access frames (encap workloads): Ethernet + IPv4/IPv6 + UDP, 64 bytes, to the gateway MAC.
// Core frames (decap workload): the LM packet another AR would send for such a frame:
// Ethernet + outer IPv4/IPv6 + UDP + LM header + the 50-byte inner IP packet.

struct AccessTemplate {
    std::array<uint8_t, 64> bytes{};
    unsigned hdr_len = 0;  // bytes the refill rewrites: Ethernet + IP + UDP
    unsigned dst_off = 0;  // offset of the IP destination address
    uint32_t sum = 0;      // v4: raw ones' complement sum of the header with dst = 0, checksum = 0

    // v4: writes the destination and the header checksum from the precomputed partial sum.
    void set_v4_dst(uint8_t* p, uint32_t d) const {
        std::memcpy(p + dst_off, &d, 4);
        uint32_t s = sum + (d & 0xFFFF) + (d >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        const uint16_t ck = uint16_t(~s);
        std::memcpy(p + 14 + 10, &ck, 2);
    }
};

void put_inner(uint8_t* p, bool v6, const uint8_t* dst, unsigned total) {
    if (!v6) {
        auto* h = reinterpret_cast<rte_ipv4_hdr*>(p);
        h->version_ihl = RTE_IPV4_VHL_DEF;
        h->total_length = rte_cpu_to_be_16(uint16_t(total));
        h->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
        h->time_to_live = 64;
        h->next_proto_id = IPPROTO_UDP;
        std::memcpy(&h->src_addr, ip(kSrc4).b.data(), 4);
        std::memcpy(&h->dst_addr, dst, 4);
        h->hdr_checksum = 0;
        h->hdr_checksum = rte_ipv4_cksum(h);
        auto* u = reinterpret_cast<rte_udp_hdr*>(h + 1);
        u->src_port = rte_cpu_to_be_16(40000);
        u->dst_port = rte_cpu_to_be_16(5001);
        u->dgram_len = rte_cpu_to_be_16(uint16_t(total - 20));
    } else {
        auto* h = reinterpret_cast<rte_ipv6_hdr*>(p);
        h->vtc_flow = rte_cpu_to_be_32(6u << 28);
        h->payload_len = rte_cpu_to_be_16(uint16_t(total - 40));
        h->proto = IPPROTO_UDP;
        h->hop_limits = 64;
        std::memcpy(h->src_addr, ip(kSrc6).b.data(), 16);
        std::memcpy(h->dst_addr, dst, 16);
        auto* u = reinterpret_cast<rte_udp_hdr*>(h + 1);
        u->src_port = rte_cpu_to_be_16(40000);
        u->dst_port = rte_cpu_to_be_16(5001);
        u->dgram_len = rte_cpu_to_be_16(uint16_t(total - 40));
    }
}

AccessTemplate access_template(const MacAddr& dst_mac, bool v6, unsigned inner_len) {
    AccessTemplate t;
    auto* eth = reinterpret_cast<rte_ether_hdr*>(t.bytes.data());
    std::memcpy(eth->dst_addr.addr_bytes, dst_mac.b.data(), 6);
    const MacAddr src = mac(0, 0x00, 0x5e, 0x10);
    std::memcpy(eth->src_addr.addr_bytes, src.b.data(), 6);
    eth->ether_type = rte_cpu_to_be_16(v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    const uint8_t zero[16] = {};
    put_inner(t.bytes.data() + 14, v6, zero, inner_len);
    t.hdr_len = 14 + (v6 ? 40 : 20) + 8;
    t.dst_off = 14 + (v6 ? 24 : 16);
    if (!v6) {
        auto* h = reinterpret_cast<rte_ipv4_hdr*>(t.bytes.data() + 14);
        h->hdr_checksum = 0;
        t.sum = rte_raw_cksum(h, 20);
    }
    return t;
}

struct CoreTemplate {
    std::array<uint8_t, 160> bytes{};
    unsigned len = 0;      // frame length (may be longer than `bytes`: the payload is never written)
    unsigned lm_off = 0;   // offset of the LM header: the ring refill rewrites these 24 bytes only
    unsigned hdr_len = 0;  // outer Ethernet/IP/UDP + LM + inner IP + inner UDP: the null refill writes these
};

CoreTemplate core_template(const MacAddr& dst_mac, bool out6, bool in6, unsigned inner_len) {
    CoreTemplate t;
    uint8_t* p = t.bytes.data();
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    std::memcpy(eth->dst_addr.addr_bytes, dst_mac.b.data(), 6);
    const MacAddr src = mac(0, 0, 0x0f, 0x01);
    std::memcpy(eth->src_addr.addr_bytes, src.b.data(), 6);
    eth->ether_type = rte_cpu_to_be_16(out6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    const unsigned udp_len = wire::kUdpLen + wire::kLmLen + inner_len;
    unsigned off = 14;
    if (!out6) {
        auto* h = reinterpret_cast<rte_ipv4_hdr*>(p + off);
        h->version_ihl = RTE_IPV4_VHL_DEF;
        h->total_length = rte_cpu_to_be_16(uint16_t(20 + udp_len));
        h->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
        h->time_to_live = 64;
        h->next_proto_id = IPPROTO_UDP;
        std::memcpy(&h->src_addr, ip(kPeer4).b.data(), 4);
        std::memcpy(&h->dst_addr, ip(kLoc4).b.data(), 4);
        h->hdr_checksum = rte_ipv4_cksum(h);
        off += 20;
    } else {
        auto* h = reinterpret_cast<rte_ipv6_hdr*>(p + off);
        h->vtc_flow = rte_cpu_to_be_32(6u << 28 | 0x12345);
        h->payload_len = rte_cpu_to_be_16(uint16_t(udp_len));
        h->proto = IPPROTO_UDP;
        h->hop_limits = 64;
        std::memcpy(h->src_addr, ip(kPeer6).b.data(), 16);
        std::memcpy(h->dst_addr, ip(kLoc6).b.data(), 16);
        off += 40;
    }
    auto* u = reinterpret_cast<rte_udp_hdr*>(p + off);
    u->src_port = rte_cpu_to_be_16(uint16_t(wire::kSrcPortBase | 0x123));
    u->dst_port = rte_cpu_to_be_16(wire::kDefaultUdpPort);
    u->dgram_len = rte_cpu_to_be_16(uint16_t(udp_len));
    u->dgram_cksum = 0;
    off += 8;
    t.lm_off = off;
    auto* lh = reinterpret_cast<wire::LmHeader*>(p + off);
    lh->ver_flags = wire::kVersion << 4;
    lh->type = uint8_t(wire::LmType::Data);
    lh->next_proto = in6 ? wire::kNextIpv6 : wire::kNextIpv4;
    lh->epoch_be = rte_cpu_to_be_64(0x0001'8F00'0000'0001ull);
    off += wire::kLmLen;
    uint8_t dst[16];
    if (in6) eid6(0, dst);
    else {
        uint32_t d = eid4_be(0);
        std::memcpy(dst, &d, 4);
    }
    put_inner(p + off, in6, dst, inner_len);
    t.hdr_len = off + (in6 ? 40 : 20) + 8;
    t.len = off + inner_len;
    return t;
}

// ---- the bench -------------------------------------------------------------------------------

struct Options {
    uint64_t packets = 250'000;  // per trial
    unsigned trials = 30;
    uint64_t warmup = 1'000'000;
    unsigned lcore = 0;
    int huge = -1;  // -1 auto, 0 no, 1 yes
    std::string only;  // profiling: run one workload (baseline|hot|decap|1m), no JSON line
    bool ring = false;  // --vdev ring: net_ring ports instead of net_null
    std::vector<std::string> eal;
    // One sweep point (any of the options below): baseline, one workload, baseline again.
    bool point = false;
    bool decap = false;          // --workload decap (default encap)
    uint32_t mos = kHotMos;      // --mos: encap destinations (cached MOs); decap has kDecapMos
    uint32_t cache_entries = 0;  // --cache: 0 = max(65536, mos + 10 %)
    unsigned workers = 1;        // --workers: worker lcores, one rx/tx queue each (--vdev null)
    Shape shape;
    std::string csv, tag;        // --csv FILE: append a row (also the fixed workloads'); --tag: its "sweep" column
};

struct Result {
    double median = 0, min = 0, max = 0;
    uint64_t packets = 0;  // warm-up + timed
    unsigned clean = 0, trials = 0;
};

long involuntary_switches() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nivcsw;
}

enum class Kind { Access, Core };

struct SlotInfo {
    uint8_t home = 0;  // port whose rx ring the slot is refilled into
    uint8_t kind = 0;  // access: 0 v4 / 1 v6 inner; core: bit0 inner v6, bit1 outer v6
    uint16_t len = 0;  // frame length
};

// A worker as the router builds one (queue `id` of every port), with the next-hop MAC resolved.
std::unique_ptr<Worker> new_worker(const DpConfig& cfg, rte_mempool* pool, uint32_t cache_entries, uint32_t id = 0) {
    WorkerParams wp;
    wp.id = id;
    wp.cache_entries = cache_entries;
    wp.attachment_entries = 4096;
    wp.idle_backoff_us = 0;
    wp.socket = int(rte_socket_id());
    wp.pool = pool;
    auto w = std::make_unique<Worker>(cfg, wp);
    UpdateMsg nh4{}, nh6{};
    nh4.op = nh6.op = UpdateOp::SetNextHop;
    nh4.family = Family::V4;
    nh6.family = Family::V6;
    nh4.mac = nh6.mac = mac(0, 0, 0x0f, 0xfe);
    w->path().apply(nh4);
    w->path().apply(nh6);
    return w;
}

// Many short trials after a warm-up; `round` runs one poll round and returns packets received.
template <class Round>
Result measure(const Options& o, Round&& round) {
    Result r;
    uint64_t n = 0;
    while (n < o.warmup) n += round();
    r.packets = n;
    // A trial during which the kernel preempted this thread (another process wanted the core)
    // is not clean: its TSC time includes someone else's work.
    std::vector<double> all, clean;
    for (unsigned t = 0; t < o.trials; ++t) {
        n = 0;
        const long cs0 = involuntary_switches();
        const uint64_t t0 = rte_rdtsc_precise();
        while (n < o.packets) n += round();
        const uint64_t t1 = rte_rdtsc_precise();
        const double c = double(t1 - t0) / double(n);
        all.push_back(c);
        if (involuntary_switches() == cs0) clean.push_back(c);
        r.packets += n;
    }
    auto median = [](std::vector<double>& v) {
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    r.trials = unsigned(all.size());
    r.clean = unsigned(clean.size());
    // Fewer than 3 clean trials: the fastest third of all trials stands in for them.
    if (clean.size() < 3) {
        std::sort(all.begin(), all.end());
        clean.assign(all.begin(), all.begin() + std::max<size_t>(1, all.size() / 3));
    }
    r.median = median(clean);
    r.min = clean.front();
    r.max = clean.back();
    return r;
}

// measure() on `n` lcores at once, worker q on the q-th lcore of EAL's list (q = 0: this, the
// main lcore); round(q) runs one poll round of worker / queue q. They start together (spin on
// a counter) and run the same number of packets, so their trials overlap.
struct LcoreJob {
    std::function<void()> fn;
    static int run(void* self) {
        static_cast<LcoreJob*>(self)->fn();
        return 0;
    }
};
template <class Round>
std::vector<Result> measure_on(const Options& o, unsigned n, Round&& round) {
    if (n == 1) return {measure(o, [&] { return round(0u); })};
    std::vector<Result> r(n);
    std::atomic<unsigned> ready{0};
    auto body = [&](unsigned q) {
        ready.fetch_add(1);
        while (ready.load() < n) rte_pause();
        r[q] = measure(o, [&] { return round(q); });
    };
    std::vector<LcoreJob> jobs(n);
    std::vector<unsigned> lcores;
    unsigned lc = rte_get_next_lcore(-1, 1, 0);
    for (unsigned q = 1; q < n; ++q, lc = rte_get_next_lcore(lc, 1, 0)) {
        if (lc >= RTE_MAX_LCORE) die("--workers " + std::to_string(n) + " needs " + std::to_string(n) + " lcores");
        jobs[q].fn = [&body, q] { body(q); };
        if (rte_eal_remote_launch(&LcoreJob::run, &jobs[q], lc) != 0) die("rte_eal_remote_launch failed");
        lcores.push_back(lc);
    }
    body(0);
    for (unsigned l : lcores) rte_eal_wait_lcore(l);
    return r;
}

// ---- vdev "ring": net_ring ports, the bench plays the NIC ----------------------------------

class Bench {
public:
    Bench(rte_mempool* pool, const Shape& sh) : pool_(pool), sh_(sh) {
        for (unsigned p = 0; p < kNbPorts; ++p) {
            const auto flags = RING_F_SP_ENQ | RING_F_SC_DEQ;  // one core: no atomics, like a NIC queue
            ports_.rx[p] = rte_ring_create(("lmb_rx" + std::to_string(p)).c_str(), kRingSize, rte_socket_id(), flags);
            ports_.tx[p] = rte_ring_create(("lmb_tx" + std::to_string(p)).c_str(), kRingSize, rte_socket_id(), flags);
            ports_.wire[p] = rte_ring_create(("lmb_wire" + std::to_string(p)).c_str(), kRingSize, rte_socket_id(), flags);
            if (!ports_.rx[p] || !ports_.tx[p] || !ports_.wire[p]) die("cannot create rings");
            ports_.id[p] = open_ring_port("lmb" + std::to_string(p), ports_.rx[p], ports_.tx[p], pool_);
        }
        cfg_ = make_config(ports_, sh_);
        if (rte_pktmbuf_alloc_bulk(pool_, mbufs_.data(), kSlots) != 0) die("cannot allocate the mbufs");
        for (unsigned s = 0; s < kSlots; ++s) mbufs_[s]->hash.usr = s;
        for (unsigned v6 = 0; v6 < 2; ++v6) atpl_[v6] = access_template(cfg_.gw_mac, v6, sh_.inner_len());
        for (unsigned k = 0; k < 4; ++k) ctpl_[k] = core_template(cfg_.ports[kCore].mac, k & 2, k & 1, sh_.inner_len());
    }

    const DpConfig& config() const { return cfg_; }

    // net_ring: one configuration, every port receives what the bench put on its rx ring; one
    // queue per port, so one worker.
    std::unique_ptr<Worker> make_worker(uint32_t cache_entries, Kind, uint32_t id = 0) {
        if (id) die("--vdev ring has one queue per port: one worker only");
        return new_worker(cfg_, pool_, cache_entries);
    }

    // Cache every MO of an encap workload of `mos` MOs (mos / 8 per port and inner family; one
    // family: mos / 4 per port).
    static void add_mappings(Worker& w, uint32_t mos, const Shape& sh = {}) {
        const uint32_t per = mos / (sh.families() * kAccessPorts);
        for (unsigned t = 0; t < kAccessPorts; ++t)
            for (unsigned f = sh.first_family(); f < sh.first_family() + sh.families(); ++f)
                for (uint32_t k = 0; k < per; ++k) {
                    UpdateMsg u{};
                    u.op = UpdateOp::UpsertMapping;
                    IpAddr a;
                    if (f) {
                        a.family = Family::V6;
                        eid6(k, a.b.data());
                    } else {
                        uint32_t d = eid4_be(k, sh.eid4_base);
                        a = IpAddr::v4_from_be(d);
                    }
                    u.key = EidKey::make(t + 1, a);
                    u.value = mapping(t, f, k, sh.outer);
                    w.path().apply(u);
                }
        if (w.counters().update_failed.get()) die("locator cache full while populating");
    }

    static void add_attachments(Worker& w) {
        for (uint32_t u = 0; u < kDecapMos; ++u) {
            const unsigned t = u % kAccessPorts;
            UpdateMsg m{};
            m.op = UpdateOp::UpsertAttachment;
            m.tenant = t + 1;
            m.mo_id = mo_id(t, 2, u / kAccessPorts);
            m.port_index = uint8_t(t);
            m.mac = mac(0xaa, uint8_t(t), uint8_t(u >> 8), uint8_t(u));
            w.path().apply(m);
        }
        if (w.counters().update_failed.get()) die("attachment table full while populating");
    }

    // Load the slots with frames of one workload: `mos` = MOs per encap workload, 0 = decap.
    void load(uint32_t mos) {
        for (unsigned p = 0; p < kNbPorts; ++p) {
            rte_ring_reset(ports_.rx[p]);
            rte_ring_reset(ports_.tx[p]);
            rte_ring_reset(ports_.wire[p]);
        }
        rng_ = Rng{};
        mos_per_ = mos / (sh_.families() * kAccessPorts);
        Rng layout{kSeed ^ 0x5A5A};
        for (unsigned s = 0; s < kSlots; ++s) {
            rte_mbuf* m = mbufs_[s];
            std::memset(frame(m), 0, 160);
            if (mos) {
                slots_[s].home = uint8_t(s % kAccessPorts);
                // inner family: random, fixed per slot
                slots_[s].kind = uint8_t((layout.next() >> 63 & Shape::mask(sh_.inner)) | Shape::bit(sh_.inner));
                slots_[s].len = sh_.frame;
                refill_access(m);
            } else {
                slots_[s].home = kCore;
                // 4in4 / 6in4 / 4in6 / 6in6
                slots_[s].kind = uint8_t((layout.next() >> 62 & sh_.kind_mask()) | sh_.kind_bits());
                const auto& t = ctpl_[slots_[s].kind];
                slots_[s].len = uint16_t(t.len);
                std::memcpy(frame(m), t.bytes.data(), std::min<size_t>(t.len, t.bytes.size()));
                refill_core(m);
            }
            if (rte_ring_enqueue(ports_.wire[slots_[s].home], m) != 0) die("wire ring full at load");
        }
    }

    static uint8_t* frame(rte_mbuf* m) { return static_cast<uint8_t*>(m->buf_addr) + RTE_PKTMBUF_HEADROOM; }

    // The "NIC" of every port, called before each round: like a PMD's rx routine, write the
    // descriptor fields of up to one burst of mbufs whose bytes were written one ring-depth
    // earlier (the "DMA", see recycle) and hand them to the port's rx ring.
    inline void arrive(unsigned p) {
        void* buf[kBurst];
        const unsigned n = rte_ring_sc_dequeue_burst(ports_.wire[p], buf, sh_.burst, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            auto* m = static_cast<rte_mbuf*>(buf[i]);
            const uint16_t len = slots_[m->hash.usr].len;
            m->data_off = RTE_PKTMBUF_HEADROOM;
            m->data_len = len;
            m->pkt_len = len;
        }
        if (n && rte_ring_sp_enqueue_burst(ports_.rx[p], buf, n, nullptr) != n) die("rx ring full");
    }
    template <Kind K>
    inline void arrive_all() {
        if constexpr (K == Kind::Access)
            for (unsigned p = 0; p < kAccessPorts; ++p) arrive(p);
        else
            arrive(kCore);
    }

    // Refill of an access frame: rewrite Ethernet + IP + UDP (42 / 62 bytes, the first cache
    // line) from the template, with a destination drawn uniformly from the port's MOs.
    inline void refill_access(rte_mbuf* m) {
        const SlotInfo si = slots_[m->hash.usr];
        const AccessTemplate& t = atpl_[si.kind];
        uint8_t* p = frame(m);
        std::memcpy(p, t.bytes.data(), 64);  // one cache line; only hdr_len bytes differ from the template
        const uint32_t k = rng_.below(mos_per_);
        if (si.kind) {
            eid6(k, p + t.dst_off);
        } else {
            t.set_v4_dst(p, eid4_be(k, sh_.eid4_base));
        }
    }

    // Refill of a core frame: rewrite the 24-byte LM header (decap wrote the new Ethernet header
    // over its tail) with a destination MO drawn from the attached ones.
    inline void refill_core(rte_mbuf* m) {
        const SlotInfo si = slots_[m->hash.usr];
        const CoreTemplate& t = ctpl_[si.kind];
        auto* lh = reinterpret_cast<wire::LmHeader*>(frame(m) + t.lm_off);
        std::memcpy(lh, t.bytes.data() + t.lm_off, wire::kLmLen);
        const uint32_t u = rng_.below(kDecapMos);
        const unsigned tn = u % kAccessPorts;
        lh->set_tenant(tn + 1);
        lh->mo_id_be = rte_cpu_to_be_64(mo_id(tn, 2, u / kAccessPorts));
    }

    // Take everything transmitted off the tx rings, rewrite the bytes the path changed and put
    // it at the back of its port's wire ring (4096 / ports packets before it arrives again).
    template <Kind K>
    inline void recycle() {
        rte_mbuf* buf[256];
        for (unsigned p = 0; p < kNbPorts; ++p) {
            unsigned n = rte_ring_sc_dequeue_burst(ports_.tx[p], reinterpret_cast<void**>(buf), 256, nullptr);
            if (!n) continue;
            if constexpr (K == Kind::Access) {
                rte_mbuf* out[kAccessPorts][256];
                unsigned no[kAccessPorts] = {};
                for (unsigned i = 0; i < n; ++i) {
                    refill_access(buf[i]);
                    const unsigned h = slots_[buf[i]->hash.usr].home;
                    out[h][no[h]++] = buf[i];
                }
                for (unsigned h = 0; h < kAccessPorts; ++h)
                    if (no[h] && rte_ring_sp_enqueue_burst(ports_.wire[h], reinterpret_cast<void**>(out[h]), no[h], nullptr) != no[h])
                        die("wire ring full");
            } else {
                for (unsigned i = 0; i < n; ++i) refill_core(buf[i]);
                if (rte_ring_sp_enqueue_burst(ports_.wire[kCore], reinterpret_cast<void**>(buf), n, nullptr) != n) die("wire ring full");
            }
        }
    }

    // Zero-work forward: the same rx_burst on every port, tx_burst of what came in.
    template <Kind K>
    unsigned baseline_round(uint16_t = 0) {
        arrive_all<K>();
        unsigned total = 0;
        rte_mbuf* pkts[kBurst];
        for (unsigned p = 0; p < kNbPorts; ++p) {
            const uint16_t n = rte_eth_rx_burst(ports_.id[p], 0, pkts, kBurst);
            if (!n) continue;
            total += n;
            if (rte_eth_tx_burst(ports_.id[p], 0, pkts, n) != n) die("baseline: tx ring full");
        }
        recycle<K>();
        return total;
    }

    template <Kind K>
    unsigned path_round(Worker& w) {
        arrive_all<K>();
        const unsigned n = w.poll_once();
        recycle<K>();
        return n;
    }

private:
    rte_mempool* pool_;
    Shape sh_;
    Ports ports_;
    DpConfig cfg_;
    std::array<rte_mbuf*, kSlots> mbufs_{};
    std::array<SlotInfo, kSlots> slots_{};
    std::array<AccessTemplate, 2> atpl_;
    std::array<CoreTemplate, 4> ctpl_;
    Rng rng_;
    uint32_t mos_per_ = 1;
};

// ---- vdev "null": net_null ports, a driver that allocates and frees ---------------------------
// Every port is a net_null ethdev (EAL --vdev, see null_vdev_args). Its rx_burst takes mbufs
// from the mempool (rte_pktmbuf_alloc_bulk: what a NIC driver does when it refills its rx ring)
// and sets their length to the port's size; with copy=0 it never writes packet data. Its
// tx_burst frees every mbuf (what a NIC driver does on tx completion). So the vdev costs what a
// driver costs in mbuf handling, without the descriptor rings.
//
// Ports that receive in one workload are separate vdevs from those that do not (no-rx=1), so
// the worker polls 5 ports in every workload, like the router, but only the 4 access ports
// (encap) or only the core port (decap) deliver packets:
//   0-3  access, rx, size=64        5-8  access, no-rx
//   4    core, rx, size=136         9    core, no-rx
// Encap workloads run on config {0,1,2,3 | 9}, decap on {5,6,7,8 | 4}.
//
// The refill is an rx callback (rte_eth_add_rx_callback) on every port that receives: it runs
// inside rte_eth_rx_burst, after the PMD, so Worker::poll_once() is driven unchanged and the
// baseline goes through exactly the same rx_burst + refill. The mbufs net_null hands over hold
// whatever the buffer held last (usually another workload packet, of another kind), so the
// refill writes the complete header stack of the frame, never the payload:
//   access: Ethernet + IPv4/IPv6 + UDP (42/62 of 64 bytes), destination and IPv4 checksum patched;
//   core:   Ethernet + outer IP + UDP + LM + inner IP + inner UDP (94-134 of 116/136 bytes),
//           tenant and MO id patched, data_len/pkt_len set (the port's size is the longest frame).
// Which kind and destination a packet gets comes from a seeded xorshift64* reset by load(): every
// run, and the baseline, sees exactly the same sequence.

// Sweeps: the sizes follow --size (access frame; LM frames are 72 bytes longer at most), and
// --workers N gives every port N rx/tx queues, worker q polling queue q on lcore q, with a
// refill state (PRNG) per queue.

constexpr unsigned kNullPorts = 2 * kNbPorts;

// The longest LM frame for an access frame of `frame` bytes: 6in6 / 4in6 (136 for 64; 4in4 and
// 6in4 are 20 bytes shorter).
unsigned core_frame_max(unsigned frame) { return frame + wire::kOverheadV6; }

std::vector<std::string> null_vdev_args(const Shape& sh = {}) {
    std::vector<std::string> a;
    for (unsigned i = 0; i < kNullPorts; ++i) {
        std::string dev = "net_null" + std::to_string(i);
        if (i < kAccessPorts) dev += ",size=" + std::to_string(sh.frame) + ",copy=0";
        else if (i == kAccessPorts) dev += ",size=" + std::to_string(core_frame_max(sh.frame)) + ",copy=0";
        else dev += ",no-rx=1";
        a.insert(a.end(), {"--vdev", dev});
    }
    return a;
}

class NullBench {
public:
    NullBench(rte_mempool* pool, const Shape& sh = {}, unsigned queues = 1) : pool_(pool), sh_(sh), feeds_(queues) {
        std::array<uint16_t, kNullPorts> id{};
        for (unsigned i = 0; i < kNullPorts; ++i) {
            const std::string name = "net_null" + std::to_string(i);
            if (rte_eth_dev_get_port_by_name(name.c_str(), &id[i]) != 0) die("no ethdev " + name + " (is the net_null PMD loaded?)");
            rte_eth_conf conf{};
            if (rte_eth_dev_configure(id[i], uint16_t(queues), uint16_t(queues), &conf) != 0) die("configure " + name);
            for (uint16_t q = 0; q < queues; ++q) {
                if (rte_eth_rx_queue_setup(id[i], q, 1024, rte_socket_id(), nullptr, pool_) != 0) die("rxq " + name);
                if (rte_eth_tx_queue_setup(id[i], q, 1024, rte_socket_id(), nullptr) != 0) die("txq " + name);
            }
            if (rte_eth_dev_start(id[i]) != 0) die("start " + name);
            ids_.push_back(id[i]);
        }
        Ports enc, dec;  // only .id is used by make_config
        for (unsigned t = 0; t < kAccessPorts; ++t) {
            enc.id[t] = id[t];
            dec.id[t] = id[kNbPorts + t];
        }
        enc.id[kCore] = id[kNbPorts + kCore];
        dec.id[kCore] = id[kCore];
        enc_ = make_config(enc, sh_);
        dec_ = make_config(dec, sh_);
        for (unsigned v6 = 0; v6 < 2; ++v6) atpl_[v6] = access_template(enc_.gw_mac, v6, sh_.inner_len());
        for (unsigned k = 0; k < 4; ++k) ctpl_[k] = core_template(dec_.ports[kCore].mac, k & 2, k & 1, sh_.inner_len());
        v6_mask_ = Shape::mask(sh_.inner);
        v6_bit_ = Shape::bit(sh_.inner);
        kind_mask_ = sh_.kind_mask();
        kind_bits_ = sh_.kind_bits();
        eid4_base_ = sh_.eid4_base;
        for (auto& f : feeds_) f.b = this;
    }
    // Install the refill; before this, rx_burst returns net_null's stale buffers (only for the
    // "vdev alone" line: no workload may run without it).
    void attach_refill() {
        for (uint16_t q = 0; q < feeds_.size(); ++q) {
            for (unsigned t = 0; t < kAccessPorts; ++t)
                if (!rte_eth_add_rx_callback(ids_[t], q, &access_rx_cb, &feeds_[q])) die("rte_eth_add_rx_callback (DPDK built without RTE_ETHDEV_RXTX_CALLBACKS?)");
            if (!rte_eth_add_rx_callback(ids_[kCore], q, &core_rx_cb, &feeds_[q])) die("rte_eth_add_rx_callback");
        }
    }
    ~NullBench() {
        for (uint16_t p : ids_) {
            rte_eth_dev_stop(p);
            rte_eth_dev_close(p);
        }
    }
    NullBench(const NullBench&) = delete;
    NullBench& operator=(const NullBench&) = delete;

    std::unique_ptr<Worker> make_worker(uint32_t cache_entries, Kind k, uint32_t id = 0) {
        return new_worker(k == Kind::Access ? enc_ : dec_, pool_, cache_entries, id);
    }

    // Start a workload's packet sequence: `mos` = MOs per encap workload, 0 = decap. Queue 0
    // draws the fixed workloads' sequence; other queues their own.
    void load(uint32_t mos) {
        for (size_t q = 0; q < feeds_.size(); ++q) feeds_[q].rng = Rng{kSeed ^ (q * 0x9E3779B97F4A7C15ull)};
        mos_per_ = std::max<uint32_t>(1, mos / (sh_.families() * kAccessPorts));
    }

    // Zero-work forward with the worker's polling structure: rx_burst on every port of the
    // workload's configuration; what came in goes out with one tx_burst on the port the path
    // would send it to (the core port for access frames, an access port for LM frames).
    template <Kind K>
    unsigned baseline_round(uint16_t q = 0) {
        const DpConfig& c = K == Kind::Access ? enc_ : dec_;
        unsigned total = 0;
        rte_mbuf* pkts[kBurst];
        for (unsigned p = 0; p < kNbPorts; ++p) {
            const uint16_t n = rte_eth_rx_burst(c.ports[p].port_id, q, pkts, kBurst);
            if (!n) continue;
            total += n;
            const uint16_t out = K == Kind::Access ? c.ports[kCore].port_id : c.ports[0].port_id;
            if (rte_eth_tx_burst(out, q, pkts, n) != n) die("baseline: tx_burst short");
        }
        return total;
    }

    template <Kind K>
    unsigned path_round(Worker& w) {
        return w.poll_once();
    }

private:
    struct Feed {  // one rx queue's refill: the worker's lcore is the only one to touch it
        NullBench* b = nullptr;
        Rng rng;
    };
    static uint16_t access_rx_cb(uint16_t, uint16_t, rte_mbuf** pkts, uint16_t n, uint16_t, void* feed) {
        auto* f = static_cast<Feed*>(feed);
        for (uint16_t i = 0; i < n; ++i) f->b->refill_access(f->rng, pkts[i]);
        return n;
    }
    static uint16_t core_rx_cb(uint16_t, uint16_t, rte_mbuf** pkts, uint16_t n, uint16_t, void* feed) {
        auto* f = static_cast<Feed*>(feed);
        for (uint16_t i = 0; i < n; ++i) f->b->refill_core(f->rng, pkts[i]);
        return n;
    }

    // Ethernet + IP + UDP from the template, destination uniform over the port's MOs (each
    // access port is its own tenant with the same EIDs), inner family uniform (or fixed).
    inline void refill_access(Rng& rng, rte_mbuf* m) const {
        const uint64_t x = rng.next();
        const unsigned v6 = unsigned((x & v6_mask_) | v6_bit_);
        const uint32_t k = uint32_t((uint64_t(uint32_t(x >> 32)) * mos_per_) >> 32);
        const AccessTemplate& t = atpl_[v6];
        uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
        // One branch on the family (as unpredictable as the family), fixed-size copies inside.
        if (v6) {
            std::memcpy(p, t.bytes.data(), 14 + 40 + 8);
            eid6(k, p + t.dst_off);
        } else {
            std::memcpy(p, t.bytes.data(), 14 + 20 + 8);
            t.set_v4_dst(p, eid4_be(k, eid4_base_));
        }
    }

    // The whole header stack of an LM frame (4in4 / 6in4 / 4in6 / 6in6 uniform, or the
    // families fixed), to one of the attached MOs (uniform).
    inline void refill_core(Rng& rng, rte_mbuf* m) const {
        const uint64_t x = rng.next();
        const CoreTemplate& t = ctpl_[(x & kind_mask_) | kind_bits_];
        const uint32_t u = uint32_t((uint64_t(uint32_t(x >> 32)) * kDecapMos) >> 32);
        uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
        rte_memcpy(p, t.bytes.data(), t.hdr_len);
        m->data_len = uint16_t(t.len);
        m->pkt_len = t.len;
        auto* lh = reinterpret_cast<wire::LmHeader*>(p + t.lm_off);
        const unsigned tn = u % kAccessPorts;
        lh->set_tenant(tn + 1);
        lh->mo_id_be = rte_cpu_to_be_64(mo_id(tn, 2, u / kAccessPorts));
    }

    rte_mempool* pool_;
    Shape sh_;
    std::vector<uint16_t> ids_;
    DpConfig enc_, dec_;
    std::array<AccessTemplate, 2> atpl_;
    std::array<CoreTemplate, 4> ctpl_;
    std::vector<Feed> feeds_;  // per queue; never resized after the callbacks hold pointers
    uint64_t v6_mask_ = 1, v6_bit_ = 0, kind_mask_ = 3, kind_bits_ = 0;
    uint32_t eid4_base_ = kEid4Base;
    uint32_t mos_per_ = 1;
};

// ---- counters check --------------------------------------------------------------------------

struct Snap {
    uint64_t encap, decap, hit, miss, drops;
};
Snap snap(const WorkerCounters& c) {
    uint64_t d = 0;
    for (auto& x : c.drops) d += x.get();
    return {c.encap.get(), c.decap.get(), c.cache_hit.get(), c.cache_miss.get(), d};
}

void check(const char* name, const WorkerCounters& c, const Snap& before, uint64_t packets, bool decap) {
    const Snap a = snap(c);
    const uint64_t done = decap ? a.decap - before.decap : a.encap - before.encap;
    std::printf("  counters %-10s: packets=%" PRIu64 " %s=%" PRIu64 " cache_hit=%" PRIu64 " cache_miss=%" PRIu64 " drops=%" PRIu64 "\n",
                name, packets, decap ? "decap" : "encap", done, a.hit - before.hit, a.miss - before.miss, a.drops - before.drops);
    if (done != packets || a.drops != before.drops) {
        for (size_t i = 0; i < c.drops.size(); ++i)
            if (c.drops[i].get()) std::fprintf(stderr, "  drop %s = %" PRIu64 "\n", std::string(kDropNames[i]).c_str(), c.drops[i].get());
        die(std::string(name) + ": not every packet was " + (decap ? "decapsulated" : "encapsulated") + " (see drops)");
    }
}

// ---- EAL -------------------------------------------------------------------------------------

struct HugeInfo {
    bool mounted = false;
    uint64_t free_mb = 0;
};
HugeInfo huge_info() {
    HugeInfo h;
    std::ifstream mounts("/proc/mounts");
    for (std::string line; std::getline(mounts, line);) {
        std::istringstream is(line);
        std::string dev, dir, type;
        is >> dev >> dir >> type;
        if (type == "hugetlbfs") h.mounted = true;
    }
    std::ifstream mi("/proc/meminfo");
    uint64_t free_pages = 0, page_kb = 0;
    for (std::string line; std::getline(mi, line);) {
        std::istringstream is(line);
        std::string key;
        uint64_t v = 0;
        is >> key >> v;
        if (key == "HugePages_Free:") free_pages = v;
        if (key == "Hugepagesize:") page_kb = v;
    }
    h.free_mb = free_pages * page_kb / 1024;
    return h;
}

std::string thp_mode() {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string s;
    std::getline(f, s);
    auto a = s.find('['), b = s.find(']');
    return a != std::string::npos && b != std::string::npos ? s.substr(a + 1, b - a - 1) : "unknown";
}


// --only: one workload, for a profiler (callgrind, perf with cpu-clock).
template <class B, class Line>
int profile_one(const Options& o, B& b, const std::string& which, Line&& line) {
    if (which == "baseline") {
        b.load(kHotMos);
        line("baseline (access frames)", measure(o, [&] { return b.template baseline_round<Kind::Access>(); }), nullptr);
        return 0;
    }
    const bool big = which == "1m", dec = which == "decap";
    if (!big && which != "hot" && !dec) die("--only: unknown workload " + which);
    auto w = b.make_worker(big ? kBigCacheEntries : 65536, dec ? Kind::Core : Kind::Access);
    Bench::add_mappings(*w, big ? kBigMos : kHotMos, o.shape);
    Bench::add_attachments(*w);
    const Snap s0 = snap(w->counters());
    Result r;
    if (dec) {
        b.load(0);
        r = measure(o, [&] { return b.template path_round<Kind::Core>(*w); });
    } else {
        b.load(big ? kBigMos : kHotMos);
        r = measure(o, [&] { return b.template path_round<Kind::Access>(*w); });
    }
    line(which.c_str(), r, nullptr);
    check(which.c_str(), w->counters(), s0, r.packets, dec);
    return 0;
}

void usage() {
    std::fprintf(stderr,
                 "usage: lm-bench fastpath [--vdev null|ring] [--packets N] [--trials N] [--warmup N] [--lcore N]\n"
                 "                         [--huge|--no-huge] [--only baseline|hot|decap|1m] [--csv FILE] [--eal EAL-ARGS...]\n"
                 "--vdev: net_null ports (default; rx allocates mbufs, tx frees them, like a NIC driver)\n"
                 "        or net_ring ports (the bench plays the NIC; rx/tx are ring operations).\n"
                 "--only runs one workload (for profilers) and prints no JSON line.\n"
                 "One sweep point (any of these options; a \"fastpath_point\" JSON line):\n"
                 "       lm-bench fastpath [--workload encap|decap] [--mos N] [--cache N] [--burst 1-32 (--vdev ring)]\n"
                 "                         [--size 64-1514] [--inner 4|6|mix] [--outer 4|6|mix] [--workers 1|2 (--vdev null)]\n"
                 "                         [--csv FILE] [--tag NAME] (and the options above)\n"
                 "\n"
                 "       lm-bench sweep fastpath|resolve|handover --csv FILE [--quick] [...] (lm-bench sweep --help)\n"
                 "runs the parameter grid, one child process per point, appending a CSV row per point.\n"
                 "\n"
                 "       lm-bench resolve [--nodes N] [--records N] [--lookups N] [--publishers N] [--seed N]\n"
                 "                        [--concurrency N] [--pace-ms N] [--poll-us N] [--timeout-ms N] [--lcore N] [--no-watch]\n"
                 "                        [--key-type ed25519|rsa2048|rsa3072|rsa4096]\n"
                 "                        [--publish-window N] [--csv FILE] [--tag NAME] [--eal EAL-ARGS...]\n"
                 "miss -> answer applied in the worker cache, over an in-process LM DHT of N nodes on 127.0.0.1\n"
                 "(defaults: 32 nodes, 10000 records, 1000 sequential lookups, then 1000 with 64 outstanding).\n"
                 "\n"
                 "       lm-bench handover [--ars N] [--moves N] [--seed N] [--poll-us N] (more: lm-bench handover --help)\n"
                 "attach -> every AR's cache updated, N router control planes on an in-process LM DHT (bench/handover_bench.cpp).\n");
    std::exit(2);
}

// A CSV row of the fast path: parameters, figures, the machine.
struct FpRow {
    const char* workload = "encap";
    uint32_t mos = 0, cache = 0;
    double base = 0, path = 0, path_mpps = 0, base_mpps = 0, others_busy = -1;
    unsigned clean = 0, trials = 0;
};
void write_fp_csv(const Options& o, const RunInfo& ri, const FpRow& r, const char* tag, double hz, bool has_huge) {
    if (o.csv.empty()) return;
    std::map<std::string, std::string> v = {
        {"sweep", tag},
        {"workload", r.workload},
        {"vdev", o.ring ? "ring" : "null"},
        {"mos", std::to_string(r.mos)},
        {"cache_entries", std::to_string(r.cache)},
        {"burst", std::to_string(o.shape.burst)},
        {"frame", std::to_string(o.shape.frame)},
        {"inner", fam_name(o.shape.inner)},
        {"outer", fam_name(o.shape.outer)},
        {"workers", std::to_string(o.workers)},
        {"baseline_cycles", fmt_num(r.base, 1)},
        {"path_cycles", fmt_num(r.path, 1)},
        {"delta_cycles", fmt_num(r.path - r.base, 1)},
        {"ratio", fmt_num(r.base / r.path, 3)},
        {"path_mpps", fmt_num(r.path_mpps, 2)},
        {"baseline_mpps", fmt_num(r.base_mpps, 2)},
        {"clean_trials", std::to_string(r.clean)},
        {"trials", std::to_string(r.trials)},
        {"others_busy_pct", r.others_busy < 0 ? "" : fmt_num(r.others_busy, 1)},
        {"hugepages", has_huge ? "true" : "false"},
        {"tsc_mhz", fmt_num(hz / 1e6, 0)},
    };
    ri.add_to(v);
    if (!csv_append(o.csv, kFastpathCsvHeader, v)) die("cannot append to " + o.csv);
}

// The workloads, in the order baseline, baseline on LM frames, hot, decap, 1M, baseline again.
template <class B, class Line>
void run_all(const Options& o, B& b, double hz, bool has_huge, const RunInfo& ri, Line&& line) {
    b.load(kHotMos);
    Result base1 = measure(o, [&] { return b.template baseline_round<Kind::Access>(); });
    line("baseline (access frames)", base1, nullptr);

    b.load(0);
    Result base_core = measure(o, [&] { return b.template baseline_round<Kind::Core>(); });
    line("baseline (LM frames)", base_core, nullptr);

    // Hot and decap: the default cache size (65536 entries).
    auto w = b.make_worker(65536, Kind::Access);
    Bench::add_mappings(*w, kHotMos);
    Bench::add_attachments(*w);
    b.load(kHotMos);
    Snap s0 = snap(w->counters());
    Result hot = measure(o, [&] { return b.template path_round<Kind::Access>(*w); });
    line("encap hot (10k MOs)", hot, &base1);
    check("encap_hot", w->counters(), s0, hot.packets, false);
    w.reset();

    w = b.make_worker(65536, Kind::Core);
    Bench::add_mappings(*w, kHotMos);
    Bench::add_attachments(*w);
    b.load(0);
    s0 = snap(w->counters());
    Result dec = measure(o, [&] { return b.template path_round<Kind::Core>(*w); });
    line("decap (1k MOs)", dec, &base1);
    check("decap", w->counters(), s0, dec.packets, true);
    w.reset();

    // 1M: a cache sized for it.
    std::printf("populating %u cache entries (capacity %u)...\n", kBigMos, kBigCacheEntries);
    std::fflush(stdout);
    const uint64_t p0 = rte_rdtsc();
    auto wb = b.make_worker(kBigCacheEntries, Kind::Access);
    Bench::add_mappings(*wb, kBigMos);
    std::printf("  %u entries in %.2f s\n", wb->path().cache().size(), double(rte_rdtsc() - p0) / hz);
    b.load(kBigMos);
    s0 = snap(wb->counters());
    Result big = measure(o, [&] { return b.template path_round<Kind::Access>(*wb); });
    line("encap 1M MOs", big, &base1);
    check("encap_1m", wb->counters(), s0, big.packets, false);
    wb.reset();

    b.load(kHotMos);
    Result base2 = measure(o, [&] { return b.template baseline_round<Kind::Access>(); });
    line("baseline again", base2, nullptr);

    // The baseline is the mean of the first and last baseline medians (drift printed).
    Result base = base1;
    base.median = (base1.median + base2.median) / 2;
    std::printf("baseline used: %.1f cycles/pkt (first %.1f, last %.1f); decap vs LM-frame baseline: ratio %.3f\n", base.median,
                base1.median, base2.median, base_core.median / dec.median);
    std::printf("targets: encap_hot_ratio %.3f (>= 0.6 %s), decap_ratio %.3f (>= 0.7 %s), encap_1m - baseline %.1f cycles (<= 130 %s)\n",
                base.median / hot.median, base.median / hot.median >= 0.6 ? "met" : "MISSED", base.median / dec.median,
                base.median / dec.median >= 0.7 ? "met" : "MISSED", big.median - base.median,
                big.median - base.median <= 130 ? "met" : "MISSED");
    std::printf("vdev: %s\n", o.ring ? "ring (net_ring ports, rte_eth_from_rings; the bench plays the NIC)"
                                     : "null (net_null ports, copy=0: rx allocates from the mempool, tx frees)");
    std::printf(
        "{\"bench\":\"fastpath\",\"baseline_cycles\":%.1f,\"encap_hot_cycles\":%.1f,\"encap_1m_cycles\":%.1f,\"decap_cycles\":%.1f,"
        "\"encap_hot_ratio\":%.3f,\"encap_1m_ratio\":%.3f,\"decap_ratio\":%.3f,\"baseline_mpps\":%.2f,\"hugepages\":%s}\n",
        base.median, hot.median, big.median, dec.median, base.median / hot.median, base.median / big.median,
        base.median / dec.median, hz / base.median / 1e6, has_huge ? "true" : "false");
    std::fflush(stdout);
    // --csv: the three workloads as rows of the "fixed" sweep, against the access-frame baseline.
    auto row = [&](const char* wl, uint32_t mos, uint32_t cache, const Result& r) {
        FpRow x;
        x.workload = wl;
        x.mos = mos;
        x.cache = cache;
        x.base = base.median;
        x.path = r.median;
        x.path_mpps = hz / r.median / 1e6;
        x.base_mpps = hz / base.median / 1e6;
        x.clean = r.clean;
        x.trials = r.trials;
        write_fp_csv(o, ri, x, "fixed", hz, has_huge);
    };
    row("encap", kHotMos, 65536, hot);
    row("decap", kDecapMos, 65536, dec);
    row("encap", kBigMos, kBigCacheEntries, big);
}

// The cache of an encap point: --cache, or room for its MOs + 10 % (at least the default 65536).
uint32_t point_cache_entries(const Options& o) {
    return o.cache_entries ? o.cache_entries : std::max<uint32_t>(65536, o.mos + o.mos / 10);
}

// One sweep point: the baseline on the workload's frames (access frames for encap, LM frames for
// decap: unlike the fixed run's decap_ratio), the workload, the baseline again; on o.workers
// lcores at once, each its own worker and queue (per-worker figures averaged, Mpps summed).
template <Kind K, class B, class Line>
void run_point(const Options& o, B& b, double hz, bool has_huge, const RunInfo& ri, Line&& line) {
    constexpr bool dec = K == Kind::Core;
    const unsigned nw = o.workers;
    const uint32_t mos = dec ? 0 : o.mos;
    const uint32_t cache = dec ? 65536 : point_cache_entries(o);
    cpu_set_t mine;  // the CPUs of the bench's lcores: the others' load is reported
    CPU_ZERO(&mine);
    unsigned lc;
    RTE_LCORE_FOREACH(lc) {
        const rte_cpuset_t cs = rte_lcore_cpuset(lc);
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &cs)) CPU_SET(c, &mine);
    }
    const CpuTimes ct0 = CpuTimes::read();
    auto base_round = [&](unsigned q) { return b.template baseline_round<K>(uint16_t(q)); };

    b.load(mos);
    const auto base1 = measure_on(o, nw, base_round);
    for (unsigned q = 0; q < nw; ++q) line(("baseline, worker " + std::to_string(q)).c_str(), base1[q], nullptr);

    std::vector<std::unique_ptr<Worker>> ws;
    if (!dec) std::printf("populating %u MOs per worker (cache capacity %u)...\n", o.mos, cache);
    std::fflush(stdout);
    const uint64_t p0 = rte_rdtsc();
    for (unsigned q = 0; q < nw; ++q) {
        ws.push_back(b.make_worker(cache, K, q));
        Bench::add_mappings(*ws[q], dec ? kHotMos : o.mos, o.shape);
        Bench::add_attachments(*ws[q]);
    }
    if (!dec) std::printf("  %u entries in %.2f s\n", ws[0]->path().cache().size(), double(rte_rdtsc() - p0) / hz);
    b.load(mos);
    std::vector<Snap> s0;
    for (auto& w : ws) s0.push_back(snap(w->counters()));
    const auto path = measure_on(o, nw, [&](unsigned q) { return b.template path_round<K>(*ws[q]); });
    for (unsigned q = 0; q < nw; ++q) {
        line(((dec ? "decap" : "encap") + std::string(", worker ") + std::to_string(q)).c_str(), path[q], &base1[q]);
        check(dec ? "decap" : "encap", ws[q]->counters(), s0[q], path[q].packets, dec);
    }
    ws.clear();

    b.load(mos);
    const auto base2 = measure_on(o, nw, base_round);
    for (unsigned q = 0; q < nw; ++q) line(("baseline again, worker " + std::to_string(q)).c_str(), base2[q], nullptr);
    const double others = CpuTimes::others_busy_pct(ct0, CpuTimes::read(), mine);

    FpRow r;
    r.workload = dec ? "decap" : "encap";
    r.mos = dec ? kDecapMos : o.mos;
    r.cache = cache;
    r.others_busy = others;
    for (unsigned q = 0; q < nw; ++q) {
        const double bq = (base1[q].median + base2[q].median) / 2;
        r.base += bq / nw;
        r.path += path[q].median / nw;
        r.path_mpps += hz / path[q].median / 1e6;
        r.base_mpps += hz / bq / 1e6;
        r.clean += path[q].clean;
        r.trials += path[q].trials;
    }
    std::printf("point: %s, %u MOs, burst %u, %u-byte frames, inner %s, outer %s, %u worker(s): baseline %.1f, path %.1f"
                " cycles/pkt (+%.1f), %.2f Mpps (baseline %.2f); other CPUs %.0f %% busy, load average %s\n",
                r.workload, r.mos, o.shape.burst, unsigned(o.shape.frame), fam_name(o.shape.inner), fam_name(o.shape.outer), nw,
                r.base, r.path, r.path - r.base, r.path_mpps, r.base_mpps, others, loadavg().c_str());
    std::printf("{\"bench\":\"fastpath_point\",\"workload\":\"%s\",\"vdev\":\"%s\",\"mos\":%u,\"cache_entries\":%u,\"burst\":%u,"
                "\"frame\":%u,\"inner\":\"%s\",\"outer\":\"%s\",\"workers\":%u,\"baseline_cycles\":%.1f,\"path_cycles\":%.1f,"
                "\"delta_cycles\":%.1f,\"ratio\":%.3f,\"path_mpps\":%.2f,\"baseline_mpps\":%.2f,\"hugepages\":%s}\n",
                r.workload, o.ring ? "ring" : "null", r.mos, cache, o.shape.burst, unsigned(o.shape.frame), fam_name(o.shape.inner),
                fam_name(o.shape.outer), nw, r.base, r.path, r.path - r.base, r.base / r.path, r.path_mpps, r.base_mpps,
                has_huge ? "true" : "false");
    std::fflush(stdout);
    write_fp_csv(o, ri, r, o.tag.empty() ? "point" : o.tag.c_str(), hz, has_huge);
}

// EAL memory (MB) a point needs: its workers' locator caches (rte_hash keys 48 B, buckets and
// extendable buckets, free-slot ring, one 64-byte line per value: ~190 B an entry, rounded up)
// plus pools, rings and attachment tables. The fixed workloads fit in the default 1024.
uint64_t point_memory_mb(const Options& o) {
    if (!o.point || o.decap) return 0;
    return 256 + uint64_t(o.workers) * point_cache_entries(o) * 200 / (1 << 20);
}

int fastpath(Options o) {
    const RunInfo ri = RunInfo::now();
    // Hugepages if a hugetlbfs is mounted with at least 512 MB free (and what the point needs),
    // else anonymous memory.
    const HugeInfo hi = huge_info();
    const uint64_t need_mb = point_memory_mb(o);
    bool huge = o.huge == 1 || (o.huge == -1 && hi.mounted && hi.free_mb >= std::max<uint64_t>(512, need_mb));
    if (o.huge == -1 && !huge && need_mb > 1024)
        std::printf("memory: %" PRIu64 " MB needed, %" PRIu64 " MB of hugepages free: running without hugepages\n", need_mb, hi.free_mb);
    std::string lcores = std::to_string(o.lcore);
    for (unsigned q = 1; q < o.workers; ++q) lcores += "," + std::to_string(o.lcore + q);
    std::vector<std::string> args = {"lm-bench", "-l", lcores, "--no-pci", "--log-level=lib.eal:error", "--no-telemetry"};
    if (huge) {
        const uint64_t mb = std::max<uint64_t>(need_mb, std::min<uint64_t>(1024, hi.free_mb));
        args.insert(args.end(), {"--in-memory", "-m", std::to_string(mb)});
    } else {
        args.insert(args.end(), {"--no-huge", "--no-shconf", "-m", std::to_string(std::max<uint64_t>(2048, need_mb))});
    }
    if (!o.ring) {
        auto v = null_vdev_args(o.shape);
        args.insert(args.end(), v.begin(), v.end());
    }
    args.insert(args.end(), o.eal.begin(), o.eal.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::printf("lm-bench fastpath: EAL");
    for (size_t i = 1; i < args.size(); ++i) std::printf(" %s", args[i].c_str());
    std::printf("\n");
    std::fflush(stdout);
    if (rte_eal_init(int(argv.size()), argv.data()) < 0) die("EAL initialisation failed");
    struct EalCleanup {
        ~EalCleanup() { rte_eal_cleanup(); }
    } eal_cleanup;  // after every DPDK object below is gone
    const bool has_huge = rte_eal_has_hugepages() != 0;

    const double hz = double(rte_get_tsc_hz());
    std::printf("cpu: %s, lcore %u, TSC %.0f MHz, hugepages: %s, THP: %s\n", cpu_model().c_str(), rte_lcore_id(), hz / 1e6,
                has_huge ? "yes" : "no", thp_mode().c_str());
    if (o.ring)
        std::printf("setup: vdev ring: %u access ports (tenants 1-%u) + 1 core port, all net_ring; burst %u; %u mbufs in flight;\n",
                    kAccessPorts, kAccessPorts, o.shape.burst, kSlots);
    else
        std::printf("setup: vdev null: %u access ports (tenants 1-%u) + 1 core port, all net_null (copy=0; the ports not\n"
                    "       receiving in a workload are no-rx=1 vdevs); burst %u; refill in an rx callback;\n",
                    kAccessPorts, kAccessPorts, kBurst);
    std::printf("       %u-byte access frames, %u/%u-byte LM frames; %" PRIu64 " packets x %u trials per workload after %" PRIu64
                " warm-up\n",
                unsigned(o.shape.frame), core_frame_max(o.shape.frame) - 20, core_frame_max(o.shape.frame), o.packets, o.trials,
                o.warmup);
    if (o.workers > 1)
        std::printf("       %u workers: worker q polls queue q of every port on lcore %u + q (worker 0 on the main lcore);"
                    " no control lcore\n",
                    o.workers, o.lcore);
    std::fflush(stdout);

    {
        auto pool = make_pktmbuf_pool("lmb_pool", 2 * kSlots - 1, int(rte_socket_id()));
        auto line = [&](const char* name, const Result& r, const Result* base) {
            std::printf("%-26s: %7.1f cycles/pkt (clean trials %u/%u: min %.1f, max %.1f)  %6.2f Mpps", name, r.median, r.clean, r.trials,
                        r.min, r.max, hz / r.median / 1e6);
            if (base) std::printf("  ratio %.3f  +%.1f cycles", base->median / r.median, r.median - base->median);
            std::printf("\n");
            std::fflush(stdout);
        };
        // A point that cannot run (a cache that does not fit in EAL's memory) still leaves a row.
        auto point = [&](auto& b) {
            try {
                if (o.decap) run_point<Kind::Core>(o, b, hz, has_huge, ri, line);
                else run_point<Kind::Access>(o, b, hz, has_huge, ri, line);
            } catch (const std::exception& e) {
                if (!o.csv.empty()) {
                    std::map<std::string, std::string> v = {{"sweep", o.tag.empty() ? "point" : o.tag},
                                                            {"workload", o.decap ? "decap" : "encap"},
                                                            {"vdev", o.ring ? "ring" : "null"},
                                                            {"mos", std::to_string(o.decap ? kDecapMos : o.mos)},
                                                            {"cache_entries", std::to_string(point_cache_entries(o))},
                                                            {"burst", std::to_string(o.shape.burst)},
                                                            {"frame", std::to_string(o.shape.frame)},
                                                            {"inner", fam_name(o.shape.inner)},
                                                            {"outer", fam_name(o.shape.outer)},
                                                            {"workers", std::to_string(o.workers)},
                                                            {"hugepages", has_huge ? "true" : "false"}};
                    ri.add_to(v, std::string("error: ") + e.what());
                    csv_append(o.csv, kFastpathCsvHeader, v);
                }
                die(std::string("point: ") + e.what());
            }
        };
        if (o.ring) {
            Bench b(pool.get(), o.shape);
            if (!o.only.empty()) return profile_one(o, b, o.only, line);
            if (o.point) point(b);
            else run_all(o, b, hz, has_huge, ri, line);
        } else {
            NullBench b(pool.get(), o.shape, o.workers);
            if (o.only.empty() && !o.point) {
                // What the vdev itself costs: the baseline's rx -> tx without the refill.
                b.load(kHotMos);
                line("vdev alone (no refill)", measure(o, [&] { return b.baseline_round<Kind::Access>(); }), nullptr);
            }
            b.attach_refill();
            if (!o.only.empty()) return profile_one(o, b, o.only, line);
            if (o.point) point(b);
            else run_all(o, b, hz, has_huge, ri, line);
        }
    }
    return 0;
}

// ---- resolve: miss -> answer applied in the worker cache, over an in-process LM DHT ----------
//
//   lm-bench resolve [--nodes N] [--records N] [--lookups N] [--publishers N] [--seed N]
//                    [--concurrency N] [--pace-ms N] [--poll-us N] [--timeout-ms N] [--lcore N] [--no-watch]
//
// N DHT nodes on 127.0.0.1 (node 0 the bootstrap node, nodes 1..P the publishing ARs, the rest
// read-only directories that serve as storage nodes), plus the router: one more directory with
// its own AR identity, handed to a real ControlPlane with one fake worker (its update ring is
// drained into a LocatorCache, as the worker's PacketPath::apply does). The publishers put
// `records` records (tenant 1, one EID each in 2001:db8:ff::/48, locator 198.51.100.x); then each
// lookup enqueues a MissMsg on the control plane's miss ring and runs the control loop (poll,
// sleep poll-us, as ControlPlane::run does) until the EID's mapping is in the worker's cache.
// See docs/benchmarks.md.

struct ResolveOptions {
    unsigned nodes = 32;
    uint32_t records = 10'000;
    uint32_t lookups = 1'000;
    unsigned publishers = 4;
    uint64_t seed = kSeed;
    unsigned lcore = 0;
    unsigned poll_us = 200;          // the control loop's sleep between rounds (ControlPlane::run)
    unsigned timeout_ms = 5'000;     // a lookup not answered by then is failed
    unsigned concurrency = 64;       // second phase: misses outstanding at once (0 = skip it)
    unsigned pace_ms = 0;            // sequential phase: pause between lookups (control loop keeps running)
    unsigned publish_window = 256;   // publications in flight during set-up
    bool watch = true;               // the control plane watches resolved EIDs (max_watches)
    dir::KeyType key_type;           // the CA's and the ARs' keys (Ed25519 by default)
    bool network_anywhere = false;   // the other nodes may also run on the control lcore's CPU
    std::vector<std::string> eal;
    std::string csv, tag;            // --csv FILE: append a row (before the teardown); --tag: its "sweep" column
};

constexpr uint32_t kResolveNetworkId = 0x4C4DBE01;  // apart from the tests' DHT on the same host
constexpr TenantId kResolveTenant = 1;

using SteadyClock = std::chrono::steady_clock;

double secs_since(SteadyClock::time_point t0) { return std::chrono::duration<double>(SteadyClock::now() - t0).count(); }

IpAddr resolve_eid(uint32_t i) {  // 2001:db8:ff::/48 + i + 1
    IpAddr a = ip("2001:db8:ff::");
    const uint32_t be = rte_cpu_to_be_32(i + 1);
    std::memcpy(a.b.data() + 12, &be, 4);
    return a;
}
MoId resolve_mo(uint32_t i) { return 0x4C4D'BE00'0000'0000ull | i; }
IpAddr publisher_loc4(unsigned p) {  // 198.51.100.10 + p
    IpAddr a = ip("198.51.100.10");
    a.b[3] = uint8_t(10 + p);
    return a;
}

dir::Record resolve_record(uint32_t i, unsigned publisher) {
    dir::Record r;
    r.mo = resolve_mo(i);
    r.tenant = kResolveTenant;
    r.eids = {resolve_eid(i)};
    r.mac = MacAddr{{0x02, 0xdb, 0x00, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)}};
    r.loc4 = publisher_loc4(publisher);
    return r;
}

dir::DhtConfig resolve_node_config(uint16_t bootstrap_port) { return loopback_dht_config(bootstrap_port, kResolveNetworkId); }


struct EidKeyHash {
    size_t operator()(const EidKey& k) const noexcept {
        return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&k), sizeof k));
    }
};


const char* kResolveRouterYaml = R"(
locators: { v4: 198.51.100.1 }
gateway: { ipv4: 192.0.2.1, ipv6: 2001:db8:1::1, mac: 02:00:5e:00:00:01 }
ports:
  - { name: access0, device: net_null0, role: access, tenant: 1 }
  - { name: core0, device: net_null1, role: core }
core: { next_hop: { ipv4: 198.51.100.254, mac: 02:00:00:00:0f:fe } }
mobile_prefixes: [2001:db8:ff::/48]
peer_prefixes: [198.51.100.0/24]
)";

// The fake worker: what Worker/PacketPath::apply does with the control plane's updates, on the
// locator cache only (no packets wait in this bench).
struct FakeWorker {
    RingPtr updates, tx;
    WorkerCounters counters;
    LocatorCache cache;
    uint64_t upserts = 0, upsert_failed = 0, miss_failed = 0, other = 0;

    explicit FakeWorker(int socket)
        : updates(make_spsc_ring("lmr_upd0", sizeof(UpdateMsg), Worker::kUpdateRingSize, socket)),
          tx(make_spsc_ring("lmr_ctx0", sizeof(rte_mbuf*), Worker::kTxRingSize, socket)),
          cache("lmr_cache0", 65536, socket) {}

    // Applies every queued update; on_failed(key) for each MissFailed.
    template <class F>
    void drain(F&& on_failed) {
        UpdateMsg u[32];
        unsigned n;
        while ((n = rte_ring_dequeue_burst_elem(updates.get(), u, sizeof(UpdateMsg), 32, nullptr)) > 0) {
            for (unsigned i = 0; i < n; ++i) {
                switch (u[i].op) {
                    case UpdateOp::UpsertMapping:
                        ++upserts;
                        if (!cache.upsert(u[i].key, u[i].value)) ++upsert_failed;
                        break;
                    case UpdateOp::DeleteMapping: cache.erase(u[i].key); break;
                    case UpdateOp::MissFailed:
                        ++miss_failed;
                        on_failed(u[i].key);
                        break;
                    default: ++other; break;
                }
            }
        }
        rte_mbuf* m[32];  // control packets (none expected: the next hop MAC is static)
        while ((n = rte_ring_dequeue_burst_elem(tx.get(), m, sizeof(rte_mbuf*), 32, nullptr)) > 0)
            for (unsigned i = 0; i < n; ++i) rte_pktmbuf_free(m[i]);
    }
};

struct LatencyStats {
    std::vector<double> us;  // completed lookups
    uint64_t failed = 0, timeouts = 0, not_found = 0, wrong = 0;
    void sort() { std::sort(us.begin(), us.end()); }
};

void print_latency(const char* name, LatencyStats& s, double wall_s) {
    s.sort();
    double mean = 0;
    for (double v : s.us) mean += v;
    if (!s.us.empty()) mean /= double(s.us.size());
    std::printf("%s: %zu answered, %" PRIu64 " failed (timeout %" PRIu64 ", not found %" PRIu64 ", wrong %" PRIu64
                "); us: min %.0f p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f max %.0f mean %.0f; %.1f s, %.0f lookups/s\n",
                name, s.us.size(), s.failed, s.timeouts, s.not_found, s.wrong, s.us.empty() ? 0 : s.us.front(),
                percentile(s.us, 50), percentile(s.us, 90), percentile(s.us, 99), percentile(s.us, 99.9),
                s.us.empty() ? 0 : s.us.back(), mean, wall_s, double(s.us.size() + s.failed) / std::max(wall_s, 1e-9));
    std::fflush(stdout);
}


int resolve_bench(const ResolveOptions& o) {
    const auto t_start = SteadyClock::now();
    const RunInfo ri = RunInfo::now();
    double join_s = 0, publish_s = 0;
    if (o.nodes < 2) die("--nodes must be at least 2");
    const unsigned P = std::max(1u, std::min(o.publishers, o.nodes - 1));
    if (o.lookups > o.records) die("--lookups must not exceed --records (every lookup is a distinct EID)");

    const cpu_set_t all_cpus = thread_affinity();
    if (!start_eal("resolve", o.lcore, o.eal)) die("EAL initialisation failed");
    EalCleanup eal_cleanup;
    const cpu_set_t control_cpus = thread_affinity();  // EAL pinned this (main) thread to the lcore
    std::printf("cpu: %s, %d online, control lcore %u, load average %s; DHT: %u nodes + the router's, %u publishers,"
                " %u records, %u lookups, poll %u us, seed %#" PRIx64 "\n",
                cpu_model().c_str(), CPU_COUNT(&all_cpus), rte_lcore_id(), loadavg().c_str(), o.nodes, P, o.records,
                o.lookups, o.poll_us, o.seed);
    std::fflush(stdout);

    // ---- PKI: one domain CA, an AR identity per publisher and one for the router -----------
    auto t = SteadyClock::now();
    const auto ca = dir::create_domain_ca("lm-bench-domain-ca", o.key_type);
    std::vector<::dht::crypto::Identity> pub_ids;
    for (unsigned p = 0; p < P; ++p)
        pub_ids.push_back(dir::issue_ar_identity(ca, "bench-ar" + std::to_string(p + 1), o.key_type));
    auto router_id = dir::issue_ar_identity(ca, "bench-router", o.key_type);
    std::printf("pki: CA + %u AR identities (%s) in %.2f s\n", P + 1, o.key_type.str().c_str(), secs_since(t));
    std::fflush(stdout);

    // ---- the DHT ----------------------------------------------------------------------------
    // The other nodes stand for other machines: their threads may run on every CPU. The router's
    // directory is created on the control lcore, as lm-router does, so its OpenDHT threads
    // inherit the control core's affinity.
    t = SteadyClock::now();
    std::vector<std::unique_ptr<dir::Directory>> nodes;
    uint16_t port0 = 0;
    // They run on the CPUs the control lcore does not use (every CPU if it is the only one): on
    // a small machine they would otherwise steal the router's core, which other machines do not.
    cpu_set_t network_cpus = all_cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &control_cpus)) CPU_CLR(c, &network_cpus);
    if (CPU_COUNT(&network_cpus) == 0 || o.network_anywhere) network_cpus = all_cpus;
    set_thread_affinity(network_cpus);
    for (unsigned i = 0; i < o.nodes; ++i) {
        std::optional<::dht::crypto::Identity> id;
        if (i >= 1 && i <= P) id = pub_ids[i - 1];
        nodes.push_back(std::make_unique<dir::Directory>(resolve_node_config(port0), ca.second, id));
        if (i == 0) port0 = nodes[0]->bound_port();
    }
    set_thread_affinity(control_cpus);
    auto router_dir = std::make_unique<dir::Directory>(resolve_node_config(port0), ca.second, router_id);
    // Connected: every node knows a good part of the network (a small network's routing tables
    // stay partial until searches run: half of it is enough).
    const size_t want_known = std::min<size_t>(8, (o.nodes + 1) / 2);
    auto min_known = [&] {
        size_t m = router_dir->known_nodes();
        for (auto& n : nodes) m = std::min(m, n->known_nodes());
        return m;
    };
    // The early nodes joined a smaller network, and OpenDHT only slowly learns nodes it has no
    // traffic with: once everyone is up, every node (the router too) also pings the 8 nodes after
    // it in creation order, as a long-running network would have met them.
    {
        std::vector<dir::Directory*> all;
        for (auto& n : nodes) all.push_back(n.get());
        all.push_back(router_dir.get());
        auto loopback = [](uint16_t port) {
            sockaddr_in sin{};
            sin.sin_family = AF_INET;
            sin.sin_port = htons(port);
            sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return ::dht::SockAddr(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
        };
        for (size_t i = 0; i < all.size(); ++i) {
            std::vector<::dht::SockAddr> peers;  // pinged (a host:port bootstrap is ignored once connected)
            for (size_t d = 1; d <= std::min<size_t>(8, all.size() - 1); ++d)
                peers.push_back(loopback(all[(i + d) % all.size()]->bound_port()));
            all[i]->runner().bootstrap(std::move(peers));
        }
    }
    const auto join_deadline = SteadyClock::now() + std::chrono::seconds(60);
    auto last_join_print = SteadyClock::now();
    while (min_known() < want_known && SteadyClock::now() < join_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (secs_since(last_join_print) >= 5) {
            last_join_print = SteadyClock::now();
            std::printf("  dht: joining, %.0f s: the least connected node knows %zu nodes (want %zu)\n", secs_since(t),
                        min_known(), want_known);
            std::fflush(stdout);
        }
    }
    if (min_known() < want_known)
        std::printf("dht: WARNING: after 60 s a node knows only %zu nodes (wanted %zu); going on\n", min_known(), want_known);
    join_s = secs_since(t);
    std::printf("dht: %u nodes + router up on 127.0.0.1 in %.2f s (every node knows >= %zu; router knows %zu)\n", o.nodes,
                join_s, min_known(), router_dir->known_nodes());
    std::fflush(stdout);

    // ---- publish ------------------------------------------------------------------------------
    t = SteadyClock::now();
    {
        std::vector<uint8_t> state(o.records, 0);  // 0 to do, 1 in flight, 2 stored, 3 given up
        std::vector<uint8_t> tries(o.records, 0);
        std::deque<uint32_t> redo;
        uint32_t next = 0, stored = 0, given_up = 0, inflight = 0;
        uint64_t put_failed = 0;
        auto last_print = SteadyClock::now();
        const auto deadline = SteadyClock::now() + std::chrono::seconds(900);
        while (stored + given_up < o.records) {
            while (inflight < o.publish_window && (!redo.empty() || next < o.records)) {
                uint32_t i;
                if (!redo.empty()) i = redo.front(), redo.pop_front();
                else i = next++;
                const unsigned p = i % P;
                nodes[1 + p]->publish(resolve_record(i, p));
                state[i] = 1;
                ++tries[i];
                ++inflight;
            }
            size_t got = 0;
            for (unsigned p = 0; p < P; ++p)
                got += nodes[1 + p]->poll([&](dir::Event&& ev) {
                    if (ev.type != dir::Event::Type::Published) return;
                    const uint32_t i = uint32_t(ev.cookie & 0xFFFFFFFFu);
                    if (i >= o.records || state[i] != 1) return;
                    --inflight;
                    if (ev.ok) {
                        state[i] = 2;
                        ++stored;
                    } else if (++put_failed, tries[i] < 4) {
                        state[i] = 0;
                        redo.push_back(i);
                    } else {
                        state[i] = 3;
                        ++given_up;
                    }
                });
            if (SteadyClock::now() > deadline) die("publishing did not finish within 900 s");
            if (secs_since(last_print) >= 5) {
                last_print = SteadyClock::now();
                std::printf("  publish: %u/%u stored, %u in flight, %" PRIu64 " incomplete puts retried (%.0f s)\n", stored,
                            o.records, inflight, put_failed, secs_since(t));
                std::fflush(stdout);
            }
            if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        publish_s = secs_since(t);
        std::printf("publish: %u records (%u keys each: EID + MAC) stored in %.2f s (%.0f records/s); %" PRIu64
                    " publications with an incomplete put retried, %u given up\n",
                    stored, 2u, secs_since(t), stored / std::max(secs_since(t), 1e-9), put_failed, given_up);
        std::fflush(stdout);
    }

    // ---- the router: control plane + one fake worker ---------------------------------------
    const int socket = int(rte_socket_id());
    Config cfg = load_config_string(kResolveRouterYaml, "<lm-bench resolve>");
    cfg.dht = DhtSettings{};
    cfg.dht->max_watches = o.watch ? std::max<uint32_t>(4096, 2 * o.lookups + 16) : 0;
    auto pool = make_pktmbuf_pool("lmr_pool", 1023, socket);
    auto miss_ring = make_mpsc_ring("lmr_miss", sizeof(MissMsg), 4096, socket);
    auto punt_ring = make_mpsc_ring("lmr_punt", sizeof(PuntMsg), 1024, socket);
    FakeWorker fw(socket);
    std::vector<PortRuntime> ports{{0, mac(0, 0, 0x0a, 0)}, {1, mac(0, 0, 0x0c, 0)}};
    std::vector<WorkerHandle> handles{{fw.updates.get(), fw.tx.get(), &fw.counters}};
    auto cp = std::make_unique<ControlPlane>(cfg, ports, handles, pool.get(), miss_ring.get(), punt_ring.get(),
                                             router_dir.get());
    cp->start();
    fw.drain([](const EidKey&) {});
    std::printf("router: directory '%s' knows %zu nodes; control plane with 1 worker, cache %u entries, max_watches %u\n",
                router_dir->name().c_str(), router_dir->known_nodes(), fw.cache.capacity(), cfg.dht->max_watches);
    std::fflush(stdout);

    // The lookups: distinct EIDs in a seeded random order.
    std::vector<uint32_t> order(o.records);
    for (uint32_t i = 0; i < o.records; ++i) order[i] = i;
    Rng rng{o.seed ? o.seed : kSeed};
    for (uint32_t i = o.records; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);

    auto expected_locator = [&](uint32_t i) { return publisher_loc4(i % P); };
    auto sleep_round = [&] {  // ControlPlane::run's back-off: woken early by a DHT answer
        if (o.poll_us) cp->idle_wait(std::chrono::microseconds(o.poll_us));
    };
    const auto timeout = std::chrono::milliseconds(o.timeout_ms);

    // CPU seconds this process (every DHT node, the router, the control loop) used.
    auto process_cpu_s = [] {
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    };
    // The DHT at rest, before any lookup: what its nodes burn with nothing asked of them.
    {
        const double c0 = process_cpu_s();
        const auto w0 = SteadyClock::now();
        for (int k = 0; k < 200; ++k) {
            cp->poll();
            rte_delay_us_sleep(5000);
        }
        std::printf("idle: the DHT at rest uses %.2f CPUs (1 s sample)\n", (process_cpu_s() - c0) / secs_since(w0));
        std::fflush(stdout);
    }

    // ---- sequential: one miss at a time ------------------------------------------------------
    LatencyStats seq;
    t = SteadyClock::now();
    const double seq_cpu0 = process_cpu_s();
    for (uint32_t n = 0; n < o.lookups; ++n) {
        // --pace-ms: let the previous lookup's leftover DHT work (the rest of its search, the
        // watch) finish before the next miss, as misses spread over time would.
        for (const auto p0 = SteadyClock::now(); o.pace_ms && SteadyClock::now() - p0 < std::chrono::milliseconds(o.pace_ms);) {
            cp->poll();
            fw.drain([](const EidKey&) {});
            sleep_round();
        }
        const uint32_t i = order[n];
        const EidKey key = EidKey::make(kResolveTenant, resolve_eid(i));
        bool failed = false;
        MissMsg mm{};
        mm.key = key;
        mm.worker = 0;
        const auto t0 = SteadyClock::now();
        if (rte_ring_enqueue_elem(miss_ring.get(), &mm, sizeof mm) != 0) die("miss ring full");
        for (;;) {
            cp->poll();
            fw.drain([&](const EidKey& k) {
                if (k == key) failed = true;
            });
            if (const MappingValue* v = fw.cache.lookup(key)) {
                const auto t1 = SteadyClock::now();
                if (v->mo_id == resolve_mo(i) && v->locator == expected_locator(i)) {
                    seq.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
                } else {
                    ++seq.wrong, ++seq.failed;
                }
                break;
            }
            if (failed) {
                ++seq.not_found, ++seq.failed;
                break;
            }
            if (SteadyClock::now() - t0 > timeout) {
                ++seq.timeouts, ++seq.failed;
                break;
            }
            sleep_round();
        }
        if ((n + 1) % 100 == 0 || n + 1 == o.lookups) {
            std::vector<double> v = seq.us;
            std::sort(v.begin(), v.end());
            std::printf("  lookups: %u/%u, failed %" PRIu64 ", p50 %.0f us, p99 %.0f us, max %.0f us so far\n", n + 1,
                        o.lookups, seq.failed, percentile(v, 50), percentile(v, 99), v.empty() ? 0 : v.back());
            std::fflush(stdout);
        }
    }
    const double seq_s = secs_since(t);
    print_latency("sequential (1 miss outstanding)", seq, seq_s);
    const double seq_cpus = (process_cpu_s() - seq_cpu0) / seq_s;
    std::printf("  the process used %.2f CPUs during the sequential lookups\n", seq_cpus);

    // ---- concurrent: `concurrency` misses outstanding, fresh EIDs ----------------------------
    const uint32_t conc_n = std::min<uint32_t>(o.lookups, o.records - o.lookups);
    if (o.concurrency && conc_n) {
        struct Pending {
            uint32_t i;
            SteadyClock::time_point t0;
        };
        std::unordered_map<EidKey, Pending, EidKeyHash> pending;
        LatencyStats con;
        uint32_t sent = 0;
        t = SteadyClock::now();
        while (sent < conc_n || !pending.empty()) {
            while (sent < conc_n && pending.size() < o.concurrency) {
                const uint32_t i = order[o.lookups + sent++];
                MissMsg mm{};
                mm.key = EidKey::make(kResolveTenant, resolve_eid(i));
                if (rte_ring_enqueue_elem(miss_ring.get(), &mm, sizeof mm) != 0) die("miss ring full");
                pending[mm.key] = Pending{i, SteadyClock::now()};
            }
            cp->poll();
            fw.drain([&](const EidKey& k) {
                if (pending.erase(k)) ++con.not_found, ++con.failed;
            });
            const auto now = SteadyClock::now();
            for (auto it = pending.begin(); it != pending.end();) {
                if (const MappingValue* v = fw.cache.lookup(it->first)) {
                    if (v->mo_id == resolve_mo(it->second.i) && v->locator == expected_locator(it->second.i))
                        con.us.push_back(std::chrono::duration<double, std::micro>(now - it->second.t0).count());
                    else
                        ++con.wrong, ++con.failed;
                    it = pending.erase(it);
                } else if (now - it->second.t0 > timeout) {
                    ++con.timeouts, ++con.failed;
                    it = pending.erase(it);
                } else {
                    ++it;
                }
            }
            sleep_round();
        }
        char name[64];
        std::snprintf(name, sizeof name, "concurrent (%u misses outstanding)", o.concurrency);
        print_latency(name, con, secs_since(t));
    }

    // ---- counters, the JSON line -------------------------------------------------------------
    const auto& cc = cp->counters();
    const auto dc = router_dir->counters();
    std::printf("control: misses %" PRIu64 ", dht_resolves %" PRIu64 ", found %" PRIu64 ", not_found %" PRIu64
                ", no_locator %" PRIu64 ", coalesced %" PRIu64 ", watch_updates %" PRIu64 ", watches %zu; worker: upserts %" PRIu64
                " (cache full %" PRIu64 "), miss_failed %" PRIu64 "\n",
                cc.misses.get(), cc.dht_resolves.get(), cc.dht_found.get(), cc.dht_not_found.get(), cc.dht_no_locator.get(),
                cc.dht_coalesced.get(), cc.dht_watch_updates.get(), cp->watches(), fw.upserts, fw.upsert_failed,
                fw.miss_failed);
    std::printf("router directory: resolves %" PRIu64 " (found %" PRIu64 ", not found %" PRIu64 ", incomplete %" PRIu64
                "), accepted %" PRIu64 ", rejected %" PRIu64 ", knows %zu nodes\n",
                dc.resolves, dc.resolve_found, dc.resolve_not_found, dc.resolve_incomplete, dc.accepted, dc.rejected_total(),
                router_dir->known_nodes());
    std::printf("target: p99 %.0f us (<= 2000 %s), failed %" PRIu64 " (= 0 %s); total run %.1f s; load average now %s\n",
                percentile(seq.us, 99), percentile(seq.us, 99) <= 2000 ? "met" : "MISSED", seq.failed,
                seq.failed == 0 ? "met" : "MISSED", secs_since(t_start), loadavg().c_str());
    std::fflush(stdout);
    if (!o.csv.empty()) {  // before the teardown, which a sweep's timeout may cut short
        double mean = 0;
        for (double x : seq.us) mean += x / double(seq.us.size());
        std::map<std::string, std::string> v = {
            {"sweep", o.tag.empty() ? "point" : o.tag},
            {"nodes", std::to_string(o.nodes)},
            {"records", std::to_string(o.records)},
            {"lookups", std::to_string(o.lookups)},
            {"publishers", std::to_string(P)},
            {"answered", std::to_string(seq.us.size())},
            {"failed", std::to_string(seq.failed)},
            {"p50_us", fmt_num(percentile(seq.us, 50), 0)},
            {"p90_us", fmt_num(percentile(seq.us, 90), 0)},
            {"p99_us", fmt_num(percentile(seq.us, 99), 0)},
            {"max_us", fmt_num(seq.us.empty() ? 0 : seq.us.back(), 0)},
            {"mean_us", fmt_num(mean, 0)},
            {"join_s", fmt_num(join_s, 2)},
            {"publish_s", fmt_num(publish_s, 2)},
            {"lookup_cpus", fmt_num(seq_cpus, 2)},
            {"total_s", fmt_num(secs_since(t_start), 1)},
        };
        ri.add_to(v);
        if (!csv_append(o.csv, kResolveCsvHeader, v)) die("cannot append to " + o.csv);
    }

    // Tear down: the control plane, then every OpenDHT node (stopped in parallel: a join each).
    t = SteadyClock::now();
    cp->drain();
    cp.reset();
    router_dir->stop();
    {
        std::vector<std::thread> stoppers;
        const unsigned k = 8;
        for (unsigned s = 0; s < k; ++s)
            stoppers.emplace_back([&, s] {
                for (size_t i = s; i < nodes.size(); i += k) nodes[i]->stop();
            });
        for (auto& th : stoppers) th.join();
    }
    nodes.clear();
    router_dir.reset();
    std::printf("teardown: %.2f s\n", secs_since(t));
    std::printf("{\"bench\":\"resolve\",\"nodes\":%u,\"lookups\":%u,\"p50_us\":%.0f,\"p99_us\":%.0f,\"max_us\":%.0f,\"failed\":%" PRIu64
                "}\n",
                o.nodes, o.lookups, percentile(seq.us, 50), percentile(seq.us, 99), seq.us.empty() ? 0 : seq.us.back(),
                seq.failed);
    std::fflush(stdout);
    return 0;
}

}  // namespace

int resolve_main(int argc, char** argv) {
    ResolveOptions o;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto num = [&]() -> uint64_t {
            if (i + 1 >= argc) usage();
            return std::strtoull(argv[++i], nullptr, 0);
        };
        if (a == "--nodes") o.nodes = unsigned(num());
        else if (a == "--records") o.records = uint32_t(num());
        else if (a == "--lookups") o.lookups = uint32_t(num());
        else if (a == "--publishers") o.publishers = unsigned(num());
        else if (a == "--seed") o.seed = num();
        else if (a == "--lcore") o.lcore = unsigned(num());
        else if (a == "--poll-us") o.poll_us = unsigned(num());
        else if (a == "--timeout-ms") o.timeout_ms = unsigned(num());
        else if (a == "--concurrency") o.concurrency = unsigned(num());
        else if (a == "--pace-ms") o.pace_ms = unsigned(num());
        else if (a == "--key-type" && i + 1 < argc) {
            auto t = dir::KeyType::parse(argv[++i]);
            if (!t) usage();
            o.key_type = *t;
        }
        else if (a == "--publish-window") o.publish_window = unsigned(std::max<uint64_t>(num(), 1));
        else if (a == "--no-watch") o.watch = false;
        else if (a == "--network-anywhere") o.network_anywhere = true;
        else if (a == "--csv" && i + 1 < argc) o.csv = argv[++i];
        else if (a == "--tag" && i + 1 < argc) o.tag = argv[++i];
        else if (a == "--eal") {
            for (++i; i < argc; ++i) o.eal.emplace_back(argv[i]);
        } else usage();
    }
    if (!o.records || !o.lookups) usage();
    try {
        return resolve_bench(o);
    } catch (const std::exception& e) {
        die(std::string("resolve: ") + e.what());
    }
}

int handover_main(int argc, char** argv);  // bench/handover_bench.cpp
int sweep_main(int argc, char** argv);     // bench/sweep.cpp

int main(int argc, char** argv) {
    if (argc >= 2 && std::string(argv[1]) == "resolve") return resolve_main(argc, argv);
    if (argc >= 2 && std::string(argv[1]) == "handover") return handover_main(argc, argv);
    if (argc >= 2 && std::string(argv[1]) == "sweep") return sweep_main(argc, argv);
    if (argc < 2 || std::string(argv[1]) != "fastpath") usage();
    Options o;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto num = [&](uint64_t& v) {
            if (i + 1 >= argc) usage();
            v = std::strtoull(argv[++i], nullptr, 10);
        };
        uint64_t v = 0;
        if (a == "--packets") num(o.packets);
        else if (a == "--warmup") num(o.warmup);
        else if (a == "--trials") num(v), o.trials = unsigned(std::max<uint64_t>(v, 1));
        else if (a == "--lcore") num(v), o.lcore = unsigned(v);
        else if (a == "--huge") o.huge = 1;
        else if (a == "--no-huge") o.huge = 0;
        else if (a == "--only" && i + 1 < argc) o.only = argv[++i];
        else if (a == "--vdev" && i + 1 < argc) {
            const std::string v = argv[++i];
            if (v != "null" && v != "ring") usage();
            o.ring = v == "ring";
        }
        else if (a == "--csv" && i + 1 < argc) o.csv = argv[++i];
        else if (a == "--tag" && i + 1 < argc) o.tag = argv[++i];
        // A sweep point.
        else if (a == "--workload" && i + 1 < argc) {
            const std::string v = argv[++i];
            if (v != "encap" && v != "decap") usage();
            o.decap = v == "decap";
            o.point = true;
        }
        else if (a == "--mos") num(v), o.mos = uint32_t(v), o.point = true;
        else if (a == "--cache") num(v), o.cache_entries = uint32_t(v), o.point = true;
        else if (a == "--burst") num(v), o.shape.burst = unsigned(v), o.point = true;
        else if (a == "--size") num(v), o.shape.frame = uint16_t(std::min<uint64_t>(v, 65535)), o.point = true;
        else if (a == "--workers") num(v), o.workers = unsigned(v), o.point = true;
        else if ((a == "--inner" || a == "--outer") && i + 1 < argc) {
            const std::string v = argv[++i];
            if (v != "4" && v != "6" && v != "mix") usage();
            (a == "--inner" ? o.shape.inner : o.shape.outer) = v == "4" ? Fam::V4 : v == "6" ? Fam::V6 : Fam::Mix;
            o.point = true;
        }
        else if (a == "--eal") {
            for (++i; i < argc; ++i) o.eal.emplace_back(argv[i]);
        } else usage();
    }
    if (!o.packets) usage();
    if (o.shape.burst < 1 || o.shape.burst > kBurst) die("--burst must be 1-" + std::to_string(kBurst) + " (the worker's rx_burst asks for kBurst)");
    if (o.shape.burst != kBurst && !o.ring)
        die("--burst needs --vdev ring: net_null's rx always fills the " + std::to_string(kBurst) + " mbufs the worker asks for");
    if (o.shape.frame < kFrameLen || o.shape.frame > kMaxFrameLen)
        die("--size must be " + std::to_string(kFrameLen) + "-" + std::to_string(kMaxFrameLen) + " (an IPv6/UDP frame needs 62 bytes; IP MTU 1500)");
    if (o.workers < 1 || o.workers > 2) die("--workers must be 1 or 2");
    if (o.workers > 1 && o.ring) die("--workers 2 needs --vdev null (the ring ports have one queue)");
    if (o.point && !o.decap && o.mos < 8) die("--mos must be at least 8 (one per access port and family)");
    if (o.point && !o.decap && o.mos > 64'000'000) die("--mos must be at most 64000000");
    // More IPv4 EIDs per tenant than 198.18.0.0/15 holds: EIDs (and the mobile prefix) from 10/8.
    if (o.point && o.mos / (o.shape.families() * kAccessPorts) > 131'000) o.shape.eid4_base = kEid4WideBase;
    if (o.point && !o.only.empty()) die("--only runs a fixed workload: no sweep options with it");
    return fastpath(o);
}
