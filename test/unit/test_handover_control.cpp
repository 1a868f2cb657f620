// Control-plane side of the handover, without a DHT: the packets it parses and builds
// (announcements, gateway announcements, LM control packets) and what migrate-begin / abort,
// attach and announcements push to a worker's update ring.
#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring_elem.h>
#include <rte_udp.h>

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "catch.hpp"
#include "common/config.hpp"
#include "common/lm_wire.hpp"
#include "common/ring_msg.hpp"
#include "controlplane/control_plane.hpp"
#include "controlplane/lm_control.hpp"
#include "dataplane/dpdk_env.hpp"

using namespace lm;

namespace {

using Bytes = std::vector<uint8_t>;

MacAddr mac(const char* s) { return *MacAddr::parse(s); }
IpAddr addr(const char* s) { return *IpAddr::parse(s); }

// One pool for the process. Released, not owned: a static owner would free it after main()
// returned, i.e. after rte_eal_cleanup() (a crash); EAL's cleanup takes its memory back.
rte_mempool* pool() {
    static rte_mempool* p = make_pktmbuf_pool("hoctl_pool", 1023, 0).release();
    return p;
}

rte_mbuf* frame(const Bytes& b) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    REQUIRE(m);
    auto* p = rte_pktmbuf_append(m, uint16_t(b.size()));
    REQUIRE(p);
    std::memcpy(p, b.data(), b.size());
    return m;
}

Bytes bytes_of(const rte_mbuf* m) {
    auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
    return Bytes(p, p + m->data_len);
}

// Ones'-complement sum, independent of DPDK's helpers.
uint16_t csum(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t(p[i]) << 8 | p[i + 1];
    if (n & 1) sum += uint32_t(p[n - 1]) << 8;
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return uint16_t(sum);
}

Bytes eth(const MacAddr& dst, const MacAddr& src, uint16_t type) {
    Bytes b(dst.b.begin(), dst.b.end());
    b.insert(b.end(), src.b.begin(), src.b.end());
    b.push_back(uint8_t(type >> 8));
    b.push_back(uint8_t(type));
    return b;
}

// ARP/RARP body: htype 1, ptype 0x0800, op, sha, spa, tha, tpa.
Bytes arp_frame(uint16_t etype, uint16_t op, const MacAddr& src, const MacAddr& sha, const char* spa, const MacAddr& tha,
                const char* tpa) {
    Bytes b = eth(mac("ff:ff:ff:ff:ff:ff"), src, etype);
    Bytes body = {0, 1, 8, 0, 6, 4, uint8_t(op >> 8), uint8_t(op)};
    body.insert(body.end(), sha.b.begin(), sha.b.end());
    auto a = addr(spa);
    body.insert(body.end(), a.b.begin(), a.b.begin() + 4);
    body.insert(body.end(), tha.b.begin(), tha.b.end());
    auto t = addr(tpa);
    body.insert(body.end(), t.b.begin(), t.b.begin() + 4);
    b.insert(b.end(), body.begin(), body.end());
    return b;
}

// Neighbour Advertisement from src for target with flags and an optional TLLA option.
Bytes na_frame(const MacAddr& src, const char* target, uint8_t flags, const MacAddr* tlla, uint8_t hop = 255) {
    Bytes b = eth(mac("33:33:00:00:00:01"), src, 0x86DD);
    const unsigned icmp_len = 24 + (tlla ? 8 : 0);
    Bytes ip6 = {0x60, 0, 0, 0, 0, uint8_t(icmp_len), 58, hop};
    auto t = addr(target);
    ip6.insert(ip6.end(), t.b.begin(), t.b.end());  // source = the target itself
    const uint8_t all_nodes[16] = {0xFF, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    ip6.insert(ip6.end(), all_nodes, all_nodes + 16);
    Bytes icmp = {136, 0, 0, 0, flags, 0, 0, 0};
    icmp.insert(icmp.end(), t.b.begin(), t.b.end());
    if (tlla) {
        icmp.push_back(2);
        icmp.push_back(1);
        icmp.insert(icmp.end(), tlla->b.begin(), tlla->b.end());
    }
    // pseudo header: src, dst, length, next header
    uint32_t sum = csum(ip6.data() + 8, 32);
    sum += icmp_len + 58;
    const uint16_t ck = uint16_t(~csum(icmp.data(), icmp.size(), sum));
    icmp[2] = uint8_t(ck >> 8);
    icmp[3] = uint8_t(ck);
    b.insert(b.end(), ip6.begin(), ip6.end());
    b.insert(b.end(), icmp.begin(), icmp.end());
    return b;
}

std::optional<Announcement> parse(const Bytes& b) {
    rte_mbuf* m = frame(b);
    auto a = parse_announcement(m);
    rte_pktmbuf_free(m);
    return a;
}

const MacAddr kMo = mac("52:54:00:00:00:30");
const MacAddr kOther = mac("52:54:00:00:00:99");
const MacAddr kZero{};

}  // namespace

