// lm-bench: fast-path benchmarks on one worker core, with in-process virtual devices.
//
//   lm-bench fastpath [--vdev null|ring] [--packets N] [--trials N] [--warmup N] [--lcore N]
//                     [--huge|--no-huge] [--only baseline|hot|decap|1m] [--eal EAL-ARGS...]
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
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_ring.h>
#include <rte_udp.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/lm_wire.hpp"
#include "common/ring_msg.hpp"
#include "dataplane/dp_config.hpp"
#include "dataplane/dpdk_env.hpp"
#include "dataplane/worker.hpp"

using namespace lm;

namespace {

// ---- set-up constants ------------------------------------------------------------------------

constexpr unsigned kAccessPorts = 4;              // one per tenant (1..4): multiplies the v4 EID space
constexpr unsigned kNbPorts = kAccessPorts + 1;   // + the core port
constexpr uint8_t kCore = kAccessPorts;           // index of the core port in DpConfig
constexpr unsigned kSlots = 4096;                 // mbufs in flight (1024 per access port)
constexpr unsigned kRingSize = 8192;              // net_ring rx/tx rings
constexpr uint16_t kFrameLen = 64;                // access frames as the PMD hands them over
constexpr unsigned kInnerLen = kFrameLen - RTE_ETHER_HDR_LEN;  // 50: inner IP packet of decap frames
constexpr uint32_t kHotMos = 10'000;
constexpr uint32_t kBigMos = 1'000'000;
constexpr uint32_t kBigCacheEntries = 1'100'000;  // 1M MOs + 10% headroom, as an operator would size it
constexpr uint32_t kDecapMos = 1'000;
constexpr uint64_t kSeed = 0x4C4D2D62656E6368ull;  // "LM-bench": every run draws the same packets

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

// ---- the MO population -----------------------------------------------------------------------
// An MO is (access port t, inner family f, index k). Tenant = t + 1. Its EID is 198.18.0.0/15
// (RFC 2544 benchmarking space) + k + 1 for v4 and 2001:db8:100::/40 + k + 1 for v6; its locator
// alternates v4/v6 with k, over 200 remote ARs per family.

uint32_t eid4_be(uint32_t k) { return rte_cpu_to_be_32(0xC6120000u + k + 1); }  // 198.18.0.0 + k + 1
void eid6(uint32_t k, uint8_t* out) {
    static const uint8_t base[16] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(out, base, 16);
    uint32_t lo = rte_cpu_to_be_32(k + 1);
    std::memcpy(out + 12, &lo, 4);
}
MoId mo_id(unsigned t, unsigned f, uint32_t k) { return 0x4C4D000000000000ull | uint64_t(t) << 40 | uint64_t(f) << 32 | k; }

MappingValue mapping(unsigned t, unsigned f, uint32_t k) {
    MappingValue v;
    v.mo_id = mo_id(t, f, k);
    v.epoch = 0x0001'8F00'0000'0001ull;
    const uint8_t ar = uint8_t(2 + (k >> 1) % 200);
    if (k & 1) {
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

DpConfig make_config(const Ports& ports) {
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
    core.mtu = 1500;
    core.mac = mac(0, 0, 0x0c, 0);
    c.has_loc4 = c.has_loc6 = true;
    c.loc4 = ip(kLoc4);
    c.loc6 = ip(kLoc6);
    c.has_gw4 = c.has_gw6 = true;
    c.gw4 = ip("192.0.2.1");
    c.gw6 = ip("2001:db8:200::1");
    c.gw_mac = MacAddr{{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}};
    c.mobile = {MobilePrefix{pfx("198.18.0.0/15"), std::nullopt}, MobilePrefix{pfx("2001:db8:100::/40"), std::nullopt}};
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

AccessTemplate access_template(const MacAddr& dst_mac, bool v6) {
    AccessTemplate t;
    auto* eth = reinterpret_cast<rte_ether_hdr*>(t.bytes.data());
    std::memcpy(eth->dst_addr.addr_bytes, dst_mac.b.data(), 6);
    const MacAddr src = mac(0, 0x00, 0x5e, 0x10);
    std::memcpy(eth->src_addr.addr_bytes, src.b.data(), 6);
    eth->ether_type = rte_cpu_to_be_16(v6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    const uint8_t zero[16] = {};
    put_inner(t.bytes.data() + 14, v6, zero, kInnerLen);
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
    unsigned len = 0;      // frame length
    unsigned lm_off = 0;   // offset of the LM header: the ring refill rewrites these 24 bytes only
    unsigned hdr_len = 0;  // outer Ethernet/IP/UDP + LM + inner IP + inner UDP: the null refill writes these
};

CoreTemplate core_template(const MacAddr& dst_mac, bool out6, bool in6) {
    CoreTemplate t;
    uint8_t* p = t.bytes.data();
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    std::memcpy(eth->dst_addr.addr_bytes, dst_mac.b.data(), 6);
    const MacAddr src = mac(0, 0, 0x0f, 0x01);
    std::memcpy(eth->src_addr.addr_bytes, src.b.data(), 6);
    eth->ether_type = rte_cpu_to_be_16(out6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    const unsigned udp_len = wire::kUdpLen + wire::kLmLen + kInnerLen;
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
    put_inner(p + off, in6, dst, kInnerLen);
    t.hdr_len = off + (in6 ? 40 : 20) + 8;
    t.len = off + kInnerLen;
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

// A worker as the router builds one (queue 0 of every port), with the next-hop MAC resolved.
std::unique_ptr<Worker> new_worker(const DpConfig& cfg, rte_mempool* pool, uint32_t cache_entries) {
    WorkerParams wp;
    wp.id = 0;
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

// ---- vdev "ring": net_ring ports, the bench plays the NIC ----------------------------------

class Bench {
public:
    explicit Bench(rte_mempool* pool) : pool_(pool) {
        for (unsigned p = 0; p < kNbPorts; ++p) {
            const auto flags = RING_F_SP_ENQ | RING_F_SC_DEQ;  // one core: no atomics, like a NIC queue
            ports_.rx[p] = rte_ring_create(("lmb_rx" + std::to_string(p)).c_str(), kRingSize, rte_socket_id(), flags);
            ports_.tx[p] = rte_ring_create(("lmb_tx" + std::to_string(p)).c_str(), kRingSize, rte_socket_id(), flags);
            ports_.wire[p] = rte_ring_create(("lmb_wire" + std::to_string(p)).c_str(), kRingSize, rte_socket_id(), flags);
            if (!ports_.rx[p] || !ports_.tx[p] || !ports_.wire[p]) die("cannot create rings");
            ports_.id[p] = open_ring_port("lmb" + std::to_string(p), ports_.rx[p], ports_.tx[p], pool_);
        }
        cfg_ = make_config(ports_);
        if (rte_pktmbuf_alloc_bulk(pool_, mbufs_.data(), kSlots) != 0) die("cannot allocate the mbufs");
        for (unsigned s = 0; s < kSlots; ++s) mbufs_[s]->hash.usr = s;
        for (unsigned v6 = 0; v6 < 2; ++v6) atpl_[v6] = access_template(cfg_.gw_mac, v6);
        for (unsigned k = 0; k < 4; ++k) ctpl_[k] = core_template(cfg_.ports[kCore].mac, k & 2, k & 1);
    }

    const DpConfig& config() const { return cfg_; }

    // net_ring: one configuration, every port receives what the bench put on its rx ring.
    std::unique_ptr<Worker> make_worker(uint32_t cache_entries, Kind) { return new_worker(cfg_, pool_, cache_entries); }

    // Cache every MO of an encap workload of `mos` MOs (mos / 8 per port and inner family).
    static void add_mappings(Worker& w, uint32_t mos) {
        const uint32_t per = mos / (2 * kAccessPorts);
        for (unsigned t = 0; t < kAccessPorts; ++t)
            for (unsigned f = 0; f < 2; ++f)
                for (uint32_t k = 0; k < per; ++k) {
                    UpdateMsg u{};
                    u.op = UpdateOp::UpsertMapping;
                    IpAddr a;
                    if (f) {
                        a.family = Family::V6;
                        eid6(k, a.b.data());
                    } else {
                        uint32_t d = eid4_be(k);
                        a = IpAddr::v4_from_be(d);
                    }
                    u.key = EidKey::make(t + 1, a);
                    u.value = mapping(t, f, k);
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
        mos_per_ = mos / (2 * kAccessPorts);
        Rng layout{kSeed ^ 0x5A5A};
        for (unsigned s = 0; s < kSlots; ++s) {
            rte_mbuf* m = mbufs_[s];
            std::memset(frame(m), 0, 160);
            if (mos) {
                slots_[s].home = uint8_t(s % kAccessPorts);
                slots_[s].kind = uint8_t(layout.next() >> 63);  // inner family: random, fixed per slot
                slots_[s].len = kFrameLen;
                refill_access(m);
            } else {
                slots_[s].home = kCore;
                slots_[s].kind = uint8_t(layout.next() >> 62);  // 4in4 / 6in4 / 4in6 / 6in6
                const auto& t = ctpl_[slots_[s].kind];
                slots_[s].len = uint16_t(t.len);
                std::memcpy(frame(m), t.bytes.data(), t.len);
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
        const unsigned n = rte_ring_sc_dequeue_burst(ports_.wire[p], buf, kBurst, nullptr);
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
            const uint32_t d = eid4_be(k);
            std::memcpy(p + t.dst_off, &d, 4);
            uint32_t s = t.sum + (d & 0xFFFF) + (d >> 16);
            s = (s & 0xFFFF) + (s >> 16);
            s = (s & 0xFFFF) + (s >> 16);
            const uint16_t ck = uint16_t(~s);
            std::memcpy(p + 14 + 10, &ck, 2);
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
    unsigned baseline_round() {
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

constexpr unsigned kNullPorts = 2 * kNbPorts;
constexpr uint16_t kCoreFrameMax = 136;  // 6in6 / 4in6 LM frames; 4in4 / 6in4 are 116

std::vector<std::string> null_vdev_args() {
    std::vector<std::string> a;
    for (unsigned i = 0; i < kNullPorts; ++i) {
        std::string dev = "net_null" + std::to_string(i);
        if (i < kAccessPorts) dev += ",size=" + std::to_string(kFrameLen) + ",copy=0";
        else if (i == kAccessPorts) dev += ",size=" + std::to_string(kCoreFrameMax) + ",copy=0";
        else dev += ",no-rx=1";
        a.insert(a.end(), {"--vdev", dev});
    }
    return a;
}

class NullBench {
public:
    explicit NullBench(rte_mempool* pool) : pool_(pool) {
        std::array<uint16_t, kNullPorts> id{};
        for (unsigned i = 0; i < kNullPorts; ++i) {
            const std::string name = "net_null" + std::to_string(i);
            if (rte_eth_dev_get_port_by_name(name.c_str(), &id[i]) != 0) die("no ethdev " + name + " (is the net_null PMD loaded?)");
            rte_eth_conf conf{};
            if (rte_eth_dev_configure(id[i], 1, 1, &conf) != 0) die("configure " + name);
            if (rte_eth_rx_queue_setup(id[i], 0, 1024, rte_socket_id(), nullptr, pool_) != 0) die("rxq " + name);
            if (rte_eth_tx_queue_setup(id[i], 0, 1024, rte_socket_id(), nullptr) != 0) die("txq " + name);
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
        enc_ = make_config(enc);
        dec_ = make_config(dec);
        for (unsigned v6 = 0; v6 < 2; ++v6) atpl_[v6] = access_template(enc_.gw_mac, v6);
        for (unsigned k = 0; k < 4; ++k) ctpl_[k] = core_template(dec_.ports[kCore].mac, k & 2, k & 1);
    }
    // Install the refill; before this, rx_burst returns net_null's stale buffers (only for the
    // "vdev alone" line: no workload may run without it).
    void attach_refill() {
        for (unsigned t = 0; t < kAccessPorts; ++t)
            if (!rte_eth_add_rx_callback(ids_[t], 0, &access_rx_cb, this)) die("rte_eth_add_rx_callback (DPDK built without RTE_ETHDEV_RXTX_CALLBACKS?)");
        if (!rte_eth_add_rx_callback(ids_[kCore], 0, &core_rx_cb, this)) die("rte_eth_add_rx_callback");
    }
    ~NullBench() {
        for (uint16_t p : ids_) {
            rte_eth_dev_stop(p);
            rte_eth_dev_close(p);
        }
    }
    NullBench(const NullBench&) = delete;
    NullBench& operator=(const NullBench&) = delete;

    std::unique_ptr<Worker> make_worker(uint32_t cache_entries, Kind k) {
        return new_worker(k == Kind::Access ? enc_ : dec_, pool_, cache_entries);
    }

    // Start a workload's packet sequence: `mos` = MOs per encap workload, 0 = decap.
    void load(uint32_t mos) {
        rng_ = Rng{};
        mos_per_ = std::max<uint32_t>(1, mos / (2 * kAccessPorts));
    }

    // Zero-work forward with the worker's polling structure: rx_burst on every port of the
    // workload's configuration; what came in goes out with one tx_burst on the port the path
    // would send it to (the core port for access frames, an access port for LM frames).
    template <Kind K>
    unsigned baseline_round() {
        const DpConfig& c = K == Kind::Access ? enc_ : dec_;
        unsigned total = 0;
        rte_mbuf* pkts[kBurst];
        for (unsigned p = 0; p < kNbPorts; ++p) {
            const uint16_t n = rte_eth_rx_burst(c.ports[p].port_id, 0, pkts, kBurst);
            if (!n) continue;
            total += n;
            const uint16_t out = K == Kind::Access ? c.ports[kCore].port_id : c.ports[0].port_id;
            if (rte_eth_tx_burst(out, 0, pkts, n) != n) die("baseline: tx_burst short");
        }
        return total;
    }

    template <Kind K>
    unsigned path_round(Worker& w) {
        return w.poll_once();
    }

private:
    static uint16_t access_rx_cb(uint16_t, uint16_t, rte_mbuf** pkts, uint16_t n, uint16_t, void* self) {
        auto* b = static_cast<NullBench*>(self);
        for (uint16_t i = 0; i < n; ++i) b->refill_access(pkts[i]);
        return n;
    }
    static uint16_t core_rx_cb(uint16_t, uint16_t, rte_mbuf** pkts, uint16_t n, uint16_t, void* self) {
        auto* b = static_cast<NullBench*>(self);
        for (uint16_t i = 0; i < n; ++i) b->refill_core(pkts[i]);
        return n;
    }

    // Ethernet + IP + UDP from the template, destination uniform over the port's MOs (each
    // access port is its own tenant with the same EIDs), inner family uniform.
    inline void refill_access(rte_mbuf* m) {
        const uint64_t x = rng_.next();
        const unsigned v6 = unsigned(x & 1);
        const uint32_t k = uint32_t((uint64_t(uint32_t(x >> 32)) * mos_per_) >> 32);
        const AccessTemplate& t = atpl_[v6];
        uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
        // One branch on the family (as unpredictable as the family), fixed-size copies inside.
        if (v6) {
            std::memcpy(p, t.bytes.data(), 14 + 40 + 8);
            eid6(k, p + t.dst_off);
        } else {
            std::memcpy(p, t.bytes.data(), 14 + 20 + 8);
            const uint32_t d = eid4_be(k);
            std::memcpy(p + t.dst_off, &d, 4);
            uint32_t s = t.sum + (d & 0xFFFF) + (d >> 16);
            s = (s & 0xFFFF) + (s >> 16);
            s = (s & 0xFFFF) + (s >> 16);
            const uint16_t ck = uint16_t(~s);
            std::memcpy(p + 14 + 10, &ck, 2);
        }
    }

    // The whole header stack of an LM frame (4in4 / 6in4 / 4in6 / 6in6 uniform), to one of the
    // attached MOs (uniform).
    inline void refill_core(rte_mbuf* m) {
        const uint64_t x = rng_.next();
        const CoreTemplate& t = ctpl_[x & 3];
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
    std::vector<uint16_t> ids_;
    DpConfig enc_, dec_;
    std::array<AccessTemplate, 2> atpl_;
    std::array<CoreTemplate, 4> ctpl_;
    Rng rng_;
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

std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("model name", 0) == 0) {
            auto c = line.find(':');
            return c == std::string::npos ? line : line.substr(c + 2);
        }
    return "unknown";
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
    Bench::add_mappings(*w, big ? kBigMos : kHotMos);
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
                 "                         [--huge|--no-huge] [--only baseline|hot|decap|1m] [--eal EAL-ARGS...]\n"
                 "--vdev: net_null ports (default; rx allocates mbufs, tx frees them, like a NIC driver)\n"
                 "        or net_ring ports (the bench plays the NIC; rx/tx are ring operations).\n"
                 "--only runs one workload (for profilers) and prints no JSON line.\n");
    std::exit(2);
}

// The workloads, in the order baseline, baseline on LM frames, hot, decap, 1M, baseline again.
template <class B, class Line>
void run_all(const Options& o, B& b, double hz, bool has_huge, Line&& line) {
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
}

int fastpath(Options o) {
    // Hugepages if a hugetlbfs is mounted with at least 512 MB free, else anonymous memory.
    const HugeInfo hi = huge_info();
    const bool huge = o.huge == 1 || (o.huge == -1 && hi.mounted && hi.free_mb >= 512);
    std::vector<std::string> args = {"lm-bench", "-l", std::to_string(o.lcore), "--no-pci", "--log-level=lib.eal:error", "--no-telemetry"};
    if (huge) {
        const uint64_t mb = std::min<uint64_t>(1024, hi.free_mb);
        args.insert(args.end(), {"--in-memory", "-m", std::to_string(mb)});
    } else {
        args.insert(args.end(), {"--no-huge", "--no-shconf", "-m", "2048"});
    }
    if (!o.ring) {
        auto v = null_vdev_args();
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
                    kAccessPorts, kAccessPorts, kBurst, kSlots);
    else
        std::printf("setup: vdev null: %u access ports (tenants 1-%u) + 1 core port, all net_null (copy=0; the ports not\n"
                    "       receiving in a workload are no-rx=1 vdevs); burst %u; refill in an rx callback;\n",
                    kAccessPorts, kAccessPorts, kBurst);
    std::printf("       %u-byte access frames, 116/136-byte LM frames; %" PRIu64 " packets x %u trials per workload after %" PRIu64
                " warm-up\n",
                unsigned(kFrameLen), o.packets, o.trials, o.warmup);
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
        if (o.ring) {
            Bench b(pool.get());
            if (!o.only.empty()) return profile_one(o, b, o.only, line);
            run_all(o, b, hz, has_huge, line);
        } else {
            NullBench b(pool.get());
            if (o.only.empty()) {
                // What the vdev itself costs: the baseline's rx -> tx without the refill.
                b.load(kHotMos);
                line("vdev alone (no refill)", measure(o, [&] { return b.baseline_round<Kind::Access>(); }), nullptr);
            }
            b.attach_refill();
            if (!o.only.empty()) return profile_one(o, b, o.only, line);
            run_all(o, b, hz, has_huge, line);
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
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
        else if (a == "--eal") {
            for (++i; i < argc; ++i) o.eal.emplace_back(argv[i]);
        } else usage();
    }
    if (!o.packets) usage();
    return fastpath(o);
}
