// Malformed input on the access and core sides: every broken packet is dropped with exactly one
// specific counter, nothing is staged or punted, and no mbuf leaks. Then a deterministic random
// mutation run (truncations, byte flips) that must never crash and must account for every packet.
#include <random>

#include "catch.hpp"
#include "test/unit/test_helpers.hpp"

using namespace lmt;

namespace {

const IpAddr kCn4 = ip("192.0.2.99");
const IpAddr kCn6 = ip("2001:db8:1::99");
const IpAddr kMo4 = ip("192.0.2.30");
const IpAddr kMo6 = ip("2001:db8:1::30");
constexpr MoId kMo = 0x30;

void setup(Fixture& f) {
    f.map_remote(1, kRemote4, 0x20, kPeer4, 1);
    f.map_remote(1, kRemote6, 0x21, kPeer6, 1);
    f.attach_mo(1, kMo, kAcc0, kMoMac);
}

// Runs one frame: exactly one drop, of reason `d`, nothing staged, nothing punted, no leak.
void expect_drop(Fixture& f, uint8_t port, const Bytes& frame, Drop d) {
    INFO("expected drop: " << drop_name(d) << " on port " << int(port));
    const auto before = f.drops();
    const uint64_t rx0 = f.ctr.ports[port].rx_packets.get();
    f.run(port, frame);
    const auto after = f.drops();
    for (size_t i = 0; i < after.size(); ++i) {
        INFO("counter " << kDropNames[i]);
        REQUIRE(after[i] - before[i] == (i == size_t(d) ? 1u : 0u));
    }
    REQUIRE(f.ctr.ports[port].rx_packets.get() == rx0 + 1);
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.take_punts().empty());
    REQUIRE(f.take_misses().empty());
    REQUIRE(f.in_use() == 0);
}

// Runs one frame that must go through (positive control for the mutations below).
void expect_ok(Fixture& f, uint8_t port, const Bytes& frame, uint8_t out) {
    INFO("positive control on port " << int(port));
    (void)f.one(port, frame, out);
    REQUIRE(f.in_use() == 0);
}

// Valid base packets.
Bytes acc4() { return from_host(udp4_pkt(kHost4, kRemote4, 1000, 2000, 64)); }
Bytes acc6() { return from_host(udp6_pkt(kHost6, kRemote6, 1000, 2000, 64)); }
Bytes inner4() { return udp4_pkt(kCn4, kMo4, 3000, 4000, 64); }
Bytes inner6() { return udp6_pkt(kCn6, kMo6, 3000, 4000, 64); }
constexpr size_t kL3 = 14;  // IP header offset in an untagged frame

}  // namespace

// =============================================================================================
// Access side

TEST_CASE("malformed access frames: L2", "[malformed]") {
    Fixture f;
    setup(f);
    expect_ok(f, kAcc0, acc4(), kCore);
    expect_ok(f, kAccV, from_host(udp4_pkt(kHost4, kRemote4, 1000, 2000, 64), kVlan), kCore);

    expect_drop(f, kAcc0, slice(acc4(), 0, 10), Drop::TooShort);
    expect_drop(f, kAcc0, Bytes{}, Drop::TooShort);
    expect_drop(f, kAccV, slice(from_host(udp4_pkt(kHost4, kRemote4, 1, 2, 10), kVlan), 0, 16), Drop::TooShort);
    Bytes other = acc4();
    other[0] = 0x02;  // unicast to some other MAC
    expect_drop(f, kAcc0, other, Drop::L2NotForUs);
    // VLAN: tag on an untagged port, no tag on a tagged port, wrong id.
    expect_drop(f, kAcc0, from_host(udp4_pkt(kHost4, kRemote4, 1000, 2000, 64), kVlan), Drop::VlanMismatch);
    expect_drop(f, kAccV, acc4(), Drop::VlanMismatch);
    expect_drop(f, kAccV, from_host(udp4_pkt(kHost4, kRemote4, 1000, 2000, 64), kVlan + 1), Drop::VlanMismatch);
    expect_drop(f, kAcc0, eth(kGwMac, kHostMac, 0x9000, pattern(46)), Drop::UnknownEthertype);
    // ARP with a wrong hardware length, and truncated ARP.
    Bytes a = eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kGw4));
    Bytes bad_hlen = a;
    bad_hlen[kL3 + 4] = 8;
    expect_drop(f, kAcc0, bad_hlen, Drop::BadArp);
    expect_drop(f, kAcc0, slice(a, 0, kL3 + 20), Drop::BadArp);
}

