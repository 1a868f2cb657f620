// Two workers on real ethdevs (net_ring ports with two queue pairs): each worker polls its own
// queue on every port, applies updates from its own ring, keeps its own counters, and transmits
// on its own tx queue. Driven from the test thread with poll_once(), so no lcores are needed.
#include <rte_eth_ring.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "catch.hpp"
#include "common/config.hpp"
#include "common/lm_wire.hpp"
#include "dataplane/dp_config.hpp"
#include "dataplane/ports.hpp"
#include "dataplane/worker.hpp"

using namespace lm;

namespace {

struct RingPort {
    RingPtr rx[2], tx[2];
    uint16_t port_id = 0;
    std::string name;
    RingPort(const std::string& n) : name(n) {
        rte_ring* rxs[2];
        rte_ring* txs[2];
        for (int q = 0; q < 2; ++q) {
            rx[q].reset(rte_ring_create((n + "_rx" + std::to_string(q)).c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
            tx[q].reset(rte_ring_create((n + "_tx" + std::to_string(q)).c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
            rxs[q] = rx[q].get();
            txs[q] = tx[q].get();
        }
        int id = rte_eth_from_rings(n.c_str(), rxs, 2, txs, 2, 0);
        REQUIRE(id >= 0);
        port_id = uint16_t(id);
        char dev[RTE_ETH_NAME_MAX_LEN];
        REQUIRE(rte_eth_dev_get_name_by_port(port_id, dev) == 0);
        device = dev;
    }
    std::string device;  // ethdev name the config refers to
};

rte_mbuf* udp4(rte_mempool* pool, const char* src, const char* dst, uint16_t sport) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    REQUIRE(m);
    constexpr uint16_t len = 14 + 20 + 8 + 10;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, len));
    REQUIRE(p != nullptr);
    for (unsigned i = 0; i < len; ++i) p[i] = 0;
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    const uint8_t gw[6] = {0x02, 0x00, 0x5e, 0, 0, 1}, mo[6] = {0x02, 0, 0, 0, 0, 0x10};
    std::memcpy(eth->dst_addr.addr_bytes, gw, 6);
    std::memcpy(eth->src_addr.addr_bytes, mo, 6);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16(38);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = IpAddr::parse(src)->v4_be();
    ip->dst_addr = IpAddr::parse(dst)->v4_be();
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    udp->src_port = rte_cpu_to_be_16(sport);
    udp->dst_port = rte_cpu_to_be_16(7);
    udp->dgram_len = rte_cpu_to_be_16(18);
    return m;
}

// The control lcore's messages the tests need: the core next hop, and a mapping of 192.0.2.20.
UpdateMsg next_hop_msg() {
    UpdateMsg nh{};
    nh.op = UpdateOp::SetNextHop;
    nh.family = Family::V4;
    nh.mac = *MacAddr::parse("02:00:00:00:ff:fe");
    return nh;
}

UpdateMsg mapping_msg(MoId mo, Epoch epoch) {
    UpdateMsg map{};
    map.op = UpdateOp::UpsertMapping;
    map.key = EidKey::make(1, *IpAddr::parse("192.0.2.20"));
    map.value.mo_id = mo;
    map.value.epoch = epoch;
    map.value.locator = *IpAddr::parse("198.51.100.2");
    return map;
}

// An access and a core port (net_ring, two queue pairs each), the router config that names them
// (plus `extra` YAML), a pool, the ports opened with `queues` queue pairs and the data plane config.
// The ports are closed when the bed goes.
struct RingBed {
    RingPort acc, core;
    Config cfg;
    MempoolPtr pool;
    std::vector<uint16_t> ids;
    DpConfig dp;