TEST_CASE("announcements: gratuitous ARP, unsolicited NA and RARP are recognised", "[handover]") {
    SECTION("gratuitous ARP request and reply") {
        for (uint16_t op : {1, 2}) {
            auto a = parse(arp_frame(0x0806, op, kMo, kMo, "192.0.2.20", kZero, "192.0.2.20"));
            REQUIRE(a);
            CHECK(a->kind == Announcement::Kind::GratuitousArp);
            CHECK(a->mac == kMo);
            REQUIRE(a->ip);
            CHECK(*a->ip == addr("192.0.2.20"));
            CHECK(a->mac_matches_frame);
        }
    }
    SECTION("an ordinary ARP request is not an announcement") {
        CHECK_FALSE(parse(arp_frame(0x0806, 1, kMo, kMo, "192.0.2.20", kZero, "192.0.2.1")));
    }
    SECTION("a GARP whose sender MAC is not the frame's source is flagged") {
        auto a = parse(arp_frame(0x0806, 1, kOther, kMo, "192.0.2.20", kZero, "192.0.2.20"));
        REQUIRE(a);
        CHECK_FALSE(a->mac_matches_frame);
    }
    SECTION("QEMU's RARP announce: MAC only") {
        auto a = parse(arp_frame(0x8035, 3, kMo, kMo, "0.0.0.0", kMo, "0.0.0.0"));
        REQUIRE(a);
        CHECK(a->kind == Announcement::Kind::Rarp);
        CHECK(a->mac == kMo);
        CHECK_FALSE(a->ip);
    }
    SECTION("RARP with a bad opcode, ARP with a bad layout, truncated frames") {
        CHECK_FALSE(parse(arp_frame(0x8035, 1, kMo, kMo, "0.0.0.0", kMo, "0.0.0.0")));
        Bytes b = arp_frame(0x0806, 1, kMo, kMo, "192.0.2.20", kZero, "192.0.2.20");
        b[14 + 4] = 8;  // hlen
        CHECK_FALSE(parse(b));
        Bytes t = arp_frame(0x0806, 1, kMo, kMo, "192.0.2.20", kZero, "192.0.2.20");
        t.resize(30);
        CHECK_FALSE(parse(t));
        CHECK_FALSE(parse(Bytes(10, 0)));
    }
    SECTION("unsolicited NA with and without a target link-layer option") {
        auto a = parse(na_frame(kMo, "2001:db8:1::20", 0x20, &kMo));
        REQUIRE(a);
        CHECK(a->kind == Announcement::Kind::UnsolicitedNa);
        CHECK(a->mac == kMo);
        CHECK(*a->ip == addr("2001:db8:1::20"));
        auto b = parse(na_frame(kMo, "2001:db8:1::20", 0x20, nullptr));
        REQUIRE(b);
        CHECK(b->mac == kMo);
        auto c = parse(na_frame(kOther, "2001:db8:1::20", 0x20, &kMo));  // option names another MAC
        REQUIRE(c);
        CHECK_FALSE(c->mac_matches_frame);
    }
    SECTION("solicited NA, hop limit below 255, bad checksum: not announcements") {
        CHECK_FALSE(parse(na_frame(kMo, "2001:db8:1::20", 0x60, &kMo)));
        CHECK_FALSE(parse(na_frame(kMo, "2001:db8:1::20", 0x20, &kMo, 64)));
        Bytes b = na_frame(kMo, "2001:db8:1::20", 0x20, &kMo);
        b.back() ^= 1;
        CHECK_FALSE(parse(b));
    }
}