TEST_CASE("malformed access frames: IPv4 header", "[malformed]") {
    Fixture f;
    setup(f);
    const Bytes base = acc4();
    expect_ok(f, kAcc0, base, kCore);

    SECTION("no room for the IP header") {
        expect_drop(f, kAcc0, slice(base, 0, kL3), Drop::BadIpHeader);
        expect_drop(f, kAcc0, slice(base, 0, kL3 + 19), Drop::BadIpHeader);
    }
    SECTION("truncated: total length larger than what arrived") {
        expect_drop(f, kAcc0, slice(base, 0, kL3 + 30), Drop::BadIpHeader);
        Bytes b = base;
        put16(b, kL3 + 2, uint16_t(get16(b, kL3 + 2) + 1));
        fix_ipv4_csum(b, kL3);
        expect_drop(f, kAcc0, b, Drop::BadIpHeader);
    }
    SECTION("IHL < 5") {
        for (uint8_t ihl = 0; ihl < 5; ++ihl) {
            Bytes b = base;
            b[kL3] = uint8_t(0x40 | ihl);
            put16(b, kL3 + 10, 0);
            put16(b, kL3 + 10, inet_csum(b.data() + kL3, 20));
            expect_drop(f, kAcc0, b, Drop::BadIpHeader);
        }
    }
    SECTION("IHL beyond the frame") {
        Bytes b = from_host(ipv4(V4(kHost4, kRemote4, 253), pattern(20)));  // 40-byte IP packet
        b[kL3] = 0x4F;                                                     // claims 60 bytes of header
        expect_drop(f, kAcc0, b, Drop::BadIpHeader);
    }
    SECTION("total length smaller than IHL") {
        Bytes b = base;
        put16(b, kL3 + 2, 19);
        fix_ipv4_csum(b, kL3);
        expect_drop(f, kAcc0, b, Drop::BadIpHeader);
        V4 h(kHost4, kRemote4);
        h.options = {1, 1, 1, 0};
        Bytes o = from_host(ipv4(h, pattern(8)));
        put16(o, kL3 + 2, 23);  // >= 20 but < IHL 24
        fix_ipv4_csum(o, kL3);
        expect_drop(f, kAcc0, o, Drop::BadIpHeader);
    }
    SECTION("bad header checksum") {
        Bytes b = base;
        b[kL3 + 10] ^= 0x40;
        expect_drop(f, kAcc0, b, Drop::BadIpHeader);
        Bytes c = base;
        c[kL3 + 8] = 12;  // TTL changed without fixing the checksum
        expect_drop(f, kAcc0, c, Drop::BadIpHeader);
    }
    SECTION("wrong version nibble") {
        Bytes b = base;
        b[kL3] = 0x65;
        fix_ipv4_csum(b, kL3);
        expect_drop(f, kAcc0, b, Drop::BadIpHeader);
        Bytes v6in4 = from_host(udp6_pkt(kHost6, kRemote6, 1, 2, 30));
        put16(v6in4, 12, 0x0800);  // IPv6 packet under the IPv4 ethertype
        expect_drop(f, kAcc0, v6in4, Drop::BadIpHeader);
    }
    SECTION("source and destination checks") {
        V4 h(ip("224.0.0.9"), kRemote4);
        expect_drop(f, kAcc0, from_host(ipv4(h, udp(h.src, h.dst, 1, 2, pattern(8)))), Drop::BadIpSource);
        V4 m(kHost4, ip("224.0.0.5"));
        expect_drop(f, kAcc0, from_host(ipv4(m, udp(m.src, m.dst, 1, 2, pattern(8)))), Drop::Multicast);
        V4 b(kHost4, ip("255.255.255.255"));
        expect_drop(f, kAcc0, eth(kBcast, kHostMac, 0x0800, ipv4(b, udp(b.src, b.dst, 68, 67, pattern(8)))), Drop::Multicast);
        V4 g(kHost4, kGw4);
        expect_drop(f, kAcc0, from_host(ipv4(g, udp(g.src, g.dst, 1, 2, pattern(8)))), Drop::ToSelf);
        for (const char* a : {"127.0.0.1", "0.0.0.5"}) {
            V4 x(kHost4, ip(a));
            expect_drop(f, kAcc0, from_host(ipv4(x, udp(x.src, x.dst, 1, 2, pattern(8)))), Drop::MartianDst);
        }
    }
}

