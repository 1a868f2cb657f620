// Handover on the data plane (real mbufs, frames built and checked byte by byte): attachments in
// Hold keep their packets in the hold buffer and release them in order when they leave Hold;
// Forward re-encapsulates to the MO's new AR (forwarding pointer, F flag, new epoch, inner TTL - 1);
// stale senders get refresh hints (exact bytes, rate limited); MoveNotify / refresh hints / RARP
// are punted. Every packet is accounted for and the pool's in-use count returns to zero.
#include <deque>
#include <map>
#include <random>

#include <rte_cycles.h>

#include "catch.hpp"
#include "dataplane/hold_buffer.hpp"
#include "test/unit/test_helpers.hpp"

using namespace lmt;

namespace {

constexpr MoId kMo = 0x30;  // the Lm default
constexpr MoId kMoB = 0x31;
constexpr Epoch kOld = 0x0000018F00000001ull;  // the Lm default: what a stale sender uses
constexpr Epoch kNew = 0x0000018F00010000ull;  // the MO's epoch since it (re)attached
constexpr Epoch kNewer = 0x0000018F00020000ull;
const IpAddr kCn4 = ip("192.0.2.99");  // correspondent behind a peer AR
const IpAddr kCn6 = ip("2001:db8:1::99");
const IpAddr kMo4 = ip("192.0.2.30");  // the MO's EIDs
const IpAddr kMo6 = ip("2001:db8:1::30");
const IpAddr kNewAr4 = ip("198.51.100.3");  // the AR the MO moved to
const IpAddr kNewAr6 = ip("2001:db8:ff::3");

// CRC-32C as docs/protocol.md defines it (reflected 0x82F63B78, register = seed, no inversion),
// bit by bit: an implementation independent of DPDK's rte_hash_crc.
uint32_t crc32c(uint32_t crc, const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return crc;
}
// protocol.md's flow hash of an inner packet (no IPv4 options, TCP/UDP/SCTP with ports, or IPv6 flow label).
uint32_t flow_hash_of(const Bytes& in) {
    const bool v6 = (in.at(0) >> 4) == 6;
    const uint8_t proto = v6 ? in[6] : in[9];
    uint32_t h = v6 ? crc32c(proto, &in[8], 32) : crc32c(proto, &in[12], 8);
    const size_t l4 = v6 ? 40 : 20;
    if (proto == 6 || proto == 17 || proto == 132) {
        h = crc32c(h, &in[l4], 4);
    } else if (v6) {
        const uint8_t fl[4] = {0, uint8_t(in[1] & 0x0F), in[2], in[3]};
        h = crc32c(h, fl, 4);
    }
    return h ^ (h >> 16);
}
uint16_t hint_sport(uint32_t tenant, MoId mo) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(mo >> (56 - 8 * i));
    uint32_t h = crc32c(tenant, b, 8);
    h ^= h >> 16;
    return uint16_t(49152 | (h & 0x3FFF));
}

// The refresh hint as docs/protocol.md specifies it, built independently.
Bytes hint_frame(bool v6, const IpAddr& dst, uint32_t tenant, MoId mo, Epoch ep, bool csum = false) {
    Lm l;
    l.type = 1;
    l.next = 0;
    l.tenant = tenant;
    l.mo = mo;
    l.epoch = ep;
    const IpAddr src = v6 ? kLoc6 : kLoc4;
    Bytes u = udp(src, dst, hint_sport(tenant, mo), kLmPort, lm_hdr(l), csum);
    if (v6) return eth(kNh6, kMacCore, 0x86DD, ipv6(V6{src, dst, 17, 0xC0, 0, 64}, u));
    V4 h{src, dst};
    h.tos = 0xC0;
    h.df = true;
    h.id = 0;
    return eth(kNh4, kMacCore, 0x0800, ipv4(h, u));
}

// A packet re-encapsulated by the forwarding pointer, built independently: F flag, the new
// epoch, the inner packet with its TTL / hop limit decremented, UDP source port and flow label
// from protocol.md's flow hash, outer DSCP/ECN copied from the inner header, DF (inner DF/IPv6).
Bytes fwd_frame(const Bytes& inner_before, const IpAddr& to, uint32_t tenant, MoId mo, Epoch ep) {
    const Bytes inner = ttl_minus_one(inner_before);
    const bool in6 = (inner.at(0) >> 4) == 6;
    const bool out6 = to.is_v6();
    const uint32_t h = flow_hash_of(inner_before);
    const uint8_t tc = in6 ? uint8_t((get16(inner, 0) >> 4) & 0xFF) : inner[1];
    Lm l;
    l.flags = 1;
    l.next = in6 ? 41 : 4;
    l.tenant = tenant;
    l.mo = mo;
    l.epoch = ep;
    const IpAddr src = out6 ? kLoc6 : kLoc4;
    Bytes u = udp(src, to, uint16_t(49152 | (h & 0x3FFF)), kLmPort, lm_hdr(l) + inner, false);
    if (out6) return eth(kNh6, kMacCore, 0x86DD, ipv6(V6{src, to, 17, tc, h & 0xFFFFF, 64}, u));
    V4 o{src, to};
    o.tos = tc;
    o.df = true;  // every inner packet of these tests has DF or is IPv6 (policy copy)
    o.id = 0;
    return eth(kNh4, kMacCore, 0x0800, ipv4(o, u));
}