TEST_CASE("gateway announcements are what a host's neighbour cache accepts", "[handover]") {
    const MacAddr gw = mac("02:00:5e:00:00:01");
    rte_mbuf* m = build_gratuitous_arp(pool(), gw, addr("192.0.2.1"), std::nullopt);
    REQUIRE(m);
    auto a = parse_announcement(m);  // our own parser agrees it is a gratuitous ARP from gw
    REQUIRE(a);
    CHECK(a->kind == Announcement::Kind::GratuitousArp);
    CHECK(a->mac == gw);
    CHECK(*a->ip == addr("192.0.2.1"));
    Bytes b = bytes_of(m);
    CHECK(b.size() == 14 + 28);
    CHECK(b[20] == 0);
    CHECK(b[21] == 2);  // reply
    rte_pktmbuf_free(m);

    m = build_unsolicited_na(pool(), gw, addr("2001:db8:1::1"), uint16_t(100));
    REQUIRE(m);
    b = bytes_of(m);
    REQUIRE(b.size() == 18 + 40 + 32);
    CHECK(b[12] == 0x81);
    CHECK(b[13] == 0x00);
    CHECK((uint16_t(b[14]) << 8 | b[15]) == 100);
    const uint8_t* ip6 = b.data() + 18;
    CHECK(ip6[7] == 255);
    const uint8_t* icmp = ip6 + 40;
    CHECK(icmp[0] == 136);
    CHECK(icmp[4] == 0xA0);  // Router + Override, not Solicited
    uint32_t sum = csum(ip6 + 8, 32) + 32 + 58;
    CHECK(csum(icmp, 32, sum) == 0xFFFF);  // checksum verifies
    rte_pktmbuf_free(m);
}