TEST_CASE("malformed access frames: IPv6 header", "[malformed]") {
    Fixture f;
    setup(f);
    const Bytes base = acc6();
    expect_ok(f, kAcc0, base, kCore);
    expect_drop(f, kAcc0, slice(base, 0, kL3 + 39), Drop::BadIpHeader);
    Bytes b = base;
    put16(b, kL3 + 4, uint16_t(get16(b, kL3 + 4) + 1));  // payload length beyond the frame
    expect_drop(f, kAcc0, b, Drop::BadIpHeader);
    expect_drop(f, kAcc0, slice(base, 0, base.size() - 1), Drop::BadIpHeader);
    Bytes v = base;
    v[kL3] = 0x45;  // version 4 under the IPv6 ethertype
    expect_drop(f, kAcc0, v, Drop::BadIpHeader);
    Bytes v4in6 = acc4();
    put16(v4in6, 12, 0x86DD);
    expect_drop(f, kAcc0, v4in6, Drop::BadIpHeader);
    const IpAddr mc = ip("ff02::1");
    expect_drop(f, kAcc0, from_host(ipv6(V6{mc, kRemote6, 17, 0, 0, 64}, udp(mc, kRemote6, 1, 2, pattern(8)))),
                Drop::BadIpSource);
    expect_drop(f, kAcc0, from_host(ipv6(V6{kHost6, mc, 17, 0, 0, 64}, udp(kHost6, mc, 1, 2, pattern(8)))),
                Drop::Multicast);
    expect_drop(f, kAcc0, from_host(ipv6(V6{kHost6, kGw6, 17, 0, 0, 64}, udp(kHost6, kGw6, 1, 2, pattern(8)))),
                Drop::ToSelf);
    for (const char* a : {"::", "fe80::1"}) {
        const IpAddr s = ip(a);
        expect_drop(f, kAcc0, from_host(ipv6(V6{s, kRemote6, 17, 0, 0, 64}, udp(s, kRemote6, 1, 2, pattern(8)))),
                    Drop::BadIpSource);
    }
    for (const char* a : {"::", "::1"}) {
        const IpAddr d = ip(a);
        expect_drop(f, kAcc0, from_host(ipv6(V6{kHost6, d, 17, 0, 0, 64}, udp(kHost6, d, 1, 2, pattern(8)))),
                    Drop::MartianDst);
    }
}

// =============================================================================================
// Core side