// An LM data packet to the MO as a correspondent's AR sends it.
LmFrame to_mo(const Bytes& inner, bool outer6 = false, Epoch ep = kOld) {
    LmFrame f = outer6 ? lm6(inner, (inner.at(0) >> 4) == 6 ? 41 : 4) : lm4(inner, (inner.at(0) >> 4) == 6 ? 41 : 4);
    f.lm.epoch = ep;
    return f;
}
Bytes in4(uint16_t seq, size_t n = 40, uint8_t ttl = 64) { return udp4_pkt(kCn4, kMo4, seq, 4000, n, 0, ttl); }
Bytes in6(uint16_t seq, size_t n = 40, uint8_t hop = 64) { return udp6_pkt(kCn6, kMo6, seq, 4000, n, 0, hop); }
Bytes delivered(const Bytes& inner) { return eth(kMoMac, kGwMac, (inner.at(0) >> 4) == 6 ? 0x86DD : 0x0800, inner); }
bool is_hint(const Bytes& frame) {
    const size_t lm = get16(frame, 12) == 0x86DD ? 62 : 42;
    return frame.size() > lm + 1 && frame[lm + 1] == 1;
}

}  // namespace

TEST_CASE("handover: test helpers agree with protocol.md's flow hash vectors", "[handover]") {
    // ICMP 192.0.2.10 -> 192.0.2.20: h = 0x0073A24E; TCP :12345 -> :80: h = 0x3517B398.
    Bytes icmp = ipv4(V4(ip("192.0.2.10"), ip("192.0.2.20"), 1), icmp4(8, 0, 0, {}));
    REQUIRE(flow_hash_of(icmp) == 0x0073A24Eu);
    Bytes t = ipv4(V4(ip("192.0.2.10"), ip("192.0.2.20"), 6), tcp(ip("192.0.2.10"), ip("192.0.2.20"), 12345, 80, kSyn, {}));
    REQUIRE(flow_hash_of(t) == 0x3517B398u);
}

// =============================================================================================
// Hold and release