TEST_CASE("LM control packets: build and parse agree, byte by byte", "[handover]") {
    for (bool v6 : {false, true}) {
        LmControlAddr a;
        a.src_mac = mac("02:00:00:00:0c:01");
        a.dst_mac = mac("02:00:00:00:ff:fe");
        a.src = v6 ? addr("2001:db8:100:1::1") : addr("198.51.100.1");
        a.dst = v6 ? addr("2001:db8:100:2::1") : addr("198.51.100.17");
        a.udp_port = 4341;
        Bytes payload(700);
        for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i * 7);
        rte_mbuf* m = build_lm_control(pool(), a, wire::LmType::MoveNotify, 0x123456, 0x1122334455667788ull, 42,
                                       payload, 1, 2);
        REQUIRE(m);
        Bytes b = bytes_of(m);
        const unsigned l3 = 14, iplen = v6 ? 40 : 20, l4 = l3 + iplen;
        REQUIRE(b.size() == l4 + 8 + 24 + payload.size());
        if (v6) {
            uint32_t sum = csum(b.data() + l3 + 8, 32) + uint32_t(8 + 24 + payload.size()) + 17;
            CHECK(csum(b.data() + l4, b.size() - l4, sum) == 0xFFFF);
        } else {
            CHECK(csum(b.data() + l3, 20) == 0xFFFF);
            CHECK((b[l3 + 6] & 0x40) != 0);  // DF
            uint32_t sum = csum(b.data() + l3 + 12, 8) + uint32_t(8 + 24 + payload.size()) + 17;
            CHECK(csum(b.data() + l4, b.size() - l4, sum) == 0xFFFF);
        }
        CHECK((uint16_t(b[l4 + 2]) << 8 | b[l4 + 3]) == 4341);
        const uint8_t* lh = b.data() + l4 + 8;
        CHECK(lh[0] == 0x10);
        CHECK(lh[1] == 2);
        CHECK(lh[2] == 0);
        CHECK(lh[3] == 0x12);  // part 1 of 2
        CHECK(lh[4] == 0x12);
        CHECK(lh[5] == 0x34);
        CHECK(lh[6] == 0x56);
        auto c = parse_lm_control(m);
        REQUIRE(c);
        CHECK(c->type == wire::LmType::MoveNotify);
        CHECK(c->frag_index == 1);
        CHECK(c->frag_count == 2);
        CHECK(c->tenant == 0x123456);
        CHECK(c->mo == 0x1122334455667788ull);
        CHECK(c->epoch == 42);
        CHECK(c->outer_src == a.src);
        CHECK(Bytes(c->payload.begin(), c->payload.end()) == payload);
        rte_pktmbuf_free(m);

        m = build_lm_control(pool(), a, wire::LmType::RefreshHint, 7, 9, 11);
        REQUIRE(m);
        c = parse_lm_control(m);
        REQUIRE(c);
        CHECK(c->type == wire::LmType::RefreshHint);
        CHECK(c->payload.empty());
        CHECK(rte_pktmbuf_mtod_offset(m, const uint8_t*, l4 + 8)[3] == 0);  // reserved stays 0
        // Truncated by one byte: the UDP length no longer fits, refused.
        rte_pktmbuf_trim(m, 1);
        CHECK_FALSE(parse_lm_control(m));
        rte_pktmbuf_free(m);
    }
    LmControlAddr mixed;
    mixed.src = addr("198.51.100.1");
    mixed.dst = addr("2001:db8::1");
    CHECK(build_lm_control(pool(), mixed, wire::LmType::RefreshHint, 1, 1, 1) == nullptr);
    LmControlAddr a4;
    a4.src = addr("198.51.100.1");
    a4.dst = addr("198.51.100.17");
    Bytes big(kMoveNotifyChunk + 1);
    CHECK(build_lm_control(pool(), a4, wire::LmType::MoveNotify, 1, 1, 1, big) == nullptr);
    // A data packet or a MoveNotify with a bad fragment field is not a control packet.
    rte_mbuf* m = build_lm_control(pool(), a4, wire::LmType::MoveNotify, 1, 1, 1, Bytes(8), 0, 1);
    REQUIRE(m);
    rte_pktmbuf_mtod_offset(m, uint8_t*, 14 + 20 + 8)[3] = 0x21;  // index 2 of 1
    CHECK_FALSE(parse_lm_control(m));
    rte_pktmbuf_mtod_offset(m, uint8_t*, 14 + 20 + 8)[1] = 0;  // Data
    CHECK_FALSE(parse_lm_control(m));
    rte_pktmbuf_free(m);
}

namespace {

// A control plane with one worker whose rings the test reads, no DHT.
struct ControlBed {
    Config cfg;
    RingPtr updates, tx, miss, punt;
    WorkerCounters wc;
    std::unique_ptr<ControlPlane> cp;

