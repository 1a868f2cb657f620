// Control lcore <-> worker rings: ordering, ring-full retry, idempotent updates, miss handling,
// next-hop learning from punted ARP/NA, and echo replies through worker 0's tx ring.
#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include <cstring>
#include <vector>

#include "catch.hpp"
#include "common/config.hpp"
#include "controlplane/control_plane.hpp"
#include "controlplane/neighbor.hpp"
#include "dataplane/dpdk_env.hpp"
#include "dataplane/locator_cache.hpp"

using namespace lm;

namespace {

int g_seq = 0;
std::string uniq(const char* base) { return std::string(base) + std::to_string(g_seq++); }

Config small_config() {
    return load_config_string(R"(
locators: { v4: 198.51.100.1, v6: 2001:db8:100::1 }
gateway: { ipv4: 192.0.2.1, ipv6: 2001:db8:1::1, mac: 02:00:5e:00:00:01 }
ports:
  - { name: access0, device: net_null0, role: access, tenant: 1 }
  - { name: core0, device: net_null1, role: core }
core: { next_hop: { ipv4: 198.51.100.254, ipv6: 2001:db8:100::fe } }
mobile_prefixes: [192.0.2.0/24]
peer_prefixes: [198.51.100.0/24]
)");
}

struct Bed {
    Config cfg = small_config();
    MempoolPtr pool = make_pktmbuf_pool(uniq("rt_pool"), 1023, 0);
    RingPtr upd0, upd1, tx0, tx1;
    RingPtr miss = make_mpsc_ring(uniq("rt_miss"), sizeof(MissMsg), 64, 0);
    RingPtr punt = make_mpsc_ring(uniq("rt_punt"), sizeof(PuntMsg), 64, 0);
    WorkerCounters wc0, wc1;
    std::unique_ptr<ControlPlane> cp;
    MacAddr core_mac = *MacAddr::parse("02:00:00:00:0c:01");

    explicit Bed(unsigned update_ring_size = 4096) {
        upd0 = make_spsc_ring(uniq("rt_upd"), sizeof(UpdateMsg), update_ring_size, 0);
        upd1 = make_spsc_ring(uniq("rt_upd"), sizeof(UpdateMsg), update_ring_size, 0);
        tx0 = make_spsc_ring(uniq("rt_tx"), sizeof(rte_mbuf*), 64, 0);
        tx1 = make_spsc_ring(uniq("rt_tx"), sizeof(rte_mbuf*), 64, 0);
        std::vector<PortRuntime> ports{{0, *MacAddr::parse("02:00:00:00:0a:01")}, {1, core_mac}};
        std::vector<WorkerHandle> w{{upd0.get(), tx0.get(), &wc0}, {upd1.get(), tx1.get(), &wc1}};
        cp = std::make_unique<ControlPlane>(cfg, ports, w, pool.get(), miss.get(), punt.get());
    }
    ~Bed() {
        cp->drain();
        rte_mbuf* m;
        while (rte_ring_dequeue_elem(tx0.get(), &m, sizeof m) == 0) rte_pktmbuf_free(m);
    }
    static std::vector<UpdateMsg> take(rte_ring* r) {
        std::vector<UpdateMsg> out;
        UpdateMsg u;
        while (rte_ring_dequeue_elem(r, &u, sizeof u) == 0) out.push_back(u);
        return out;
    }
};

EidKey key4(const char* ip, TenantId t = 1) { return EidKey::make(t, *IpAddr::parse(ip)); }

MappingValue remote(MoId mo, const char* loc, Epoch e) {
    MappingValue v;
    v.mo_id = mo;
    v.locator = *IpAddr::parse(loc);
    v.epoch = e;
    return v;
}

}  // namespace