TEST_CASE("handover: held LM packets are released in order to the forwarding pointer", "[handover][hold]") {
    Fixture f([](DpConfig& c) { c.hint_rate = 1000000; });  // a hint per packet: no rate limit in the way
    f.enable_drain();
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Deliver, kOld);
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Hold, kOld);  // migrate-begin

    // 1000 packets (10k pps x 100 ms), two flows: 4in4 from a v4 peer, 6in6 from a v6 peer.
    constexpr unsigned kN = 1000;
    std::vector<Bytes> inner;
    for (unsigned i = 0; i < kN; ++i) inner.push_back(i % 2 ? in6(uint16_t(i)) : in4(uint16_t(i)));
    for (unsigned i = 0; i < kN; i += 25) {
        std::vector<Bytes> burst;
        for (unsigned k = i; k < i + 25; ++k) burst.push_back(lm_frame(to_mo(inner[k], k % 2 == 1)));
        f.run(kCore, burst);
    }
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.drops_total() == 0);
    REQUIRE(f.ctr.handover_held.get() == kN);
    REQUIRE(f.pp->held(1, kMo) == kN);
    REQUIRE(f.in_use() == int(kN));

    // The MO moved to the AR at kNewAr6 (epoch kNew): the held packets follow it.
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNew, kNewAr6);
    REQUIRE(f.pp->hold_packets() == 0);
    REQUIRE(f.ctr.handover_released.get() == kN);
    REQUIRE(f.ctr.handover_forwarded.get() == kN);
    REQUIRE(f.ctr.encap.get() == 0);  // forwarding is counted apart from access encapsulation
    REQUIRE(f.drops_total() == 0);
    auto out = f.take(kCore);
    std::vector<Bytes> fwd, hints;
    for (auto& b : out) (is_hint(b) ? hints : fwd).push_back(b);
    REQUIRE(fwd.size() == kN);
    REQUIRE(hints.size() == kN);  // each released packet still came from a stale sender
    // Order kept per flow; every byte as specified (outer dst = new AR, F flag, new epoch, TTL - 1).
    unsigned next4 = 0, next6 = 1;
    for (auto& b : fwd) {
        const bool inner6 = b[62 + 2] == 41;
        unsigned& next = inner6 ? next6 : next4;
        INFO("packet " << next);
        REQUIRE(b == fwd_frame(inner[next], kNewAr6, 1, kMo, kNew));
        REQUIRE(b[62] == 0x11);  // version 1, F
        REQUIRE(get64(b, 62 + 16) == kNew);
        next += 2;
    }
    REQUIRE(next4 == kN);
    REQUIRE(next6 == kN + 1);
    // Hints go to each packet's outer source in its family, with the forwarding epoch.
    size_t h4 = 0, h6 = 0;
    for (auto& h : hints) {
        if (get16(h, 12) == 0x0800) {
            REQUIRE(h == hint_frame(false, kPeer4, 1, kMo, kNew));
            ++h4;
        } else {
            REQUIRE(h == hint_frame(true, kPeer6, 1, kMo, kNew));
            ++h6;
        }
    }
    REQUIRE(h4 == kN / 2);
    REQUIRE(h6 == kN / 2);
    REQUIRE(f.ctr.hints_sent.get() == kN);
    REQUIRE(f.ctr.ports[kCore].rx_packets.get() == kN);  // released packets are not counted twice

    SECTION("later packets are forwarded at once, with valid checksums") {
        const Bytes p = in4(5000, 100, 30);
        f.run(kCore, lm_frame(to_mo(p)));
        auto o = f.take(kCore);
        REQUIRE(o.size() == 2);
        REQUIRE(o[0] == hint_frame(false, kPeer4, 1, kMo, kNew));  // the hint leaves first
        REQUIRE(o[1] == fwd_frame(p, kNewAr6, 1, kMo, kNew));
        const Bytes inner_out = slice(o[1], 86);
        REQUIRE(inner_out[8] == 29);  // TTL 30 - 1
        REQUIRE(ipv4_csum_ok(inner_out, 0));
        REQUIRE(l4_csum_ok(kCn4, kMo4, 17, inner_out.data() + 20, inner_out.size() - 20));
    }
    f.discard();
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("handover: held packets are delivered in order when the MO stays (Hold -> Deliver)", "[handover][hold]") {
    Fixture f;
    f.enable_drain();
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Hold, kOld);
    constexpr unsigned kN = 300;
    std::vector<Bytes> inner;
    for (unsigned i = 0; i < kN; ++i) inner.push_back(i % 3 ? in4(uint16_t(i), 20 + i % 50) : in6(uint16_t(i)));
    for (unsigned i = 0; i < kN; i += 30) {
        std::vector<Bytes> burst;
        for (unsigned k = i; k < i + 30; ++k) burst.push_back(lm_frame(to_mo(inner[k], false)));
        f.run(kCore, burst);
    }
    REQUIRE(f.pp->held(1, kMo) == kN);
    REQUIRE(f.staged_total() == 0);
    // Another MO's attachment changing releases nothing.
    f.attach_state(1, kMoB, kAcc1, kMo2Mac, AttachState::Deliver);
    REQUIRE(f.pp->held(1, kMo) == kN);
    // Hold -> Hold (a repeated migrate-begin) releases nothing either.
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Hold, kOld);
    REQUIRE(f.pp->held(1, kMo) == kN);

    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Deliver, kOld);
    REQUIRE(f.ctr.handover_released.get() == kN);
    REQUIRE(f.ctr.decap.get() == kN);
    auto out = f.take(kAcc0);
    REQUIRE(out.size() == kN);
    // Order is kept per flow (here: per inner family; within a burst the path runs IPv4 before IPv6).
    std::vector<Bytes> want4, want6, got4, got6;
    for (auto& p : inner) ((p[0] >> 4) == 6 ? want6 : want4).push_back(delivered(p));
    for (auto& o : out) (get16(o, 12) == 0x86DD ? got6 : got4).push_back(o);
    REQUIRE(got4.size() == want4.size());
    for (size_t i = 0; i < got4.size(); ++i) {
        INFO("IPv4 packet " << i);
        REQUIRE(got4[i] == want4[i]);
    }
    REQUIRE(got6 == want6);
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.drops_total() == 0);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("handover: hold bounds (per MO, total) and timeout are counted, nothing leaks", "[handover][hold]") {
    Fixture f([](DpConfig& c) {
        c.hold_packets = 10;
        c.hold_per_mo = 6;
        c.hold_timeout_ms = 20;
    });
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Hold);
    f.attach_state(1, kMoB, kAcc0, kMo2Mac, AttachState::Hold);
    std::vector<Bytes> a, b;
    for (uint16_t i = 0; i < 8; ++i) {
        a.push_back(lm_frame(to_mo(in4(i))));
        LmFrame fb = to_mo(in4(uint16_t(100 + i)));
        fb.lm.mo = kMoB;
        b.push_back(lm_frame(fb));
    }
    f.run(kCore, a);
    REQUIRE(f.pp->held(1, kMo) == 6);
    REQUIRE(f.drop(Drop::HoldFull) == 2);  // per MO
    f.run(kCore, b);
    REQUIRE(f.pp->held(1, kMoB) == 4);
    REQUIRE(f.drop(Drop::HoldFull) == 2 + 4);  // total
    REQUIRE(f.ctr.handover_held.get() == 10);
    REQUIRE(f.in_use() == 10);

    SECTION("timeout") {
        f.pp->expire_hold(rte_rdtsc());  // 20 ms have not passed
        REQUIRE(f.pp->hold_packets() == 10);
        rte_delay_ms(25);
        f.pp->expire_hold(rte_rdtsc());
        REQUIRE(f.drop(Drop::HoldTimeout) == 10);
        REQUIRE(f.pp->hold_packets() == 0);
        REQUIRE(f.in_use() == 0);
        // The buffer is usable again afterwards.
        f.run(kCore, a[0]);
        REQUIRE(f.pp->held(1, kMo) == 1);
    }
    SECTION("timeout drops the oldest packets of a FIFO first") {
        rte_delay_ms(25);
        f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Deliver);  // frees 6 slots, delivering them
        REQUIRE(f.take(kAcc0).size() == 6);
        f.run(kCore, b[4]);  // MO B: 4 old + 1 new
        REQUIRE(f.pp->held(1, kMoB) == 5);
        f.pp->expire_hold(rte_rdtsc());
        REQUIRE(f.drop(Drop::HoldTimeout) == 4);
        REQUIRE(f.pp->held(1, kMoB) == 1);
        f.attach_state(1, kMoB, kAcc1, kMo2Mac, AttachState::Deliver);
        auto o = f.take(kAcc1);
        REQUIRE(o.size() == 1);
        REQUIRE(get16(o[0], 14 + 20) == 104);  // the newest one survived
    }
    SECTION("detach releases: the packets are dropped as for an unknown MO") {
        f.detach_mo(1, kMo);
        REQUIRE(f.drop(Drop::LmUnknownMo) == 6);
        REQUIRE(f.ctr.handover_released.get() == 6);
        REQUIRE(f.pp->hold_packets() == 4);
    }
    SECTION("hold buffer off: Hold drops at once") {
        Fixture g([](DpConfig& c) { c.hold_packets = 0; });
        g.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Hold);
        g.run(kCore, a);
        REQUIRE(g.drop(Drop::HoldFull) == 8);
        REQUIRE(g.in_use() == 0);
    }
    f.discard();
    f.pp->expire_hold(UINT64_MAX);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("handover: local traffic to an MO with kHold waits with its LM traffic, in order", "[handover][hold][access]") {
    Fixture f;
    f.enable_drain();
    f.map_local_hold(1, kMo4, kMo, kAcc0, kMoMac);
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Hold, kOld);
    // A correspondent on this AR (host on access0) and one behind a peer AR, interleaved.
    auto local = [](uint16_t seq) { return from_host(udp4_pkt(kHost4, kMo4, seq, 4000, 30)); };
    f.run(kAcc0, {local(1), local(2)});
    f.run(kCore, {lm_frame(to_mo(in4(3))), lm_frame(to_mo(in4(4))), lm_frame(to_mo(in4(5)))});
    f.run(kAcc0, {local(6), local(7), local(8)});
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.ctr.local.get() == 0);
    REQUIRE(f.pp->held(1, kMo) == 8);
    REQUIRE(f.ctr.handover_held.get() == 8);

    SECTION("the MO moved: the new mapping first, then Forward; everything goes to the new AR") {
        f.map_remote(1, kMo4, kMo, kNewAr4, kNew);
        REQUIRE(f.pp->held(1, kMo) == 8);  // a mapping update alone releases nothing
        f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNew, kNewAr4);
        auto out = f.take(kCore);
        std::vector<Bytes> data;
        for (auto& b : out)
            if (!is_hint(b)) data.push_back(b);
        REQUIRE(data.size() == 8);
        for (uint16_t i = 0; i < 8; ++i) {
            INFO("packet " << i + 1);
            const Bytes& b = data[i];
            REQUIRE(get32(b, 30) == get32(Bytes(kNewAr4.b.begin(), kNewAr4.b.end()), 0));  // outer dst
            REQUIRE(get64(b, 42 + 16) == kNew);
            REQUIRE(get16(b, 66 + 20) == i + 1);  // inner UDP source port: arrival order
            const bool from_core = i + 1 >= 3 && i + 1 <= 5;
            REQUIRE(b[42] == (from_core ? 0x11 : 0x10));  // F only on forwarded LM traffic
            const Bytes src_inner = from_core ? in4(uint16_t(i + 1)) : udp4_pkt(kHost4, kMo4, uint16_t(i + 1), 4000, 30);
            REQUIRE(slice(b, 66) == ttl_minus_one(src_inner));
        }
        REQUIRE(f.ctr.encap.get() == 5);
        REQUIRE(f.ctr.handover_forwarded.get() == 3);
    }
    SECTION("the MO stays: local mapping without kHold, then Deliver") {
        f.map_local(1, kMo4, kMo, kAcc0, kMoMac);
        f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Deliver, kOld);
        auto out = f.take(kAcc0);
        REQUIRE(out.size() == 8);
        for (uint16_t i = 0; i < 8; ++i) {
            INFO("packet " << i + 1);
            const bool from_core = i + 1 >= 3 && i + 1 <= 5;
            // Local delivery decrements the TTL; decapsulation does not (protocol.md section 5).
            const Bytes expect = from_core ? in4(uint16_t(i + 1)) : ttl_minus_one(udp4_pkt(kHost4, kMo4, uint16_t(i + 1), 4000, 30));
            REQUIRE(out[i] == delivered(expect));
        }
        REQUIRE(f.ctr.local.get() == 5);
        REQUIRE(f.ctr.decap.get() == 3);
    }
    SECTION("mapping removed, then detached: every packet dropped with a reason") {
        f.unmap(1, kMo4);
        f.detach_mo(1, kMo);
        REQUIRE(f.drop(Drop::LmUnknownMo) == 3);
        REQUIRE(f.drop(Drop::CacheMiss) == 5);  // miss buffer off in the test config
    }
    REQUIRE(f.drops_total() == f.drop(Drop::LmUnknownMo) + f.drop(Drop::CacheMiss));
    REQUIRE(f.ctr.handover_released.get() == 8);
    REQUIRE(f.pp->hold_packets() == 0);
    f.discard();
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// Forwarding pointer