    static constexpr const char* kYaml = R"(
locators: { v4: 198.51.100.1 }
gateway: { ipv4: 192.0.2.1, ipv6: "2001:db8:1::1", mac: 02:00:5e:00:00:01 }
ports:
  - { name: access0, device: net_null0, role: access, tenant: 1 }
  - { name: core0, device: net_null1, role: core }
core: { next_hop: { ipv4: 198.51.100.254, mac: 02:00:00:00:ff:fe } }
mobile_prefixes: [192.0.2.0/24, "2001:db8:1::/64"]
peer_prefixes: [198.51.100.0/24]
handover: { announce_count: 1 }
static_attachments:
  - { tenant: 1, mo_id: 0x30, mac: "52:54:00:00:00:30", port: access0, eids: [192.0.2.20, "2001:db8:1::20"] }
)";
    // yaml_tail: more YAML lines appended to kYaml (e.g. more static attachments).
    explicit ControlBed(const std::string& tag, const std::string& yaml_tail = "", unsigned tx_ring = 1024) {
        cfg = load_config_string(std::string(kYaml) + yaml_tail);
        updates = make_spsc_ring(tag + "up", sizeof(UpdateMsg), 1024, 0);
        tx = make_spsc_ring(tag + "tx", sizeof(rte_mbuf*), tx_ring, 0);
        miss = make_mpsc_ring(tag + "miss", sizeof(MissMsg), 1024, 0);
        punt = make_mpsc_ring(tag + "punt", sizeof(PuntMsg), 1024, 0);
        std::vector<PortRuntime> ports(2);
        ports[0].mac = mac("02:00:00:00:0a:00");
        ports[1].mac = mac("02:00:00:00:0c:01");
        cp = std::make_unique<ControlPlane>(cfg, ports, std::vector<WorkerHandle>{{updates.get(), tx.get(), &wc}}, pool(),
                                            miss.get(), punt.get());
    }
    ~ControlBed() {
        cp->drain();
        updates_();
    }
    std::vector<UpdateMsg> updates_() {
        std::vector<UpdateMsg> out;
        UpdateMsg u;
        while (rte_ring_dequeue_elem(updates.get(), &u, sizeof u) == 0) out.push_back(u);
        return out;
    }
    std::vector<Bytes> sent() {
        std::vector<Bytes> out;
        rte_mbuf* m;
        while (rte_ring_dequeue_elem(tx.get(), &m, sizeof m) == 0) {
            out.push_back(bytes_of(m));
            rte_pktmbuf_free(m);
        }
        return out;
    }
    void punt_frame(const Bytes& b, PuntReason r) {
        PuntMsg p{};
        p.mbuf = frame(b);
        p.port_index = 0;
        p.reason = r;
        REQUIRE(rte_ring_enqueue_elem(punt.get(), &p, sizeof p) == 0);
        cp->poll();
    }
};

const UpdateMsg* find_attach(const std::vector<UpdateMsg>& us) {
    const UpdateMsg* last = nullptr;
    for (auto& u : us)
        if (u.op == UpdateOp::UpsertAttachment) last = &u;
    return last;
}

}  // namespace

TEST_CASE("migrate-begin holds, migrate-abort delivers, in the right order", "[handover]") {
    ControlBed bed("hoctl1");
    bed.cp->start();
    auto us = bed.updates_();
    const UpdateMsg* at = find_attach(us);
    REQUIRE(at);
    CHECK(at->state == AttachState::Deliver);
    CHECK(at->port_index == 0);
    CHECK(at->mac == kMo);
    // The gateway announced itself to the attached MO: one GARP and one NA (announce_count 1).
    auto sent = bed.sent();
    REQUIRE(sent.size() == 2);
    CHECK(sent[0][12] == 0x08);
    CHECK(sent[0][13] == 0x06);
    CHECK(sent[1][12] == 0x86);

    CHECK(bed.cp->migrate_begin(1, 0x31).find("not attached") != std::string::npos);
    CHECK(bed.cp->migrate_abort(1, 0x30).find("not leaving") != std::string::npos);
    REQUIRE(bed.cp->migrate_begin(1, 0x30).empty());
    us = bed.updates_();
    // Both EIDs become local+hold mappings, then (last) the attachment goes to Hold.
    REQUIRE(us.size() == 3);
    for (int i = 0; i < 2; ++i) {
        CHECK(us[i].op == UpdateOp::UpsertMapping);
        CHECK(us[i].value.flags == (MappingValue::kLocal | MappingValue::kHold));
        CHECK(us[i].value.mo_id == 0x30);
    }
    CHECK(us[2].op == UpdateOp::UpsertAttachment);
    CHECK(us[2].state == AttachState::Hold);
    CHECK(bed.cp->migrate_begin(1, 0x30).empty());  // idempotent
    CHECK(bed.updates_().empty());
    CHECK(bed.cp->counters().migrate_begins.get() == 1);

    REQUIRE(bed.cp->migrate_abort(1, 0x30).empty());
    us = bed.updates_();
    REQUIRE(us.size() == 3);
    CHECK(us[0].value.flags == MappingValue::kLocal);
    CHECK(us[2].state == AttachState::Deliver);

    // The MO announcing itself again while held means it never left: the hold ends.
    REQUIRE(bed.cp->migrate_begin(1, 0x30).empty());
    bed.updates_();
    bed.punt_frame(arp_frame(0x0806, 1, kMo, kMo, "192.0.2.20", kZero, "192.0.2.20"), PuntReason::Arp);
    at = nullptr;
    us = bed.updates_();
    at = find_attach(us);
    REQUIRE(at);
    CHECK(at->state == AttachState::Deliver);
    CHECK(bed.cp->counters().migrate_cancelled.get() == 2);
}