TEST_CASE("malformed LM packets on the core port", "[malformed]") {
    Fixture f;
    setup(f);
    const LmFrame b44 = lm4(inner4(), 4), b66 = lm6(inner6(), 41);
    expect_ok(f, kCore, lm_frame(b44), kAcc0);
    expect_ok(f, kCore, lm_frame(b66), kAcc0);
    expect_ok(f, kCore, lm_frame(lm4(inner6(), 41)), kAcc0);
    expect_ok(f, kCore, lm_frame(lm6(inner4(), 4)), kAcc0);
    constexpr size_t kUdp4 = kL3 + 20, kLm4 = kUdp4 + 8, kIn4 = kLm4 + 24;

    SECTION("source outside the peer prefixes: lm_bad_source") {
        LmFrame a = b44;
        a.src = ip("203.0.113.9");
        expect_drop(f, kCore, lm_frame(a), Drop::LmBadSource);
        LmFrame b = b66;
        b.src = ip("2001:db8:99::2");
        expect_drop(f, kCore, lm_frame(b), Drop::LmBadSource);
    }
    SECTION("bad version: lm_bad_version") {
        for (uint8_t v : {0, 2, 15}) {
            LmFrame a = b44;
            a.lm.version = v;
            expect_drop(f, kCore, lm_frame(a), Drop::LmBadVersion);
        }
        LmFrame b = b66;
        b.lm.version = 2;
        expect_drop(f, kCore, lm_frame(b), Drop::LmBadVersion);
    }
    SECTION("unknown type and bad next protocol: lm_bad_header") {
        LmFrame a = b44;
        a.lm.type = 7;
        expect_drop(f, kCore, lm_frame(a), Drop::LmBadHeader);
        LmFrame n = b44;
        n.lm.next = 99;
        expect_drop(f, kCore, lm_frame(n), Drop::LmBadHeader);
        LmFrame m1 = lm4(inner4(), 41);  // says IPv6, carries IPv4
        expect_drop(f, kCore, lm_frame(m1), Drop::LmBadHeader);
        LmFrame m2 = lm6(inner6(), 4);  // says IPv4, carries IPv6
        expect_drop(f, kCore, lm_frame(m2), Drop::LmBadHeader);
    }
    SECTION("UDP length lying: lm_bad_udp") {
        Bytes a = lm_frame(b44);
        put16(a, kUdp4 + 4, uint16_t(get16(a, kUdp4 + 4) + 1));
        expect_drop(f, kCore, a, Drop::LmBadUdp);
        Bytes b = lm_frame(b44);
        put16(b, kUdp4 + 4, uint16_t(get16(b, kUdp4 + 4) - 1));
        expect_drop(f, kCore, b, Drop::LmBadUdp);
        Bytes c = lm_frame(b66);
        put16(c, kL3 + 40 + 4, 8 + 24);
        expect_drop(f, kCore, c, Drop::LmBadUdp);
    }
    SECTION("bad non-zero UDP checksum: lm_bad_udp") {
        LmFrame a = b44;
        a.udp_csum = true;
        Bytes fa = lm_frame(a);
        fa[kUdp4 + 6] ^= 0x01;
        expect_drop(f, kCore, fa, Drop::LmBadUdp);
        LmFrame b = b66;
        b.udp_csum = true;
        Bytes fb = lm_frame(b);
        fb.back() ^= 0x80;  // payload corrupted in flight
        expect_drop(f, kCore, fb, Drop::LmBadUdp);
    }
    SECTION("truncated UDP / LM header: lm_bad_udp") {
        // IP and UDP lengths consistent, but only 10 bytes of LM header.
        V4 h(kPeer4, kLoc4);
        h.id = 0;
        Bytes shortlm = eth(kMacCore, kNh4, 0x0800, ipv4(h, udp(kPeer4, kLoc4, 51000, kLmPort, slice(lm_hdr(Lm{}), 0, 10), false)));
        expect_drop(f, kCore, shortlm, Drop::LmBadUdp);
        // LM header complete but nothing after it: the inner packet is missing.
        Bytes nothing = eth(kMacCore, kNh4, 0x0800, ipv4(h, udp(kPeer4, kLoc4, 51000, kLmPort, lm_hdr(Lm{}), false)));
        expect_drop(f, kCore, nothing, Drop::LmBadHeader);
        // 4 bytes of UDP header only.
        Bytes udp4b = eth(kMacCore, kNh4, 0x0800, ipv4(h, Bytes{0xC7, 0x38, 0x15, 0xB3}));
        expect_drop(f, kCore, udp4b, Drop::LmBadUdp);
        // The frame is cut inside the LM header (IP length says more: bad IP header first).
        expect_drop(f, kCore, slice(lm_frame(b44), 0, kLm4 + 10), Drop::BadIpHeader);
    }
    SECTION("inner length not what remains: lm_bad_header") {
        LmFrame a = b44;
        put16(a.inner, 2, uint16_t(get16(a.inner, 2) - 1));
        fix_ipv4_csum(a.inner, 0);
        expect_drop(f, kCore, lm_frame(a), Drop::LmBadHeader);
        LmFrame b = b44;
        b.inner.push_back(0);  // one byte of trailing junk inside the tunnel
        expect_drop(f, kCore, lm_frame(b), Drop::LmBadHeader);
        LmFrame c = b66;
        put16(c.inner, 4, uint16_t(get16(c.inner, 4) - 2));
        expect_drop(f, kCore, lm_frame(c), Drop::LmBadHeader);
        LmFrame d = b44;
        d.inner[10] ^= 0xFF;  // inner IPv4 checksum broken
        expect_drop(f, kCore, lm_frame(d), Drop::LmBadHeader);
        Bytes e = lm_frame(b44);
        e.resize(kIn4 + 19);  // inner IPv4 header cut short, outer lengths fixed up
        put16(e, kL3 + 2, uint16_t(e.size() - kL3));
        fix_ipv4_csum(e, kL3);
        put16(e, kUdp4 + 4, uint16_t(e.size() - kUdp4));
        expect_drop(f, kCore, e, Drop::LmBadHeader);
    }
    SECTION("MO not attached here: lm_unknown_mo") {
        LmFrame a = b44;
        a.lm.mo = 0x31;
        expect_drop(f, kCore, lm_frame(a), Drop::LmUnknownMo);
        LmFrame b = b66;
        b.lm.tenant = 2;
        expect_drop(f, kCore, lm_frame(b), Drop::LmUnknownMo);
        f.detach_mo(1, kMo);
        expect_drop(f, kCore, lm_frame(b44), Drop::LmUnknownMo);
    }
    SECTION("not LM: core_not_lm") {
        LmFrame a = b44;
        a.dport = 4341;
        expect_drop(f, kCore, lm_frame(a), Drop::CoreNotLm);
        LmFrame b = b66;
        b.dport = 53;
        expect_drop(f, kCore, lm_frame(b), Drop::CoreNotLm);
        LmFrame c = b44;
        c.dst = ip("198.51.100.7");  // not our locator
        expect_drop(f, kCore, lm_frame(c), Drop::CoreNotLm);
        LmFrame d = b66;
        d.dst = ip("2001:db8:ff::7");
        expect_drop(f, kCore, lm_frame(d), Drop::CoreNotLm);
        expect_drop(f, kCore, eth(kMacCore, kNh4, 0x0800, ipv4(V4(kPeer4, kLoc4, 6), tcp(kPeer4, kLoc4, 1, 179, kSyn, {}))),
                    Drop::CoreNotLm);
    }
    SECTION("outer fragments: lm_bad_header") {
        V4 h(kPeer4, kLoc4);
        h.id = 77;
        h.df = false;
        h.mf = true;
        Bytes first = eth(kMacCore, kNh4, 0x0800, ipv4(h, udp(kPeer4, kLoc4, 51000, kLmPort, lm_hdr(Lm{}) + inner4(), false)));
        expect_drop(f, kCore, first, Drop::LmBadHeader);
        h.mf = false;
        h.frag_off = 100;
        Bytes later = eth(kMacCore, kNh4, 0x0800, ipv4(h, pattern(80)));
        expect_drop(f, kCore, later, Drop::LmBadHeader);
    }
    SECTION("broken outer IP headers: bad_ip_header") {
        Bytes a = lm_frame(b44);
        a[kL3 + 10] ^= 1;
        expect_drop(f, kCore, a, Drop::BadIpHeader);
        Bytes b = lm_frame(b66);
        put16(b, kL3 + 4, uint16_t(get16(b, kL3 + 4) + 1));
        expect_drop(f, kCore, b, Drop::BadIpHeader);
        expect_drop(f, kCore, slice(lm_frame(b44), 0, 10), Drop::TooShort);
        Bytes c = lm_frame(b44);
        c[5] ^= 0x01;  // unicast to another MAC
        expect_drop(f, kCore, c, Drop::L2NotForUs);
    }
}