TEST_CASE("handover: forwarding pointer per family, TTL, MTU, ECN", "[handover][forward]") {
    Fixture f([](DpConfig& c) { c.hint_rate = 0; });  // hints off: only the data here
    const Bytes p4 = in4(7, 60, 9), p6 = in6(8, 60, 9);
    struct Case {
        const char* what;
        IpAddr to;
        bool outer6;
    };
    for (const Case& c : {Case{"to a v4 AR, from v4", kNewAr4, false}, Case{"to a v4 AR, from v6", kNewAr4, true},
                          Case{"to a v6 AR, from v4", kNewAr6, false}, Case{"to a v6 AR, from v6", kNewAr6, true}}) {
        INFO(c.what);
        f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNewer, c.to);
        for (const Bytes* p : {&p4, &p6}) {
            REQUIRE(f.one(kCore, lm_frame(to_mo(*p, c.outer6)), kCore) == fwd_frame(*p, c.to, 1, kMo, kNewer));
        }
    }
    REQUIRE(f.ctr.handover_forwarded.get() == 8);
    REQUIRE(f.ctr.hints_rate_limited.get() == 8);  // rate 0: never sent, always counted

    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNewer, kNewAr6);
    SECTION("inner TTL / hop limit 1: ttl_expired, no ICMP") {
        f.run(kCore, lm_frame(to_mo(in4(1, 20, 1))));
        f.run(kCore, lm_frame(to_mo(in6(1, 20, 1))));
        f.run(kCore, lm_frame(to_mo(in4(1, 20, 0))));
        REQUIRE(f.drop(Drop::TtlExpired) == 3);
        REQUIRE(f.staged_total() == 0);
        // TTL 2 leaves with 1.
        Bytes o = f.one(kCore, lm_frame(to_mo(in4(1, 20, 2))), kCore);
        REQUIRE(o[86 + 8] == 1);
    }
    SECTION("too big for the core MTU after re-encapsulation: too_big, no ICMP") {
        const Bytes big = in4(1, 1500 - 28 - 72 + 1);  // inner 1429 + 72 > 1500
        f.run(kCore, lm_frame(to_mo(big)));
        REQUIRE(f.drop(Drop::TooBig) == 1);
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.ctr.icmp_sent.get() == 0);
        const Bytes fits = in4(1, 1500 - 28 - 72);
        REQUIRE(f.one(kCore, lm_frame(to_mo(fits)), kCore) == fwd_frame(fits, kNewAr6, 1, kMo, kNewer));
    }
    SECTION("RFC 6040: outer CE over inner ECT(0) is carried as CE into the new tunnel") {
        LmFrame lf = to_mo(udp4_pkt(kCn4, kMo4, 1, 2, 30, 0x02));
        lf.tos = 0x03;
        Bytes o = f.one(kCore, lm_frame(lf), kCore);
        REQUIRE(((get32(o, 14) >> 20) & 0x3) == 0x3);  // outer IPv6 TC: CE
        REQUIRE((o[86 + 1] & 0x3) == 0x3);            // inner: CE
        REQUIRE(ipv4_csum_ok(o, 86));
        LmFrame bad = to_mo(udp4_pkt(kCn4, kMo4, 1, 2, 30, 0x00));
        bad.tos = 0x03;
        f.run(kCore, lm_frame(bad));
        REQUIRE(f.drop(Drop::EcnDrop) == 1);
    }
    SECTION("next hop of the new AR's family unresolved: nexthop_unresolved") {
        f.set_next_hop(Family::V6, MacAddr{});
        f.run(kCore, lm_frame(to_mo(p4)));
        REQUIRE(f.drop(Drop::NextHopUnresolved) == 1);
    }
    SECTION("Forward without a target: no_local_locator") {
        f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNewer, IpAddr{});
        f.run(kCore, lm_frame(to_mo(p4)));
        REQUIRE(f.drop(Drop::NoLocator) == 1);
    }
    REQUIRE(f.take_punts().empty());
    f.discard();
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("handover: forward to a family we have no locator of: no_local_locator (hint still sent)", "[handover][forward]") {
    Fixture f([](DpConfig& c) { c.has_loc6 = false; });
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNew, kNewAr6);
    f.run(kCore, lm_frame(to_mo(in4(1))));
    REQUIRE(f.drop(Drop::NoLocator) == 1);
    REQUIRE(f.drops_total() == 1);
    auto o = f.take(kCore);
    REQUIRE(o.size() == 1);
    REQUIRE(o[0] == hint_frame(false, kPeer4, 1, kMo, kNew));
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("handover: ping-pong guard", "[handover][forward]") {
    Fixture f;
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNew, kPeer4);
    SECTION("forwarded (F) by the AR our pointer names: forward_loop, no hint") {
        LmFrame lf = to_mo(in4(1));
        lf.lm.flags = 1;
        f.run(kCore, lm_frame(lf));
        REQUIRE(f.drop(Drop::ForwardLoop) == 1);
        REQUIRE(f.drops_total() == 1);
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.ctr.hints_sent.get() + f.ctr.hints_rate_limited.get() == 0);
    }
    SECTION("plain data from that AR is sent back to it, without a hint (it is not stale)") {
        const Bytes p = in4(2);
        REQUIRE(f.one(kCore, lm_frame(to_mo(p)), kCore) == fwd_frame(p, kPeer4, 1, kMo, kNew));
        REQUIRE(f.ctr.hints_sent.get() == 0);
    }
    SECTION("F from another AR (a chain of pointers) is forwarded, and that AR gets a hint") {
        LmFrame lf = to_mo(in4(3));
        lf.src = ip("198.51.100.9");
        lf.lm.flags = 1;
        f.run(kCore, lm_frame(lf));
        auto o = f.take(kCore);
        REQUIRE(o.size() == 2);
        REQUIRE(o[0] == hint_frame(false, ip("198.51.100.9"), 1, kMo, kNew));
        REQUIRE(o[1] == fwd_frame(in4(3), kPeer4, 1, kMo, kNew));
    }
    SECTION("v6: F from the pointer's v6 locator loops too") {
        f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNew, kPeer6);
        LmFrame lf = to_mo(in6(1), true);
        lf.lm.flags = 1;
        f.run(kCore, lm_frame(lf));
        REQUIRE(f.drop(Drop::ForwardLoop) == 1);
        // Same address bytes in the other family are not the same locator.
        f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Forward, kOld, kNew, kPeer4);
        LmFrame lf6 = to_mo(in6(2), true);
        lf6.lm.flags = 1;
        f.run(kCore, lm_frame(lf6));
        REQUIRE(f.ctr.handover_forwarded.get() == 1);
    }
    f.discard();
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// Refresh hints