TEST_CASE("announcements: SAVI and unknown hosts without a directory", "[handover]") {
    ControlBed bed("hoctl2");
    bed.cp->start();
    bed.updates_();
    bed.sent();
    // Another host claims the attached MO's address: refused, nothing pushed.
    bed.punt_frame(arp_frame(0x0806, 1, kOther, kOther, "192.0.2.20", kZero, "192.0.2.20"), PuntReason::Arp);
    CHECK(bed.cp->counters().attach_refused_savi.get() == 1);
    // The attached MO announcing an address that is not one of its EIDs: refused.
    bed.punt_frame(arp_frame(0x0806, 1, kMo, kMo, "192.0.2.99", kZero, "192.0.2.99"), PuntReason::Arp);
    CHECK(bed.cp->counters().attach_refused_savi.get() == 2);
    // A spoofed sender MAC (frame source differs).
    bed.punt_frame(arp_frame(0x0806, 1, kOther, kMo, "192.0.2.20", kZero, "192.0.2.20"), PuntReason::Arp);
    CHECK(bed.cp->counters().attach_refused_savi.get() == 3);
    CHECK(bed.updates_().empty());
    // An unknown host: no directory to ask, counted.
    bed.punt_frame(arp_frame(0x8035, 3, kOther, kOther, "0.0.0.0", kOther, "0.0.0.0"), PuntReason::Rarp);
    CHECK(bed.cp->counters().attach_unknown.get() == 1);
    // The known MO announcing itself where it is: nothing to do.
    bed.punt_frame(na_frame(kMo, "2001:db8:1::20", 0x20, &kMo), PuntReason::Nd);
    CHECK(bed.updates_().empty());
    CHECK(bed.cp->counters().announcements.get() == 5);
    // Its link-local NA (a migrated guest announces fe80:: next to its EIDs): a link-local
    // address is never an EID, so only the MAC counts: not refused, and it is here already.
    bed.punt_frame(na_frame(kMo, "fe80::5054:ff:fe00:30", 0x20, &kMo), PuntReason::Nd);
    CHECK(bed.cp->counters().attach_refused_savi.get() == 3);
    CHECK(bed.updates_().empty());
    CHECK(bed.cp->counters().announcements.get() == 6);
    // Not an announcement at all (an ARP request for the gateway that reached the control lcore).
    const uint64_t unhandled = bed.cp->counters().punt_unhandled.get();
    bed.punt_frame(arp_frame(0x0806, 1, kMo, kMo, "192.0.2.20", kZero, "192.0.2.1"), PuntReason::Arp);
    CHECK(bed.cp->counters().punt_unhandled.get() == unhandled + 1);
}

TEST_CASE("control packets wait for room in worker 0's tx ring, in order, instead of being dropped", "[handover]") {
    // 600 MOs with an IPv6 EID each: one gateway NA per MO at start-up, into a ring of 256.
    std::string more;
    for (unsigned i = 0; i < 600; ++i)
        more += fmt::format("  - {{ tenant: 1, mo_id: {:#x}, mac: \"52:54:00:01:{:02x}:{:02x}\", port: access0, "
                            "eids: [\"2001:db8:1::1:{:x}\"] }}\n",
                            0x1000 + i, i >> 8, i & 0xFF, i);
    ControlBed bed("hoctl3", more, 256);
    bed.cp->start();
    auto first = bed.sent();
    CHECK(first.size() == 255);  // what the ring holds; the rest waits
    size_t total = first.size();
    for (int round = 0; round < 10; ++round) {
        bed.cp->poll();
        total += bed.sent().size();
    }
    // The attached MO of the base config announces on both families (2 packets), the others one.
    CHECK(total == 602);
    CHECK(bed.cp->counters().gateway_announced.get() == 602);
    CHECK(bed.cp->counters().tx_ring_full.get() == 0);
}