TEST_CASE("decap: inner packet above the access MTU is dropped decap_too_big", "[malformed]") {
    Fixture f([](DpConfig& c) { c.ports[kAcc0].mtu = 1400; });
    setup(f);
    expect_ok(f, kCore, lm_frame(lm4(udp4_pkt(kCn4, kMo4, 1, 2, 1400 - 28), 4)), kAcc0);
    expect_drop(f, kCore, lm_frame(lm4(udp4_pkt(kCn4, kMo4, 1, 2, 1401 - 28), 4)), Drop::DecapTooBig);
    expect_ok(f, kCore, lm_frame(lm6(udp6_pkt(kCn6, kMo6, 1, 2, 1400 - 48), 41)), kAcc0);
    expect_drop(f, kCore, lm_frame(lm6(udp6_pkt(kCn6, kMo6, 1, 2, 1401 - 48), 41)), Drop::DecapTooBig);
}

// =============================================================================================
// Random mutations

TEST_CASE("random mutations: no crash, every packet accounted for", "[malformed][fuzz]") {
    Fixture f([](DpConfig& c) {
        c.mss_v4 = 1300;
        c.mss_v6 = 1280;
        c.icmp_rate = 1000;
        c.hold_packets = 48;  // small: the bounds are reached too
        c.hold_per_mo = 16;
        c.hint_rate = 1000;
    });
    f.enable_drain();
    setup(f);
    f.attach_mo(1, 0x31, kAccV, kMo2Mac);
    f.map_local(1, ip("192.0.2.40"), 0x40, kAcc1, kMo2Mac);
    // Handover states: 0x32 leaving (Hold, local traffic to it held too), 0x33 moved away
    // (Forward), 0x34 attached with an epoch newer than the senders' (refresh hints).
    f.attach_state(1, 0x32, kAcc1, kMo2Mac, AttachState::Hold);
    f.map_local_hold(1, ip("192.0.2.42"), 0x32, kAcc1, kMo2Mac);
    f.attach_state(1, 0x33, kAcc0, kMoMac, AttachState::Forward, 0, 0x0000018F00030000ull, ip("2001:db8:ff::3"));
    f.attach_state(1, 0x34, kAcc0, kMoMac, AttachState::Deliver, 0x0000018F00030000ull);

    const IpAddr snm = ip("ff02::1:ff00:1");
    Bytes target(16);
    std::memcpy(target.data(), kGw6.b.data(), 16);
    Bytes ltarget(16);
    std::memcpy(ltarget.data(), kLoc6.b.data(), 16);
    const IpAddr lsnm = ip("ff02::1:ff00:1");
    V4 opts(kHost4, kRemote4);
    opts.options = {0x94, 0x04, 0, 0};
    V4 ping(kHost4, kGw4, 1);
    LmFrame hint = lm4({}, 0);
    hint.lm.type = 1;
    LmFrame csum66 = lm6(inner6(), 41);
    csum66.udp_csum = true;
    LmFrame ce = lm4(udp4_pkt(kCn4, kMo4, 1, 2, 40, 0x02), 4);
    ce.tos = 0x03;
    LmFrame vl = lm4(inner4(), 4);
    vl.lm.mo = 0x31;
    LmFrame hold = lm6(inner4(), 4);
    hold.lm.mo = 0x32;
    LmFrame fwd = lm4(inner6(), 41);
    fwd.lm.mo = 0x33;
    LmFrame stale = lm4(inner4(), 4);
    stale.lm.mo = 0x34;
    LmFrame move = lm4(pattern(60), 0);
    move.lm.type = 2;
    Bytes rarp = arp(3, kMoMac, IpAddr{}, kMoMac, IpAddr{});

    const std::vector<Bytes> access = {
        acc4(),
        acc6(),
        from_host(ipv4(V4(kHost4, kNative4, 6), tcp(kHost4, kNative4, 5, 80, kSyn, mss_opt(1460) + Bytes{1, 1, 4, 2}))),
        from_host(ipv6(V6{kHost6, kRemote6, 6, 0, 0, 64}, tcp(kHost6, kRemote6, 5, 80, kSyn, mss_opt(1440)))),
        eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kGw4)),
        eth(mac("33:33:ff:00:00:01"), kHostMac, 0x86DD,
            ipv6(V6{kHost6, snm, 58, 0, 0, 255}, icmp6(kHost6, snm, 135, 0, 0, target))),
        from_host(ipv4(ping, icmp4(8, 0, 1, pattern(40)))),
        from_host(udp4_pkt(kHost4, kRemote4, 7, 8, 100, 0, 1)),
        from_host(udp6_pkt(kHost6, kRemote6, 7, 8, 100, 0, 1)),
        from_host(ipv4(opts, udp(kHost4, kRemote4, 1, 2, pattern(20)))),
        from_host(udp4_pkt(kHost4, ip("192.0.2.40"), 1, 2, 30)),
        from_host(udp4_pkt(kHost4, ip("192.0.2.41"), 1, 2, 30)),  // miss
        from_host(udp4_pkt(kHost4, kNative4, 1, 2, 1460)),          // too big after encap? native: fits
        from_host(udp4_pkt(kHost4, kRemote4, 1, 2, 1460)),          // too big after encap, DF
        from_host(ipv6(V6{kHost6, kRemote6, 0, 0, 0, 64}, Bytes{17, 0, 1, 4, 0, 0, 0, 0} + udp(kHost6, kRemote6, 1, 2, pattern(20)))),
        from_host(udp4_pkt(kHost4, ip("192.0.2.42"), 1, 2, 30)),  // local, held (kHold)
        eth(kBcast, kMoMac, 0x8035, rarp),
    };
    const std::vector<Bytes> vlan = {
        from_host(udp4_pkt(kHost4, kRemote4, 1000, 2000, 64), kVlan),
        eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kHost4), kVlan),
        from_host(udp6_pkt(kHost6, kRemote6, 7, 8, 100, 0, 1), kVlan),
    };
    const std::vector<Bytes> core = {
        lm_frame(lm4(inner4(), 4)),
        lm_frame(lm6(inner6(), 41)),
        lm_frame(lm4(inner6(), 41)),
        lm_frame(lm6(inner4(), 4)),
        lm_frame(csum66),
        lm_frame(hint),
        lm_frame(ce),
        lm_frame(vl),
        lm_frame(hold),
        lm_frame(fwd),
        lm_frame(stale),
        lm_frame(move),
        eth(kBcast, kNh4, 0x0806, arp(1, kNh4, kPeer4, MacAddr{}, kLoc4)),
        eth(mac("33:33:ff:00:00:01"), kNh6, 0x86DD,
            ipv6(V6{kPeer6, lsnm, 58, 0, 0, 255}, icmp6(kPeer6, lsnm, 135, 0, 0, ltarget))),
    };
    // Sanity: the unmutated seeds reach the fast path (so mutations start from valid packets).
    for (auto& s : core) f.run(kCore, s);
    REQUIRE(f.ctr.decap.get() == 8);
    REQUIRE(f.ctr.handover_held.get() == 1);
    REQUIRE(f.ctr.handover_forwarded.get() == 1);
    REQUIRE(f.ctr.hints_sent.get() == 2);  // stale sender; sender to a moved MO
    REQUIRE(f.drops_total() == 0);
    f.discard();
    const uint64_t icmp0 = f.ctr.icmp_sent.get(), hints0 = f.ctr.hints_sent.get();
    const unsigned held0 = f.pp->hold_packets();

    std::mt19937 rng(20240611);
    auto rnd = [&](size_t n) { return size_t(rng() % n); };
    auto mutate = [&](Bytes b) {
        switch (rnd(8)) {
            case 0: break;  // unmodified
            case 1: b.resize(rnd(b.size() + 1)); break;
            case 2:
            case 3: {  // flip a few bytes anywhere
                const size_t k = 1 + rnd(4);
                for (size_t i = 0; i < k && !b.empty(); ++i) b[rnd(b.size())] ^= uint8_t(1 + rnd(255));
                break;
            }
            case 4:
            case 5: {  // flip a byte in the headers (first 100 bytes), where parsing happens
                const size_t k = 1 + rnd(2);
                for (size_t i = 0; i < k && !b.empty(); ++i) b[rnd(std::min<size_t>(b.size(), 100))] ^= uint8_t(1 + rnd(255));
                break;
            }
            case 6: {  // set a header byte to a boundary value
                static const uint8_t vals[] = {0x00, 0x01, 0x05, 0x0F, 0x40, 0x45, 0x60, 0x7F, 0x80, 0xFF};
                if (!b.empty()) b[rnd(std::min<size_t>(b.size(), 100))] = vals[rnd(sizeof vals)];
                break;
            }
            default: {  // flip and truncate
                if (!b.empty()) b[rnd(b.size())] ^= uint8_t(1 + rnd(255));
                b.resize(rnd(b.size() + 1));
                break;
            }
        }
        return b;
    };

    const uint64_t rx0 = f.rx_total(), punted0 = f.ctr.punted.get();
    constexpr size_t kPackets = 20000;
    uint64_t staged = 0, punted = 0;
    size_t sent = 0;
    while (sent < kPackets) {
        const size_t which = rnd(10);
        const uint8_t port = which < 5 ? kAcc0 : which < 6 ? kAccV : kCore;
        const auto& seeds = port == kAcc0 ? access : port == kAccV ? vlan : core;
        const size_t n = std::min<size_t>(1 + rnd(32), kPackets - sent);
        std::vector<Bytes> burst;
        for (size_t i = 0; i < n; ++i) burst.push_back(mutate(seeds[rnd(seeds.size())]));
        f.run(port, burst);
        sent += n;
        for (uint8_t p = 0; p < kMaxPorts; ++p) staged += f.take(p).size();
        punted += f.take_punts().size();
        f.take_misses();
        const uint64_t dropped = f.drops_total() - f.drop(Drop::IcmpRateLimited) - f.drop(Drop::NoMbuf);
        const uint64_t rx = f.rx_total() - rx0;
        const uint64_t generated = f.ctr.icmp_sent.get() - icmp0 + f.ctr.hints_sent.get() - hints0;
        const uint64_t held_now = f.pp->hold_packets() - held0;
        // Every received packet is staged, dropped (once), punted or held; generated ICMP errors
        // and refresh hints are the only staged packets that were not received.
        if (rx != staged - generated + dropped + punted + held_now) {
            INFO("after " << sent << " packets: rx " << rx << " staged " << staged << " generated " << generated
                          << " dropped " << dropped << " punted " << punted << " held " << held_now);
            REQUIRE(false);
        }
        if (f.in_use() != int(f.pp->hold_packets())) {
            INFO("mbufs in use after draining: " << f.in_use());
            REQUIRE(false);
        }
    }
    REQUIRE(f.rx_total() - rx0 == kPackets);
    REQUIRE(f.drop(Drop::TxFull) == 0);
    REQUIRE(f.drop(Drop::NoMbuf) == 0);
    REQUIRE(f.drop(Drop::PuntRingFull) == 0);
    REQUIRE(f.ctr.punted.get() - punted0 == punted);
    // The run exercised the deep paths, not only the parsers.
    REQUIRE(f.ctr.encap.get() > 500);
    REQUIRE(f.ctr.decap.get() > 500);
    REQUIRE(f.ctr.local.get() > 50);
    REQUIRE(f.ctr.arp_reply.get() > 50);
    REQUIRE(f.ctr.nd_reply.get() > 20);
    REQUIRE(f.ctr.icmp_sent.get() > 50);
    REQUIRE(f.ctr.mss_clamped.get() > 50);
    REQUIRE(f.drop(Drop::LmBadHeader) > 50);
    REQUIRE(f.drop(Drop::BadIpHeader) > 500);
    REQUIRE(f.ctr.handover_held.get() == 16);  // one MO in Hold: its per-MO bound
    REQUIRE(f.drop(Drop::HoldFull) > 50);
    REQUIRE(f.ctr.handover_forwarded.get() > 100);
    REQUIRE(f.ctr.hints_sent.get() > 10);
    // The MO stays after all: everything held goes through the path again and is accounted for.
    const unsigned held = f.pp->hold_packets();
    REQUIRE(held > 0);
    const uint64_t before = f.drops_total() + f.ctr.decap.get() + f.ctr.local.get() + f.ctr.handover_forwarded.get();
    f.map_local(1, ip("192.0.2.42"), 0x32, kAcc1, kMo2Mac);
    f.attach_state(1, 0x32, kAcc1, kMo2Mac, AttachState::Deliver);
    REQUIRE(f.ctr.handover_released.get() == held);
    REQUIRE(f.pp->hold_packets() == 0);
    REQUIRE(f.drops_total() + f.ctr.decap.get() + f.ctr.local.get() + f.ctr.handover_forwarded.get() - before == held);
    f.discard();
    REQUIRE(f.in_use() == 0);
}