TEST_CASE("every worker receives every update, in order", "[rings]") {
    Bed b;
    for (int i = 0; i < 10; ++i) b.cp->upsert_mapping(key4(("192.0.2." + std::to_string(100 + i)).c_str()), remote(i + 1, "198.51.100.2", 1));
    for (rte_ring* r : {b.upd0.get(), b.upd1.get()}) {
        auto got = Bed::take(r);
        REQUIRE(got.size() == 10);
        for (int i = 0; i < 10; ++i) {
            CHECK(got[i].op == UpdateOp::UpsertMapping);
            CHECK(got[i].value.mo_id == MoId(i + 1));
            CHECK(got[i].key == key4(("192.0.2." + std::to_string(100 + i)).c_str()));
        }
    }
    CHECK(b.cp->backlog() == 0);
}

TEST_CASE("a full ring loses no update: the control lcore retries in order", "[rings]") {
    Bed b(16);  // 15 usable slots
    const int n = 100;
    for (int i = 0; i < n; ++i) b.cp->upsert_mapping(key4("192.0.2.20"), remote(7, "198.51.100.2", Epoch(i + 1)));
    CHECK(b.cp->backlog() == size_t(2 * (n - 15)));
    std::vector<UpdateMsg> got0, got1;
    for (int round = 0; round < 50 && (got0.size() < n || got1.size() < n); ++round) {
        for (auto& u : Bed::take(b.upd0.get())) got0.push_back(u);
        for (auto& u : Bed::take(b.upd1.get())) got1.push_back(u);
        b.cp->poll();
    }
    REQUIRE(got0.size() == n);
    REQUIRE(got1.size() == n);
    for (int i = 0; i < n; ++i) {
        CHECK(got0[i].value.epoch == Epoch(i + 1));
        CHECK(got1[i].value.epoch == Epoch(i + 1));
    }
    CHECK(b.cp->backlog() == 0);
    CHECK(b.cp->counters().updates_retried.get() == uint64_t(2 * (n - 15)));
}

TEST_CASE("updates are idempotent and keyed: re-applying changes nothing", "[rings]") {
    LocatorCache cache(uniq("rt_cache"), 64, 0);
    auto k = key4("192.0.2.20");
    REQUIRE(cache.upsert(k, remote(7, "198.51.100.2", 1)));
    REQUIRE(cache.upsert(k, remote(7, "198.51.100.2", 1)));
    CHECK(cache.size() == 1);
    REQUIRE(cache.upsert(k, remote(7, "198.51.100.3", 2)));
    CHECK(cache.size() == 1);
    REQUIRE(cache.lookup(k)->epoch == 2);
    REQUIRE(cache.lookup(k)->locator == *IpAddr::parse("198.51.100.3"));
    cache.erase(k);
    cache.erase(k);
    CHECK(cache.size() == 0);
    CHECK(cache.lookup(k) == nullptr);
}

TEST_CASE("a miss for a known key is re-pushed to that worker only; unknown keys are counted", "[rings]") {
    Bed b;
    b.cp->upsert_mapping(key4("192.0.2.20"), remote(7, "198.51.100.2", 3));
    Bed::take(b.upd0.get());
    Bed::take(b.upd1.get());
    MissMsg known{key4("192.0.2.20"), 1}, unknown{key4("192.0.2.99"), 0};
    REQUIRE(rte_ring_enqueue_elem(b.miss.get(), &known, sizeof known) == 0);
    REQUIRE(rte_ring_enqueue_elem(b.miss.get(), &unknown, sizeof unknown) == 0);
    b.cp->poll();
    // Worker 0 asked for an unknown key: without a directory the answer is "no mapping".
    auto neg = Bed::take(b.upd0.get());
    REQUIRE(neg.size() == 1);
    CHECK(neg[0].op == UpdateOp::MissFailed);
    CHECK(neg[0].key == key4("192.0.2.99"));
    auto got = Bed::take(b.upd1.get());
    REQUIRE(got.size() == 1);
    CHECK(got[0].value.epoch == 3);
    CHECK(b.cp->counters().misses.get() == 2);
    CHECK(b.cp->counters().misses_unresolved.get() == 1);
}