TEST_CASE("handover: a stale sender gets a refresh hint (exact bytes) and the packet is still delivered", "[handover][hint]") {
    Fixture f;
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Deliver, kNew);
    const Bytes p = in4(1);
    f.run(kCore, lm_frame(to_mo(p, false, kOld)));
    auto acc = f.take(kAcc0), core = f.take(kCore);
    REQUIRE(acc.size() == 1);
    REQUIRE(acc[0] == delivered(p));
    REQUIRE(core.size() == 1);
    REQUIRE(core[0].size() == 66);
    // Every byte, spelled out once (docs/protocol.md, "Refresh hint").
    const uint16_t sport = hint_sport(1, kMo);
    const Bytes expect = {
        0x02, 0x00, 0x00, 0x00, 0xee, 0x04, 0x02, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x08, 0x00,  // Ethernet
        0x45, 0xc0, 0x00, 0x34, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,              // IPv4 (checksum below)
        198, 51, 100, 1, 198, 51, 100, 2,                                                    // our locator -> sender
        uint8_t(sport >> 8), uint8_t(sport), 0x15, 0xb3, 0x00, 0x20, 0x00, 0x00,             // UDP 5555, len 32, csum 0
        0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,                                      // LM v1, type 1, tenant 1
        0, 0, 0, 0, 0, 0, 0, 0x30,                                                           // MO
        0x00, 0x00, 0x01, 0x8f, 0x00, 0x01, 0x00, 0x00,                                      // epoch kNew
    };
    Bytes e = expect;
    fix_ipv4_csum(e, 14);
    REQUIRE(core[0] == e);
    REQUIRE(core[0] == hint_frame(false, kPeer4, 1, kMo, kNew));
    REQUIRE(f.ctr.hints_sent.get() == 1);
    REQUIRE(f.ctr.decap.get() == 1);

    SECTION("v6 outer: v6 hint; with udp_checksum_v6 the checksum is computed") {
        f.run(kCore, lm_frame(to_mo(in6(2), true, kOld)));
        auto c6 = f.take(kCore);
        REQUIRE(c6.size() == 1);
        REQUIRE(c6[0].size() == 86);
        REQUIRE(c6[0] == hint_frame(true, kPeer6, 1, kMo, kNew));
        Fixture g([](DpConfig& c) { c.udp_csum_v6 = true; });
        g.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Deliver, kNew);
        g.run(kCore, lm_frame(to_mo(in6(2), true, kOld)));
        auto d = g.take(kCore);
        REQUIRE(d.size() == 1);
        REQUIRE(d[0] == hint_frame(true, kPeer6, 1, kMo, kNew, true));
        REQUIRE(get16(d[0], 60) != 0);
        REQUIRE(l4_csum_ok(kLoc6, kPeer6, 17, d[0].data() + 54, 32));
        g.discard();
    }
    SECTION("a large tenant and MO id: the hint carries them, port hash follows") {
        f.attach_state(0xABCDEF, 0x0123456789ABCDEFull, kAcc0, kMoMac, AttachState::Deliver, kNew);
        LmFrame lf = to_mo(p, false, kOld);
        lf.lm.tenant = 0xABCDEF;
        lf.lm.mo = 0x0123456789ABCDEFull;
        f.run(kCore, lm_frame(lf));
        auto c = f.take(kCore);
        REQUIRE(c.size() == 1);
        REQUIRE(c[0] == hint_frame(false, kPeer4, 0xABCDEF, 0x0123456789ABCDEFull, kNew));
    }
    SECTION("no hint: same or newer epoch, epoch 0 (static), or no epoch known here") {
        f.run(kCore, lm_frame(to_mo(p, false, kNew)));
        f.run(kCore, lm_frame(to_mo(p, false, kNewer)));
        f.run(kCore, lm_frame(to_mo(p, false, 0)));
        f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Deliver, 0);
        f.run(kCore, lm_frame(to_mo(p, false, kOld)));
        REQUIRE(f.take(kAcc0).size() == 4);
        REQUIRE(f.staged_count(kCore) == 0);
        REQUIRE(f.ctr.hints_sent.get() == 1);
    }
    SECTION("core next hop unresolved: hints_no_nexthop, delivery unaffected") {
        f.set_next_hop(Family::V4, MacAddr{});
        f.run(kCore, lm_frame(to_mo(p, false, kOld)));
        REQUIRE(f.take(kAcc0).size() == 1);
        REQUIRE(f.staged_count(kCore) == 0);
        REQUIRE(f.ctr.hints_unresolved.get() == 1);
        REQUIRE(f.drops_total() == 0);
    }
    f.discard();
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("handover: protocol.md's refresh hint example, byte for byte", "[handover][hint]") {
    Fixture f([](DpConfig& c) {
        c.udp_port = 4341;
        c.ports[kCore].mac = mac("02:00:00:00:01:01");
    });
    f.set_next_hop(Family::V4, mac("02:00:00:00:00:fe"));
    f.attach_state(1, 0x30, kAcc0, kMoMac, AttachState::Deliver, 0x0000018F00010000ull);
    LmFrame lf = to_mo(in4(1), false, kOld);
    lf.dport = 4341;
    Bytes fr = lm_frame(lf);
    std::memcpy(fr.data(), "\x02\x00\x00\x00\x01\x01", 6);  // to the core MAC of this config
    f.run(kCore, fr);
    REQUIRE(f.take(kAcc0).size() == 1);
    auto o = f.take(kCore);
    REQUIRE(o.size() == 1);
    const Bytes doc = {
        0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x08, 0x00, 0x45, 0xc0,
        0x00, 0x34, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xe5, 0x8e, 0xc6, 0x33, 0x64, 0x01, 0xc6, 0x33,
        0x64, 0x02, 0xcd, 0x49, 0x10, 0xf5, 0x00, 0x20, 0x00, 0x00, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x01, 0x8f, 0x00, 0x01,
        0x00, 0x00,
    };
    REQUIRE(o[0] == doc);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("handover: refresh hints are rate limited (burst = rate / 10), delivery is not", "[handover][hint]") {
    Fixture f([](DpConfig& c) { c.hint_rate = 30; });  // burst 3
    f.attach_state(1, kMo, kAcc0, kMoMac, AttachState::Deliver, kNew);
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < 10; ++i) frames.push_back(lm_frame(to_mo(in4(i), false, kOld)));
    f.run(kCore, frames);
    REQUIRE(f.take(kAcc0).size() == 10);
    REQUIRE(f.take(kCore).size() == 3);
    REQUIRE(f.ctr.hints_sent.get() == 3);
    REQUIRE(f.ctr.hints_rate_limited.get() == 7);
    REQUIRE(f.drops_total() == 0);
    rte_delay_ms(40);  // one token per 33 ms
    f.run(kCore, frames[0]);
    REQUIRE(f.take(kCore).size() == 1);
    REQUIRE(f.ctr.hints_sent.get() == 4);
    f.discard();
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// Punts

TEST_CASE("handover: MoveNotify and refresh hints are punted after the outer checks", "[handover][punt]") {
    Fixture f;
    LmFrame mv = lm4(pattern(300), 0);  // payload: the signed record envelope (opaque here)
    mv.lm.type = 2;
    LmFrame mv6 = lm6(pattern(17), 0);
    mv6.lm.type = 2;
    mv6.udp_csum = true;
    LmFrame hint = lm6({}, 0);
    hint.lm.type = 1;
    for (const LmFrame* lf : {&mv, &mv6, &hint}) {
        const Bytes fr = lm_frame(*lf);
        f.run(kCore, fr);
        auto p = f.take_punts();
        REQUIRE(p.size() == 1);
        REQUIRE(p[0].reason == PuntReason::LmControl);
        REQUIRE(p[0].port == kCore);
        REQUIRE(p[0].data == fr);
    }
    REQUIRE(f.drops_total() == 0);
    REQUIRE(f.staged_total() == 0);

    SECTION("outer checks still apply") {
        LmFrame a = mv;
        a.src = ip("203.0.113.9");
        f.run(kCore, lm_frame(a));
        REQUIRE(f.drop(Drop::LmBadSource) == 1);
        Bytes bad = lm_frame(mv6);
        bad.back() ^= 0x55;  // payload no longer matches the UDP checksum
        f.run(kCore, bad);
        REQUIRE(f.drop(Drop::LmBadUdp) == 1);
        LmFrame v = mv;
        v.lm.version = 2;
        f.run(kCore, lm_frame(v));
        REQUIRE(f.drop(Drop::LmBadVersion) == 1);
    }
    SECTION("any other type is still lm_bad_header") {
        for (uint8_t t : {3, 4, 0x7F, 0xFF}) {
            LmFrame a = mv;
            a.lm.type = t;
            f.run(kCore, lm_frame(a));
        }
        REQUIRE(f.drop(Drop::LmBadHeader) == 4);
    }
    REQUIRE(f.take_punts().empty());
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("handover: RARP is punted on access ports, dropped on the core port", "[handover][punt]") {
    Fixture f;
    // QEMU's announce after a migration: RARP request (op 3), sender = target = the MO's MAC.
    Bytes rarp(28);
    put16(rarp, 0, 1);
    put16(rarp, 2, 0x0800);
    rarp[4] = 6;
    rarp[5] = 4;
    put16(rarp, 6, 3);
    std::memcpy(&rarp[8], kMoMac.b.data(), 6);
    std::memcpy(&rarp[18], kMoMac.b.data(), 6);
    const Bytes acc = eth(kBcast, kMoMac, 0x8035, rarp);
    const Bytes tagged = eth(kBcast, kMoMac, 0x8035, rarp, kVlan);
    f.run(kAcc0, acc);
    f.run(kAccV, tagged);
    auto p = f.take_punts();
    REQUIRE(p.size() == 2);
    REQUIRE(p[0].reason == PuntReason::Rarp);
    REQUIRE(p[0].port == kAcc0);
    REQUIRE(p[0].data == acc);
    REQUIRE(p[1].reason == PuntReason::Rarp);
    REQUIRE(p[1].port == kAccV);
    REQUIRE(p[1].data == tagged);
    f.run(kCore, eth(kBcast, kNh4, 0x8035, rarp));
    REQUIRE(f.drop(Drop::UnknownEthertype) == 1);
    REQUIRE(f.drops_total() == 1);
    REQUIRE(f.take_punts().empty());
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// The hold buffer alone, against a model: many MOs (index collisions, backward-shift deletes),
// interleaved holds and releases, FIFO order per MO, bounds.

TEST_CASE("HoldBuffer: random holds and releases match a FIFO-per-key model", "[handover][holdbuffer]") {
    Fixture f;
    HoldBuffer hb;
    constexpr unsigned kTotal = 300, kPerMo = 7;
    hb.configure(kTotal, kPerMo, 1000000000000ull);
    std::map<std::pair<uint32_t, uint64_t>, std::deque<rte_mbuf*>> model;
    unsigned model_total = 0;
    std::mt19937 rng(4242);
    std::vector<AttachKey> keys;
    for (unsigned i = 0; i < 400; ++i) keys.push_back(AttachKey::make(rng() % 3, rng() % 5000 + (uint64_t(i) << 40)));
    for (int op = 0; op < 30000; ++op) {
        const AttachKey k = keys[rng() % keys.size()];
        auto& q = model[{k.tenant, k.mo_id}];
        if (rng() % 3) {
            rte_mbuf* m = f.mbuf(Bytes{uint8_t(op)});
            const bool ok = hb.hold(k, uint8_t(rng() % 3), m, 0);
            const bool expect = model_total < kTotal && q.size() < kPerMo;  // entries never run out: 300 < 4096
            REQUIRE(ok == expect);
            if (ok) {
                q.push_back(m);
                ++model_total;
            } else {
                rte_pktmbuf_free(m);
            }
        } else {
            std::vector<rte_mbuf*> got;
            const unsigned n = hb.release(k, [&](uint8_t, std::span<rte_mbuf*> pk) {
                REQUIRE(pk.size() <= HoldBuffer::kChunk);
                got.insert(got.end(), pk.begin(), pk.end());
            });
            REQUIRE(n == q.size());
            REQUIRE(std::equal(got.begin(), got.end(), q.begin(), q.end()));
            for (auto* m : got) rte_pktmbuf_free(m);
            model_total -= unsigned(q.size());
            q.clear();
        }
        REQUIRE(hb.packets() == model_total);
        if (op % 997 == 0)
            for (auto& [kk, qq] : model) REQUIRE(hb.held(AttachKey::make(kk.first, kk.second)) == qq.size());
    }
    REQUIRE(f.in_use() == int(model_total));
    REQUIRE(hb.expire(0, true) == model_total);
    REQUIRE(hb.packets() == 0);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("HoldBuffer: a release that re-holds (still Hold after re-processing) cannot loop", "[handover][holdbuffer]") {
    Fixture f;
    HoldBuffer hb;
    hb.configure(64, 64, 1000000000000ull);
    const AttachKey k = AttachKey::make(1, 9);
    for (int i = 0; i < 40; ++i) REQUIRE(hb.hold(k, uint8_t(i / 20), f.mbuf(Bytes{uint8_t(i)}), 0));
    unsigned calls = 0;
    const unsigned n = hb.release(k, [&](uint8_t in, std::span<rte_mbuf*> pk) {
        ++calls;
        for (auto* m : pk) REQUIRE(hb.hold(k, in, m, 0));  // back in, under the same key
    });
    REQUIRE(n == 40);
    REQUIRE(calls == 2);  // two runs of 20 from two ports
    REQUIRE(hb.held(k) == 40);
    REQUIRE(hb.expire(0, true) == 40);
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// The worker loop: a release larger than the tx stage leaves whole (drained between chunks),
// and service_rings() expires held packets.

#include <rte_eth_ring.h>

#include "common/config.hpp"
#include "dataplane/ports.hpp"
#include "dataplane/worker.hpp"

TEST_CASE("handover in a worker: 200 held packets forwarded in one update, expiry by service_rings", "[handover][worker]") {
    static int seq = 0;
    const std::string tag = "wh" + std::to_string(seq++);
    RingPtr rx[2], tx[2];
    uint16_t ids[2];
    std::string devs[2];
    for (int i = 0; i < 2; ++i) {
        const std::string n = tag + (i ? "core" : "acc");
        rx[i].reset(rte_ring_create((n + "_rx").c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
        tx[i].reset(rte_ring_create((n + "_tx").c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
        rte_ring* r = rx[i].get();
        rte_ring* t = tx[i].get();
        const int id = rte_eth_from_rings(n.c_str(), &r, 1, &t, 1, 0);
        REQUIRE(id >= 0);
        char dev[RTE_ETH_NAME_MAX_LEN];
        REQUIRE(rte_eth_dev_get_name_by_port(uint16_t(id), dev) == 0);
        devs[i] = dev;
    }
    Config cfg = load_config_string(R"(
router: { udp_port: 5555 }
locators: { v4: 198.51.100.1 }
gateway: { ipv4: 192.0.2.1, mac: 00:00:5e:00:01:01 }
ports:
  - { name: access0, device: )" + devs[0] + R"(, role: access, tenant: 1 }
  - { name: core0, device: )" + devs[1] + R"(, role: core, mac: 02:00:00:00:0c:00 }
core: { next_hop: { ipv4: 198.51.100.254, mac: 02:00:00:00:ee:04 } }
mobile_prefixes: [192.0.2.0/24]
peer_prefixes: [198.51.100.0/24]
handover: { hold_packets: 512, hold_per_mo: 512, hold_timeout_ms: 300, hint_rate_per_sec: 0 }
)");
    MempoolPtr pool = make_pktmbuf_pool(tag + "pool", 2047, 0);
    const unsigned in_use0 = 2047 - rte_mempool_avail_count(pool.get());
    std::vector<uint16_t> port_ids;
    std::vector<MacAddr> macs;
    for (auto& pc : cfg.ports) {
        auto op = open_port(pc, 1, pool.get());
        port_ids.push_back(op.port_id);
        macs.push_back(op.mac);
    }
    ids[0] = port_ids[0];
    ids[1] = port_ids[1];
    {
        DpConfig dp = make_dp_config(cfg, port_ids, macs);
        WorkerParams p;
        p.pool = pool.get();
        p.cache_entries = 256;
        p.attachment_entries = 64;
        Worker w(dp, p);
        auto push = [&](UpdateMsg u) { REQUIRE(rte_ring_enqueue_elem(w.update_ring(), &u, sizeof u) == 0); };
        UpdateMsg nh{};
        nh.op = UpdateOp::SetNextHop;
        nh.family = Family::V4;
        nh.mac = kNh4;
        push(nh);
        UpdateMsg at{};
        at.op = UpdateOp::UpsertAttachment;
        at.tenant = 1;
        at.mo_id = kMo;
        at.mac = kMoMac;
        at.state = AttachState::Hold;
        push(at);
        w.service_rings();
        auto feed = [&](uint16_t first, unsigned n) {
            for (unsigned i = 0; i < n; ++i) {
                const Bytes b = lm_frame(to_mo(in4(uint16_t(first + i))));
                rte_mbuf* m = rte_pktmbuf_alloc(pool.get());
                REQUIRE(m);
                std::memcpy(rte_pktmbuf_append(m, uint16_t(b.size())), b.data(), b.size());
                REQUIRE(rte_ring_enqueue(rx[1].get(), m) == 0);
                if (rte_ring_count(rx[1].get()) == 200) w.poll_once();
            }
            while (w.poll_once()) {
            }
        };
        feed(0, 200);
        REQUIRE(w.counters().handover_held.get() == 200);
        REQUIRE(rte_ring_count(tx[1].get()) == 0);

        at.state = AttachState::Forward;
        at.fwd_epoch = kNew;
        at.fwd_locator = kNewAr4;
        push(at);
        w.service_rings();
        CHECK(w.counters().handover_released.get() == 200);
        CHECK(w.counters().handover_forwarded.get() == 200);
        CHECK(w.counters().dropped(Drop::TxFull) == 0);
        CHECK(w.counters().ports[1].tx_packets.get() == 200);
        REQUIRE(rte_ring_count(tx[1].get()) == 200);
        void* obj;
        for (uint16_t i = 0; rte_ring_dequeue(tx[1].get(), &obj) == 0; ++i) {
            rte_mbuf* m = static_cast<rte_mbuf*>(obj);
            INFO("packet " << i);
            CHECK(Fixture::bytes(m) == fwd_frame(in4(i), kNewAr4, 1, kMo, kNew));
            rte_pktmbuf_free(m);
        }

        // Back to Hold (the MO comes back and leaves again): 3 packets, dropped after 300 ms.
        at.state = AttachState::Hold;
        push(at);
        w.service_rings();
        feed(1000, 3);
        REQUIRE(w.path().hold_packets() == 3);
        w.service_rings();
        CHECK(w.counters().dropped(Drop::HoldTimeout) == 0);
        rte_delay_ms(350);
        w.service_rings();
        CHECK(w.counters().dropped(Drop::HoldTimeout) == 3);
        CHECK(w.path().hold_packets() == 0);
    }
    for (auto id : ids) close_port(id);
    CHECK(2047 - rte_mempool_avail_count(pool.get()) == in_use0);
}