    RingBed(const std::string& tag, const std::string& extra, unsigned queues)
        : acc(tag + "acc"), core(tag + "core") {
        cfg = load_config_string(extra + R"(
locators: { v4: 198.51.100.1 }
gateway: { ipv4: 192.0.2.1, mac: 02:00:5e:00:00:01 }
ports:
  - { name: access0, device: )" + acc.device + R"(, role: access, tenant: 1 }
  - { name: core0, device: )" + core.device + R"(, role: core, mac: 02:00:00:00:0c:01 }
core: { next_hop: { ipv4: 198.51.100.254, mac: 02:00:00:00:ff:fe } }
mobile_prefixes: [192.0.2.0/24]
peer_prefixes: [198.51.100.0/24]
)");
        pool = make_pktmbuf_pool(tag + "pool", 4095, 0);
        std::vector<MacAddr> macs;
        for (auto& pc : cfg.ports) {
            auto op = open_port(pc, queues, pool.get());
            ids.push_back(op.port_id);
            macs.push_back(op.mac);
        }
        dp = make_dp_config(cfg, ids, macs);
    }
    ~RingBed() {
        for (auto id : ids) close_port(id);
    }
};

}  // namespace

TEST_CASE("two workers: own queues, own caches, own counters", "[worker]") {
    static int seq = 0;
    const std::string tag = "w" + std::to_string(seq++);
    RingBed bed(tag, "router: { workers: 2 }\n", 2);
    RingPort& acc = bed.acc;
    RingPort& core = bed.core;
    auto& pool = bed.pool;
    const DpConfig& dp = bed.dp;
    REQUIRE(bed.ids[0] == acc.port_id);
    WorkerParams p;
    p.pool = pool.get();
    p.cache_entries = 1024;
    p.attachment_entries = 64;
    p.id = 0;
    Worker w0(dp, p);
    p.id = 1;
    Worker w1(dp, p);

    // The control lcore's messages: next hop for both, the mapping for worker 0 only.
    UpdateMsg nh = next_hop_msg();
    UpdateMsg map = mapping_msg(0x2a, 5);
    REQUIRE(rte_ring_enqueue_elem(w0.update_ring(), &nh, sizeof nh) == 0);
    REQUIRE(rte_ring_enqueue_elem(w0.update_ring(), &map, sizeof map) == 0);
    REQUIRE(rte_ring_enqueue_elem(w1.update_ring(), &nh, sizeof nh) == 0);
    w0.service_rings();
    w1.service_rings();

    // Three packets on queue 0, two on queue 1, all to 192.0.2.20.
    for (int i = 0; i < 3; ++i) {
        rte_mbuf* m = udp4(pool.get(), "192.0.2.10", "192.0.2.20", uint16_t(1000 + i));
        REQUIRE(rte_ring_enqueue(acc.rx[0].get(), m) == 0);
    }
    for (int i = 0; i < 2; ++i) {
        rte_mbuf* m = udp4(pool.get(), "192.0.2.10", "192.0.2.20", uint16_t(2000 + i));
        REQUIRE(rte_ring_enqueue(acc.rx[1].get(), m) == 0);
    }
    CHECK(w0.poll_once() == 3);
    CHECK(w1.poll_once() == 2);

    // Worker 0 encapsulated on core tx queue 0; worker 1 has no mapping: misses, nothing sent.
    CHECK(rte_ring_count(core.tx[0].get()) == 3);
    CHECK(rte_ring_count(core.tx[1].get()) == 0);
    CHECK(w0.counters().encap.get() == 3);
    CHECK(w0.counters().ports[1].tx_packets.get() == 3);
    CHECK(w1.counters().encap.get() == 0);
    CHECK(w1.counters().dropped(Drop::CacheMiss) == 2);
    CHECK(w0.path().cache().size() == 1);
    CHECK(w1.path().cache().size() == 0);
    void* obj;
    while (rte_ring_dequeue(core.tx[0].get(), &obj) == 0) {
        auto* m = static_cast<rte_mbuf*>(obj);
        auto* lh = rte_pktmbuf_mtod_offset(m, const wire::LmHeader*, 14 + 20 + 8);
        CHECK(lh->tenant_id() == 1);
        CHECK(rte_be_to_cpu_64(lh->mo_id_be) == 0x2a);
        CHECK(rte_be_to_cpu_64(lh->epoch_be) == 5);
        rte_pktmbuf_free(m);
    }

    // A control packet for worker 1's tx ring leaves on worker 1's queue of the named port.
    rte_mbuf* ctl = udp4(pool.get(), "192.0.2.1", "192.0.2.10", 9);
    ctl->port = 0;
    REQUIRE(rte_ring_enqueue_elem(w1.tx_ring(), &ctl, sizeof ctl) == 0);
    w1.service_rings();
    CHECK(rte_ring_count(acc.tx[1].get()) == 1);
    CHECK(w1.counters().ctrl_tx.get() == 1);
    while (rte_ring_dequeue(acc.tx[1].get(), &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));

}

TEST_CASE("answers releasing many held packets at once are all transmitted", "[worker][pending]") {
    static int seq = 0;
    const std::string tag = "wp" + std::to_string(seq++);
    RingBed bed(tag, "cache: { pending_packets: 256, pending_per_eid: 8 }\n", 1);
    RingPort& acc = bed.acc;
    RingPort& core = bed.core;
    auto& pool = bed.pool;
    const DpConfig& dp = bed.dp;
    RingPtr miss = make_mpsc_ring(tag + "miss", sizeof(MissMsg), 256, 0);
    WorkerParams p;
    p.pool = pool.get();
    p.cache_entries = 1024;
    p.attachment_entries = 64;
    p.miss_ring = miss.get();
    Worker w(dp, p);
    UpdateMsg nh{};
    nh.op = UpdateOp::SetNextHop;
    nh.mac = *MacAddr::parse("02:00:00:00:ff:fe");
    REQUIRE(rte_ring_enqueue_elem(w.update_ring(), &nh, sizeof nh) == 0);
    w.service_rings();

    // 12 unknown EIDs x 8 packets = 96 held packets, more than a tx stage (64) holds.
    const unsigned kEids = 12, kPer = 8;
    for (unsigned e = 0; e < kEids; ++e)
        for (unsigned i = 0; i < kPer; ++i) {
            std::string dst = "192.0.2." + std::to_string(100 + e);
            REQUIRE(rte_ring_enqueue(acc.rx[0].get(), udp4(pool.get(), "192.0.2.10", dst.c_str(), uint16_t(1000 + i))) == 0);
        }
    while (w.poll_once()) {
    }
    REQUIRE(w.counters().pending_held.get() == kEids * kPer);
    REQUIRE(rte_ring_count(miss.get()) == kEids);

    // All the answers arrive in one batch, as they do when the worker was busy.
    for (unsigned e = 0; e < kEids; ++e) {
        UpdateMsg u{};
        u.op = UpdateOp::UpsertMapping;
        u.key = EidKey::make(1, *IpAddr::parse("192.0.2." + std::to_string(100 + e)));
        u.value.mo_id = 0x100 + e;
        u.value.epoch = 1;
        u.value.locator = *IpAddr::parse("198.51.100.2");
        REQUIRE(rte_ring_enqueue_elem(w.update_ring(), &u, sizeof u) == 0);
    }
    w.service_rings();
    CHECK(w.counters().pending_sent.get() == kEids * kPer);
    CHECK(w.counters().dropped(Drop::TxFull) == 0);
    CHECK(rte_ring_count(core.tx[0].get()) == kEids * kPer);
    void* obj;
    while (rte_ring_dequeue(core.tx[0].get(), &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    MissMsg mm;
    while (rte_ring_dequeue_elem(miss.get(), &mm, sizeof mm) == 0) {
    }
}

TEST_CASE("a worker started with wait_ready polls no port before the control lcore's Ready", "[worker]") {
    // lm-router's start-up: the control lcore pushes next hops and static state, then Ready. A
    // packet polled earlier would meet a worker without its next hop (nexthop_unresolved drop).
    static int seq = 0;
    const std::string tag = "wr" + std::to_string(seq++);
    RingBed bed(tag, "router: { workers: 1 }\n", 1);
    WorkerParams p;
    p.pool = bed.pool.get();
    p.cache_entries = 1024;
    p.attachment_entries = 64;
    p.wait_ready = true;
    Worker w(bed.dp, p);
    for (int i = 0; i < 3; ++i)
        REQUIRE(rte_ring_enqueue(bed.acc.rx[0].get(), udp4(bed.pool.get(), "192.0.2.10", "192.0.2.20", uint16_t(3000 + i))) == 0);

    std::atomic<bool> stop{false};
    std::thread t([&] { w.run(stop); });
    auto wait_for = [](auto&& cond) {
        for (int i = 0; i < 2000 && !cond(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return cond();
    };
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(rte_ring_count(bed.acc.rx[0].get()) == 3);  // not polled yet

    UpdateMsg nh = next_hop_msg();
    UpdateMsg map = mapping_msg(0x2b, 1);
    UpdateMsg ready{};
    ready.op = UpdateOp::Ready;
    REQUIRE(rte_ring_enqueue_elem(w.update_ring(), &nh, sizeof nh) == 0);
    REQUIRE(rte_ring_enqueue_elem(w.update_ring(), &map, sizeof map) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(rte_ring_count(bed.acc.rx[0].get()) == 3);  // state applied, but no Ready yet
    REQUIRE(rte_ring_enqueue_elem(w.update_ring(), &ready, sizeof ready) == 0);
    CHECK(wait_for([&] { return rte_ring_count(bed.core.tx[0].get()) == 3; }));
    stop = true;
    t.join();
    CHECK(w.ready());
    CHECK(w.counters().encap.get() == 3);
    CHECK(w.counters().dropped(Drop::NextHopUnresolved) == 0);
    void* obj;
    while (rte_ring_dequeue(bed.core.tx[0].get(), &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
}