TEST_CASE("static state is pushed at start", "[rings]") {
    Config c = small_config();
    StaticAttachment a;
    a.tenant = 1;
    a.mo_id = 9;
    a.eids = {*IpAddr::parse("192.0.2.10")};
    a.mac = *MacAddr::parse("02:00:00:00:00:10");
    a.port = "access0";
    c.static_attachments.push_back(a);
    Bed b;
    b.cfg = c;  // ControlPlane keeps a reference to b.cfg
    b.cp->start();
    auto got = Bed::take(b.upd0.get());
    // The mapping first, then the attachment (packets released from a hold see the mapping),
    // then Ready: the worker's start-up barrier comes after all of it.
    REQUIRE(got.size() == 3);
    CHECK(got[2].op == UpdateOp::Ready);
    CHECK(got[0].op == UpdateOp::UpsertMapping);
    CHECK((got[0].value.flags & MappingValue::kLocal));
    CHECK(got[0].value.mac == a.mac);
    CHECK(got[1].op == UpdateOp::UpsertAttachment);
    CHECK(got[1].mo_id == 9);
    CHECK(got[1].port_index == 0);
    CHECK(got[1].state == AttachState::Deliver);
}

TEST_CASE("the core next hop is probed by ARP and learned from the reply", "[rings][neighbor]") {
    Bed b;
    b.cp->poll();  // first tick sends the probes (v4 ARP and v6 NS) via worker 0
    rte_mbuf* probes[4];
    unsigned n = rte_ring_dequeue_burst_elem(b.tx0.get(), probes, sizeof(rte_mbuf*), 4, nullptr);
    REQUIRE(n == 2);
    bool saw_arp = false, saw_ns = false;
    for (unsigned i = 0; i < n; ++i) {
        auto* eth = rte_pktmbuf_mtod(probes[i], rte_ether_hdr*);
        CHECK(probes[i]->port == 1);
        CHECK(std::memcmp(eth->src_addr.addr_bytes, b.core_mac.b.data(), 6) == 0);
        if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
            saw_arp = true;
            auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
            CHECK(arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST));
            CHECK(arp->arp_data.arp_tip == IpAddr::parse("198.51.100.254")->v4_be());
            CHECK(arp->arp_data.arp_sip == IpAddr::parse("198.51.100.1")->v4_be());
            // Turn the probe into the next hop's reply and punt it back as a worker would.
            arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
            const uint32_t sip = arp->arp_data.arp_sip;
            arp->arp_data.arp_sip = arp->arp_data.arp_tip;
            arp->arp_data.arp_tip = sip;
            const uint8_t nh[6] = {0x02, 0, 0, 0, 0xff, 0xfe};
            std::memcpy(arp->arp_data.arp_sha.addr_bytes, nh, 6);
            PuntMsg pm{};
            pm.mbuf = probes[i];
            pm.port_index = 1;
            pm.reason = PuntReason::Arp;
            REQUIRE(rte_ring_enqueue_elem(b.punt.get(), &pm, sizeof pm) == 0);
        } else {
            saw_ns = true;
            auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
            CHECK(ip->hop_limits == 255);
            CHECK(rte_ipv6_udptcp_cksum_verify(ip, ip + 1) == 0);
            rte_pktmbuf_free(probes[i]);
        }
    }
    CHECK(saw_arp);
    CHECK(saw_ns);
    Bed::take(b.upd0.get());
    b.cp->poll();
    auto got = Bed::take(b.upd0.get());
    REQUIRE(got.size() == 1);
    CHECK(got[0].op == UpdateOp::SetNextHop);
    CHECK(got[0].family == Family::V4);
    CHECK(got[0].mac == *MacAddr::parse("02:00:00:00:ff:fe"));
    CHECK(b.cp->neighbor(Family::V4).resolved);
    CHECK_FALSE(b.cp->neighbor(Family::V6).resolved);
}
