// Packet path on real mbufs: every test builds frames byte by byte, runs them through
// PacketPath::process() and checks the staged output byte for byte.
#include <set>

#include <rte_cycles.h>

#include "catch.hpp"
#include "test/unit/test_helpers.hpp"

using namespace lmt;

namespace {

constexpr MoId kMoA = 0x1000000000000020ull;
constexpr MoId kMoB = 0x1000000000000021ull;
constexpr MoId kMoC = 0x1000000000000022ull;
constexpr MoId kMoD = 0x1000000000000023ull;
constexpr Epoch kEpA = 0x0000018F12345678ull;
constexpr Epoch kEpB = 0x0000018F9ABCDEF0ull;

const IpAddr kR4a = ip("192.0.2.20");      // 4in4
const IpAddr kR4b = ip("192.0.2.21");      // 4in6
const IpAddr kR6a = ip("2001:db8:1::20");  // 6in4
const IpAddr kR6b = ip("2001:db8:1::21");  // 6in6

// Installs the four remote mappings of the standard encap tests (tenant 1).
void map_four(Fixture& f) {
    f.map_remote(1, kR4a, kMoA, kPeer4, kEpA);
    f.map_remote(1, kR4b, kMoB, kPeer6, kEpB);
    f.map_remote(1, kR6a, kMoC, kPeer4, kEpA + 1);
    f.map_remote(1, kR6b, kMoD, kPeer6, kEpB + 1);
}

// The expected encapsulated frame, built independently. Fields the router derives from its flow
// hash (UDP source port, IPv6 flow label) and the IPv4 ID are passed in (read from the output).
struct Encap {
    bool out6 = false;
    IpAddr peer;
    uint8_t tc = 0;
    bool df = true;
    uint16_t id = 0;
    uint16_t sport = 0;
    uint32_t flow = 0;
    bool csum = false;
    Lm lm;
    Bytes inner;
};
Bytes encap_frame(const Encap& e) {
    const IpAddr src = e.out6 ? kLoc6 : kLoc4;
    Bytes u = udp(src, e.peer, e.sport, kLmPort, lm_hdr(e.lm) + e.inner, e.csum);
    if (e.out6) return eth(kNh6, kMacCore, 0x86DD, ipv6(V6{src, e.peer, 17, e.tc, e.flow, 64}, u));
    V4 h{src, e.peer};
    h.tos = e.tc;
    h.df = e.df;
    h.id = e.id;
    return eth(kNh4, kMacCore, 0x0800, ipv4(h, u));
}
size_t udp_off(bool out6) { return out6 ? 54 : 34; }
uint16_t sport_of(const Bytes& out, bool out6) { return get16(out, udp_off(out6)); }
uint32_t flow_of(const Bytes& out) { return get32(out, 14) & 0xFFFFF; }

// ICMP errors as the router must build them: from the gateway, back to the sender's MAC.
Bytes icmp4_error(uint8_t type, uint8_t code, uint32_t rest, const Bytes& quote, int vlan = -1) {
    V4 h{kGw4, kHost4};
    h.proto = 1;
    h.tos = 0xC0;
    h.df = false;
    h.id = 0;
    h.ttl = 64;
    return eth(kHostMac, kGwMac, 0x0800, ipv4(h, icmp4(type, code, rest, quote)), vlan);
}
Bytes icmp6_error(uint8_t type, uint8_t code, uint32_t rest, const Bytes& quote, int vlan = -1) {
    return eth(kHostMac, kGwMac, 0x86DD, ipv6(V6{kGw6, kHost6, 58, 0, 0, 64}, icmp6(kGw6, kHost6, type, code, rest, quote)),
               vlan);
}

}  // namespace

// =============================================================================================
// Classification: ARP / ND answers, punts, unknown ethertype

TEST_CASE("ARP request for the gateway is answered in place", "[packet][classify]") {
    Fixture f;
    Bytes req = eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kGw4));
    req.resize(60, 0);  // Ethernet padding must not survive into the reply
    Bytes out = f.one(kAcc0, req, kAcc0);
    REQUIRE(out == eth(kHostMac, kGwMac, 0x0806, arp(2, kGwMac, kGw4, kHostMac, kHost4)));
    REQUIRE(f.ctr.arp_reply.get() == 1);
    REQUIRE(f.ctr.punted.get() == 0);

    SECTION("on a VLAN access port the reply keeps the tag") {
        Bytes r = eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kGw4), kVlan);
        REQUIRE(f.one(kAccV, r, kAccV) == eth(kHostMac, kGwMac, 0x0806, arp(2, kGwMac, kGw4, kHostMac, kHost4), kVlan));
    }
    SECTION("on the core port the locator is answered with the core MAC") {
        Bytes r = eth(kBcast, kNh4, 0x0806, arp(1, kNh4, kPeer4, MacAddr{}, kLoc4));
        REQUIRE(f.one(kCore, r, kCore) == eth(kNh4, kMacCore, 0x0806, arp(2, kMacCore, kLoc4, kNh4, kPeer4)));
    }
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("IPv6 NS for the gateway is answered with an NA (R|S|O, TLLA)", "[packet][classify]") {
    Fixture f;
    const IpAddr snm = ip("ff02::1:ff00:1");  // solicited-node multicast of 2001:db8:1::1
    const MacAddr snm_mac = mac("33:33:ff:00:00:01");
    Bytes body(16);  // target; the 4 reserved bytes are `rest` of icmp6()
    std::memcpy(body.data(), kGw6.b.data(), 16);
    Bytes slla = {1, 1};
    slla = slla + Bytes(kHostMac.b.begin(), kHostMac.b.end());
    Bytes ns = eth(snm_mac, kHostMac, 0x86DD,
                   ipv6(V6{kHost6, snm, 58, 0, 0, 255}, icmp6(kHost6, snm, 135, 0, 0, body + slla)));
    Bytes out = f.one(kAcc0, ns, kAcc0);

    Bytes tlla = {2, 1};
    tlla = tlla + Bytes(kGwMac.b.begin(), kGwMac.b.end());
    Bytes na = eth(kHostMac, kGwMac, 0x86DD,
                   ipv6(V6{kGw6, kHost6, 58, 0, 0, 255}, icmp6(kGw6, kHost6, 136, 0, 0xE0000000u, body + tlla)));
    REQUIRE(out == na);
    REQUIRE(out[54] == 136);
    REQUIRE(get32(out, 58) == 0xE0000000u);  // Router | Solicited | Override
    REQUIRE(l4_csum_ok(kGw6, kHost6, 58, out.data() + 54, out.size() - 54));
    REQUIRE(f.ctr.nd_reply.get() == 1);

    SECTION("an NS with a bad ICMPv6 checksum is not answered (punted to control)") {
        Bytes bad = ns;
        bad[14 + 40 + 2] ^= 0x01;
        f.run(kAcc0, bad);
        REQUIRE(f.staged_total() == 0);
        auto p = f.take_punts();
        REQUIRE(p.size() == 1);
        REQUIRE(p[0].reason == PuntReason::Nd);
        REQUIRE(p[0].data == bad);
    }
    SECTION("DAD for the gateway address is defended: NA to all-nodes, S clear (RFC 4861 7.2.4)") {
        const IpAddr unspec = ip("::");
        const IpAddr all_nodes = ip("ff02::1");
        Bytes dad = eth(snm_mac, kHostMac, 0x86DD, ipv6(V6{unspec, snm, 58, 0, 0, 255}, icmp6(unspec, snm, 135, 0, 0, body)));
        Bytes out = f.one(kAcc0, dad, kAcc0);
        REQUIRE(out == eth(mac("33:33:00:00:00:01"), kGwMac, 0x86DD,
                           ipv6(V6{kGw6, all_nodes, 58, 0, 0, 255}, icmp6(kGw6, all_nodes, 136, 0, 0xA0000000u, body + tlla))));
        REQUIRE(f.take_punts().empty());
    }
    SECTION("an NS with a zero-length option is not answered") {
        Bytes zopt = {1, 0, 0, 0, 0, 0, 0, 0};
        Bytes bad = eth(snm_mac, kHostMac, 0x86DD,
                        ipv6(V6{kHost6, snm, 58, 0, 0, 255}, icmp6(kHost6, snm, 135, 0, 0, body + zopt)));
        f.run(kAcc0, bad);
        REQUIRE(f.staged_total() == 0);
        auto p = f.take_punts();
        REQUIRE(p.size() == 1);
        REQUIRE(p[0].reason == PuntReason::Nd);
    }
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("unicast NS to the gateway and NS for the core locator are answered", "[packet][classify]") {
    Fixture f;
    Bytes target(16);
    std::memcpy(target.data(), kGw6.b.data(), 16);
    Bytes tlla = {2, 1};
    // NUD: unicast to the gateway address and MAC, no source link-layer option.
    Bytes nud = eth(kGwMac, kHostMac, 0x86DD, ipv6(V6{kHost6, kGw6, 58, 0, 0, 255}, icmp6(kHost6, kGw6, 135, 0, 0, target)));
    REQUIRE(f.one(kAcc0, nud, kAcc0) ==
            eth(kHostMac, kGwMac, 0x86DD,
                ipv6(V6{kGw6, kHost6, 58, 0, 0, 255},
                     icmp6(kGw6, kHost6, 136, 0, 0xE0000000u, target + tlla + Bytes(kGwMac.b.begin(), kGwMac.b.end())))));
    // On a VLAN port the tag stays.
    Bytes nudv = eth(kGwMac, kHostMac, 0x86DD, ipv6(V6{kHost6, kGw6, 58, 0, 0, 255}, icmp6(kHost6, kGw6, 135, 0, 0, target)), kVlan);
    REQUIRE(f.one(kAccV, nudv, kAccV) ==
            eth(kHostMac, kGwMac, 0x86DD,
                ipv6(V6{kGw6, kHost6, 58, 0, 0, 255},
                     icmp6(kGw6, kHost6, 136, 0, 0xE0000000u, target + tlla + Bytes(kGwMac.b.begin(), kGwMac.b.end()))),
                kVlan));
    // Core port: the locator is answered with the core port's MAC.
    Bytes lt(16);
    std::memcpy(lt.data(), kLoc6.b.data(), 16);
    const IpAddr snm = ip("ff02::1:ff00:1");
    Bytes ns = eth(mac("33:33:ff:00:00:01"), kNh6, 0x86DD, ipv6(V6{kPeer6, snm, 58, 0, 0, 255}, icmp6(kPeer6, snm, 135, 0, 0, lt)));
    REQUIRE(f.one(kCore, ns, kCore) ==
            eth(kNh6, kMacCore, 0x86DD,
                ipv6(V6{kLoc6, kPeer6, 58, 0, 0, 255},
                     icmp6(kLoc6, kPeer6, 136, 0, 0xE0000000u, lt + tlla + Bytes(kMacCore.b.begin(), kMacCore.b.end())))));
    // Hop limit other than 255 (RFC 4861 7.1.1): not answered, goes to control.
    Bytes hop = eth(kGwMac, kHostMac, 0x86DD, ipv6(V6{kHost6, kGw6, 58, 0, 0, 64}, icmp6(kHost6, kGw6, 135, 0, 0, target)));
    f.run(kAcc0, hop);
    REQUIRE(f.staged_total() == 0);
    auto p = f.take_punts();
    REQUIRE(p.size() == 1);
    REQUIRE(p[0].reason == PuntReason::Nd);
    REQUIRE(f.ctr.nd_reply.get() == 3);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("gratuitous ARP, ARP replies, unsolicited NA, pings and hints are punted", "[packet][classify]") {
    Fixture f;
    struct Case {
        const char* what;
        uint8_t port;
        Bytes frame;
        PuntReason reason;
    };
    const IpAddr all_nodes = ip("ff02::1");
    Bytes na_body(16);
    std::memcpy(na_body.data(), kHost6.b.data(), 16);
    V4 ping4{kHost4, kGw4};
    ping4.proto = 1;
    LmFrame hint = lm4({}, 0);
    hint.lm.type = 1;  // RefreshHint
    std::vector<Case> cases = {
        {"gratuitous ARP", kAcc0, eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kHost4)), PuntReason::Arp},
        {"gratuitous ARP on VLAN port", kAccV,
         eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kHost4), kVlan), PuntReason::Arp},
        {"gratuitous ARP claiming the gateway address", kAcc0,
         eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kGw4, MacAddr{}, kGw4)), PuntReason::Arp},
        {"ARP reply", kAcc0, eth(kGwMac, kHostMac, 0x0806, arp(2, kHostMac, kHost4, kGwMac, kGw4)), PuntReason::Arp},
        {"ARP request for someone else", kAcc0, eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kR4a)),
         PuntReason::Arp},
        {"unsolicited NA", kAcc0,
         eth(mac("33:33:00:00:00:01"), kHostMac, 0x86DD,
             ipv6(V6{kHost6, all_nodes, 58, 0, 0, 255}, icmp6(kHost6, all_nodes, 136, 0, 0x20000000u, na_body))),
         PuntReason::Nd},
        {"ICMP echo to the gateway", kAcc0, from_host(ipv4(ping4, icmp4(8, 0, 0x00010001, pattern(32)))), PuntReason::LocalIcmp},
        {"ICMPv6 echo to the gateway", kAcc0,
         from_host(ipv6(V6{kHost6, kGw6, 58, 0, 0, 64}, icmp6(kHost6, kGw6, 128, 0, 0x00010001, pattern(32)))),
         PuntReason::LocalIcmp},
        {"LM refresh hint", kCore, lm_frame(hint), PuntReason::LmControl},
    };
    for (auto& c : cases) {
        INFO(c.what);
        const auto before = f.drops();
        f.run(c.port, c.frame);
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.drops() == before);
        auto p = f.take_punts();  // frees the mbufs
        REQUIRE(p.size() == 1);
        REQUIRE(p[0].port == c.port);
        REQUIRE(p[0].reason == c.reason);
        REQUIRE(p[0].data == c.frame);  // punted untouched
    }
    REQUIRE(f.ctr.punted.get() == cases.size());
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("unknown ethertype is dropped and counted", "[packet][classify]") {
    Fixture f;
    f.run(kAcc0, eth(kGwMac, kHostMac, 0x88B5, pattern(46)));
    f.run(kCore, eth(kMacCore, kNh4, 0x88B5, pattern(46)));
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.drop(Drop::UnknownEthertype) == 2);
    REQUIRE(f.drops_total() == 2);
    REQUIRE(f.ctr.ports[kAcc0].rx_packets.get() == 1);
    REQUIRE(f.ctr.ports[kCore].rx_packets.get() == 1);
    REQUIRE(f.ctr.ports[kAcc0].rx_bytes.get() == 60);
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// Encapsulation

TEST_CASE("encap 4in4, 4in6, 6in4, 6in6: exact outer headers, LM header and inner packet", "[packet][encap]") {
    Fixture f;
    map_four(f);
    struct Case {
        const char* what;
        IpAddr dst;
        bool out6;
        MoId mo;
        Epoch ep;
    };
    const Case cases[] = {
        {"4in4", kR4a, false, kMoA, kEpA},
        {"4in6", kR4b, true, kMoB, kEpB},
        {"6in4", kR6a, false, kMoC, kEpA + 1},
        {"6in6", kR6b, true, kMoD, kEpB + 1},
    };
    for (auto& c : cases) {
        INFO(c.what);
        const bool in6 = c.dst.is_v6();
        // DSCP AF11 + ECT(0) on the inner packet: RFC 6040 normal mode copies both.
        Bytes inner = in6 ? udp6_pkt(kHost6, c.dst, 40000, 53, 100, 0x2A) : udp4_pkt(kHost4, c.dst, 40000, 53, 100, 0x2A);
        Bytes out = f.one(kAcc0, from_host(inner), kCore);

        Encap e;
        e.out6 = c.out6;
        e.peer = c.out6 ? kPeer6 : kPeer4;
        e.tc = 0x2A;
        e.df = true;  // DF policy copy: inner DF (v6 inner counts as DF)
        e.id = 0;
        e.sport = sport_of(out, c.out6);
        e.flow = c.out6 ? flow_of(out) : 0;
        e.lm.next = in6 ? 41 : 4;
        e.lm.tenant = 1;
        e.lm.mo = c.mo;
        e.lm.epoch = c.ep;
        e.inner = ttl_minus_one(inner);
        REQUIRE(out == encap_frame(e));

        // The same facts, field by field, for readable failures.
        REQUIRE(e.sport >= 49152);
        const size_t ipo = 14, u = udp_off(c.out6), l = u + 8, in = l + 24;
        if (!c.out6) {
            REQUIRE(get16(out, 12) == 0x0800);
            REQUIRE(out[ipo] == 0x45);
            REQUIRE(out[ipo + 1] == 0x2A);
            REQUIRE(get16(out, ipo + 2) == 20 + 8 + 24 + inner.size());
            REQUIRE(get16(out, ipo + 6) == 0x4000);
            REQUIRE(out[ipo + 8] == 64);
            REQUIRE(out[ipo + 9] == 17);
            REQUIRE(ipv4_csum_ok(out, ipo));
            REQUIRE(v4_at(out, ipo + 12) == kLoc4);
            REQUIRE(v4_at(out, ipo + 16) == kPeer4);
        } else {
            REQUIRE(get16(out, 12) == 0x86DD);
            REQUIRE(get32(out, ipo) >> 20 == (0x600u | 0x2A));
            REQUIRE(get16(out, ipo + 4) == 8 + 24 + inner.size());
            REQUIRE(out[ipo + 6] == 17);
            REQUIRE(out[ipo + 7] == 64);
            REQUIRE(v6_at(out, ipo + 8) == kLoc6);
            REQUIRE(v6_at(out, ipo + 24) == kPeer6);
            // Flow label and source port come from the same inner flow hash.
            REQUIRE((flow_of(out) & 0x3FFF) == (e.sport & 0x3FFF));
        }
        REQUIRE(get16(out, u + 2) == kLmPort);
        REQUIRE(get16(out, u + 4) == 8 + 24 + inner.size());
        REQUIRE(get16(out, u + 6) == 0);  // zero UDP checksum (udp_csum_v6 off; always for v4)
        REQUIRE(out[l] == 0x10);          // version 1, no flags
        REQUIRE(out[l + 1] == 0);         // Data
        REQUIRE(out[l + 2] == (in6 ? 41 : 4));
        REQUIRE(get32(out, l + 4) == 0x00000100u);  // tenant 1, reserved 0
        REQUIRE(get64(out, l + 8) == c.mo);
        REQUIRE(get64(out, l + 16) == c.ep);
        const Bytes got_inner = slice(out, in);
        REQUIRE(got_inner == ttl_minus_one(inner));
        if (!in6) {
            REQUIRE(got_inner[8] == 63);
            REQUIRE(ipv4_csum_ok(got_inner, 0));
        } else {
            REQUIRE(got_inner[7] == 63);
        }
    }
    REQUIRE(f.ctr.encap.get() == 4);
    REQUIRE(f.ctr.cache_hit.get() == 4);
    REQUIRE(f.drops_total() == 0);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("encap: UDP source port is a per-flow hash in 49152..65535", "[packet][encap]") {
    Fixture f;
    map_four(f);
    for (const IpAddr& dst : {kR4a, kR4b, kR6a, kR6b}) {
        const bool out6 = dst == kR4b || dst == kR6b;
        auto pkt = [&](uint16_t sp, size_t n) {
            return from_host(dst.is_v6() ? udp6_pkt(kHost6, dst, sp, 443, n) : udp4_pkt(kHost4, dst, sp, 443, n));
        };
        INFO(dst.str());
        // Same flow, different payload and size: same source port (and flow label).
        Bytes a = f.one(kAcc0, pkt(41000, 10), kCore);
        Bytes b = f.one(kAcc0, pkt(41000, 700), kCore);
        REQUIRE(sport_of(a, out6) == sport_of(b, out6));
        if (out6) REQUIRE(flow_of(a) == flow_of(b));
        // Different source ports: spread over the range.
        std::set<uint16_t> ports;
        for (uint16_t sp = 41001; sp < 41017; ++sp) {
            Bytes o = f.one(kAcc0, pkt(sp, 10), kCore);
            uint16_t s = sport_of(o, out6);
            REQUIRE(s >= 49152);
            ports.insert(s);
        }
        REQUIRE(ports.size() >= 14);
    }
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("encap: outer DF follows the policy (copy / set / clear)", "[packet][encap]") {
    auto run = [](DfPolicy pol, bool inner_df) {
        Fixture f([&](DpConfig& c) { c.df = pol; });
        f.map_remote(1, kR4a, kMoA, kPeer4, kEpA);
        Bytes inner = udp4_pkt(kHost4, kR4a, 40000, 53, 64, 0, 64, inner_df);
        Bytes o1 = f.one(kAcc0, from_host(inner), kCore);
        Bytes o2 = f.one(kAcc0, from_host(inner), kCore);
        const bool df = get16(o1, 20) & 0x4000;
        // The rest of the outer header is exact whatever the policy.
        Encap e;
        e.peer = kPeer4;
        e.df = df;
        e.id = get16(o1, 18);
        e.sport = sport_of(o1, false);
        e.lm.mo = kMoA;
        e.lm.epoch = kEpA;
        e.inner = ttl_minus_one(inner);
        REQUIRE(o1 == encap_frame(e));
        REQUIRE((get16(o1, 20) & 0xBFFF) == 0);  // no MF, offset 0, reserved 0
        if (df) {
            REQUIRE(get16(o1, 18) == 0);
        } else {
            REQUIRE(get16(o1, 18) != get16(o2, 18));  // RFC 6864: IDs of fragmentable packets differ
        }
        return df;
    };
    REQUIRE(run(DfPolicy::Copy, true) == true);
    REQUIRE(run(DfPolicy::Copy, false) == false);
    REQUIRE(run(DfPolicy::Set, false) == true);
    REQUIRE(run(DfPolicy::Set, true) == true);
    REQUIRE(run(DfPolicy::Clear, true) == false);
    REQUIRE(run(DfPolicy::Clear, false) == false);
}

TEST_CASE("encap: outer IPv6 UDP checksum when udp_csum_v6 is on", "[packet][encap]") {
    Fixture f([](DpConfig& c) { c.udp_csum_v6 = true; });
    map_four(f);
    for (const IpAddr& dst : {kR4b, kR6b}) {
        INFO(dst.str());
        Bytes inner = dst.is_v6() ? udp6_pkt(kHost6, dst, 40000, 53, 333) : udp4_pkt(kHost4, dst, 40000, 53, 333);
        Bytes out = f.one(kAcc0, from_host(inner), kCore);
        REQUIRE(get16(out, 60) != 0);
        REQUIRE(l4_csum_ok(kLoc6, kPeer6, 17, out.data() + 54, out.size() - 54));
        Encap e;
        e.out6 = true;
        e.peer = kPeer6;
        e.sport = sport_of(out, true);
        e.flow = flow_of(out);
        e.csum = true;
        e.lm.next = dst.is_v6() ? 41 : 4;
        e.lm.mo = dst.is_v6() ? kMoD : kMoB;
        e.lm.epoch = dst.is_v6() ? kEpB + 1 : kEpB;
        e.inner = ttl_minus_one(inner);
        REQUIRE(out == encap_frame(e));
    }
    // Outer IPv4 keeps a zero checksum.
    Bytes o4 = f.one(kAcc0, from_host(udp4_pkt(kHost4, kR4a, 40000, 53, 333)), kCore);
    REQUIRE(get16(o4, 40) == 0);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("encap: Ethernet padding of a short inner packet is not carried", "[packet][encap]") {
    Fixture f;
    f.map_remote(1, kR4a, kMoA, kPeer4, kEpA);
    Bytes inner = udp4_pkt(kHost4, kR4a, 40000, 53, 0);  // 28 bytes: frame padded to 60
    Bytes frame = from_host(inner);
    frame.resize(60, 0xEE);
    Bytes out = f.one(kAcc0, frame, kCore);
    REQUIRE(out.size() == 14 + 20 + 8 + 24 + 28);
    REQUIRE(get16(out, 16) == 20 + 8 + 24 + 28);
    REQUIRE(get16(out, 38) == 8 + 24 + 28);
    REQUIRE(slice(out, 66) == ttl_minus_one(inner));
}

// =============================================================================================
// Decapsulation

TEST_CASE("decap 4in4, 4in6, 6in4, 6in6 delivers the inner packet byte-identical", "[packet][decap]") {
    Fixture f;
    f.attach_mo(1, 0x30, kAcc0, kMoMac);
    f.attach_mo(1, 0x31, kAccV, kMo2Mac);
    const IpAddr mo4 = ip("192.0.2.30"), mo6 = ip("2001:db8:1::30");
    const IpAddr cn4 = ip("192.0.2.99"), cn6 = ip("2001:db8:1::99");
    const Bytes in4 = udp4_pkt(cn4, mo4, 5000, 6000, 200, 0x00, 17);
    const Bytes in6 = udp6_pkt(cn6, mo6, 5000, 6000, 200, 0x00, 17);
    struct Case {
        const char* what;
        LmFrame lf;
    };
    Case cases[] = {
        {"4in4", lm4(in4, 4)},
        {"4in6", lm6(in4, 4)},
        {"6in4", lm4(in6, 41)},
        {"6in6", lm6(in6, 41)},
    };
    for (auto& c : cases) {
        INFO(c.what);
        const bool inner6 = c.lf.lm.next == 41;
        const Bytes& inner = inner6 ? in6 : in4;
        const uint16_t type = inner6 ? 0x86DD : 0x0800;
        REQUIRE(f.one(kCore, lm_frame(c.lf), kAcc0) == eth(kMoMac, kGwMac, type, inner));
        // VLAN access port: the tag is added on delivery.
        LmFrame v = c.lf;
        v.lm.mo = 0x31;
        REQUIRE(f.one(kCore, lm_frame(v), kAccV) == eth(kMo2Mac, kGwMac, type, inner, kVlan));
        // A valid non-zero outer UDP checksum is verified and accepted.
        LmFrame k = c.lf;
        k.udp_csum = true;
        REQUIRE(f.one(kCore, lm_frame(k), kAcc0) == eth(kMoMac, kGwMac, type, inner));
    }
    REQUIRE(f.ctr.decap.get() == 12);
    REQUIRE(f.drops_total() == 0);
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// Local delivery and native forwarding

TEST_CASE("local delivery access -> access and native forwarding", "[packet][forward]") {
    Fixture f;
    const IpAddr l4 = ip("192.0.2.40"), l6 = ip("2001:db8:1::40");
    f.map_local(1, l4, 0x40, kAccV, kMo2Mac);
    f.map_local(1, l6, 0x41, kAcc0, kMoMac);

    Bytes p4 = udp4_pkt(kHost4, l4, 1000, 2000, 80, 0x10, 9);
    REQUIRE(f.one(kAcc0, from_host(p4), kAccV) == eth(kMo2Mac, kGwMac, 0x0800, ttl_minus_one(p4), kVlan));
    Bytes p6 = udp6_pkt(kHost6, l6, 1000, 2000, 80, 0x10, 9);
    REQUIRE(f.one(kAcc0, from_host(p6), kAcc0) == eth(kMoMac, kGwMac, 0x86DD, ttl_minus_one(p6)));
    // From the VLAN port: the tag is stripped on the way in.
    REQUIRE(f.one(kAccV, from_host(p6, kVlan), kAcc0) == eth(kMoMac, kGwMac, 0x86DD, ttl_minus_one(p6)));
    REQUIRE(f.ctr.local.get() == 3);

    Bytes n4 = udp4_pkt(kHost4, kNative4, 1000, 2000, 80, 0x10, 9);
    Bytes o4 = f.one(kAcc0, from_host(n4), kCore);
    REQUIRE(o4 == eth(kNh4, kMacCore, 0x0800, ttl_minus_one(n4)));
    REQUIRE(o4[14 + 8] == 8);
    REQUIRE(ipv4_csum_ok(o4, 14));
    Bytes n6 = udp6_pkt(kHost6, kNative6, 1000, 2000, 80, 0x10, 9);
    REQUIRE(f.one(kAcc0, from_host(n6), kCore) == eth(kNh6, kMacCore, 0x86DD, ttl_minus_one(n6)));
    REQUIRE(f.ctr.native.get() == 2);
    REQUIRE(f.ctr.encap.get() == 0);
    REQUIRE(f.drops_total() == 0);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("TTL decrement is checksum-correct for every TTL value", "[packet][forward]") {
    Fixture f;
    for (unsigned ttl = 2; ttl <= 255; ++ttl) {
        V4 h{kHost4, kNative4};
        h.ttl = uint8_t(ttl);
        h.id = uint16_t(ttl * 257);  // vary the checksum too
        Bytes p = ipv4(h, udp(kHost4, kNative4, 1, 2, pattern(ttl % 13)));
        Bytes o = f.one(kAcc0, from_host(p), kCore);
        INFO("ttl " << ttl);
        REQUIRE(o[22] == ttl - 1);
        REQUIRE(ipv4_csum_ok(o, 14));
    }
    // A header checksum of 0xFFFF (ones' complement negative zero) is valid; the incremental
    // update must carry around (RFC 1141) and still give a valid header.
    Bytes p = ipv4(V4(kHost4, kNative4), udp(kHost4, kNative4, 1, 2, pattern(10)));
    put16(p, 4, 0);
    put16(p, 10, 0);
    put16(p, 4, uint16_t(0xFFFF - fold(sum16(p.data(), 20))));
    REQUIRE(fold(sum16(p.data(), 20)) == 0xFFFF);
    put16(p, 10, 0xFFFF);
    REQUIRE(ipv4_csum_ok(p, 0));
    Bytes o = f.one(kAcc0, from_host(p), kCore);
    REQUIRE(ipv4_csum_ok(o, 14));
    REQUIRE(o == eth(kNh4, kMacCore, 0x0800, ttl_minus_one(p)));
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// TTL expiry and ICMP errors

TEST_CASE("TTL 1 / hop limit 1: ICMP Time Exceeded back to the sender", "[packet][icmp]") {
    Fixture f;
    map_four(f);
    SECTION("IPv4") {
        Bytes p = udp4_pkt(kHost4, kR4a, 1000, 2000, 100, 0, 1);
        Bytes out = f.one_icmp(kAcc0, from_host(p));
        REQUIRE(out == icmp4_error(11, 0, 0, p));
        REQUIRE(ipv4_csum_ok(out, 14));
        REQUIRE(inet_csum(out.data() + 34, out.size() - 34) == 0);
        REQUIRE(v4_at(out, 26) == kGw4);
        REQUIRE(v4_at(out, 30) == kHost4);
    }
    SECTION("IPv4 TTL 0 too, and to a native destination") {
        Bytes p = udp4_pkt(kHost4, kNative4, 1000, 2000, 100, 0, 0);
        REQUIRE(f.one_icmp(kAcc0, from_host(p)) == icmp4_error(11, 0, 0, p));
    }
    SECTION("IPv6") {
        Bytes p = udp6_pkt(kHost6, kR6b, 1000, 2000, 100, 0, 1);
        Bytes out = f.one_icmp(kAcc0, from_host(p));
        REQUIRE(out == icmp6_error(3, 0, 0, p));
        REQUIRE(l4_csum_ok(kGw6, kHost6, 58, out.data() + 54, out.size() - 54));
    }
    SECTION("VLAN access port: the error carries the tag") {
        Bytes p = udp4_pkt(kHost4, kR4a, 1000, 2000, 100, 0, 1);
        REQUIRE(f.one_icmp(kAccV, from_host(p, kVlan), kAccV) == icmp4_error(11, 0, 0, p, kVlan));
    }
    SECTION("long packet: the quote is cut at 576 / 1280 bytes total") {
        Bytes p = udp4_pkt(kHost4, kR4a, 1000, 2000, 1000, 0, 1);
        Bytes out = f.one_icmp(kAcc0, from_host(p));
        REQUIRE(out == icmp4_error(11, 0, 0, slice(p, 0, 548)));
        REQUIRE(out.size() == 14 + 576);
        Bytes p6 = udp6_pkt(kHost6, kR6b, 1000, 2000, 1400, 0, 1);
        Bytes o6 = f.one_icmp(kAcc0, from_host(p6));
        REQUIRE(o6 == icmp6_error(3, 0, 0, slice(p6, 0, 1232)));
        REQUIRE(o6.size() == 14 + 1280);
    }
    SECTION("no ICMP error about an ICMP error") {
        V4 h{kHost4, kR4a};
        h.proto = 1;
        h.ttl = 1;
        Bytes err = ipv4(h, icmp4(3, 3, 0, slice(udp4_pkt(kR4a, kHost4, 1, 2, 8), 0, 28)));
        f.run(kAcc0, from_host(err));
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.drop(Drop::TtlExpired) == 1);
        REQUIRE(f.ctr.icmp_sent.get() == 0);
        Bytes err6 = ipv6(V6{kHost6, kR6b, 58, 0, 0, 1}, icmp6(kHost6, kR6b, 1, 4, 0, pattern(48)));
        f.run(kAcc0, from_host(err6));
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.drop(Drop::TtlExpired) == 2);
    }
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("ICMP errors are rate limited (burst = rate / 10)", "[packet][icmp]") {
    Fixture f([](DpConfig& c) { c.icmp_rate = 10; });
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < 50; ++i) frames.push_back(from_host(udp4_pkt(kHost4, kNative4, uint16_t(1000 + i), 2000, 20, 0, 1)));
    f.run(kAcc0, frames);
    const size_t n = f.staged_count(kAcc0);
    REQUIRE(n >= 1);
    REQUIRE(n <= 2);
    REQUIRE(f.staged_total() == n);
    REQUIRE(f.ctr.icmp_sent.get() == n);
    REQUIRE(f.drop(Drop::TtlExpired) == 50);
    REQUIRE(f.drop(Drop::IcmpRateLimited) == 50 - n);
    auto out = f.take(kAcc0);
    REQUIRE(out[0] == icmp4_error(11, 0, 0, udp4_pkt(kHost4, kNative4, 1000, 2000, 20, 0, 1)));
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// MTU

TEST_CASE("MTU: Fragmentation Needed / Packet Too Big, and no-DF drops", "[packet][mtu]") {
    Fixture f([](DpConfig& c) { c.ports[kCore].mtu = 1400; });
    map_four(f);
    SECTION("v4 inner 1400 with DF over v4 outer: frag needed, next-hop MTU 1348") {
        Bytes p = udp4_pkt(kHost4, kR4a, 1000, 2000, 1400 - 28);
        REQUIRE(p.size() == 1400);
        Bytes out = f.one_icmp(kAcc0, from_host(p));
        REQUIRE(out == icmp4_error(3, 4, 1348, slice(p, 0, 548)));
        REQUIRE(get16(out, 34 + 6) == 1348);
        REQUIRE(f.drop(Drop::TooBig) == 1);
    }
    SECTION("v4 inner over v6 outer: next-hop MTU 1328") {
        Bytes p = udp4_pkt(kHost4, kR4b, 1000, 2000, 1400 - 28);
        REQUIRE(f.one_icmp(kAcc0, from_host(p)) == icmp4_error(3, 4, 1328, slice(p, 0, 548)));
    }
    SECTION("boundary: exactly core MTU after encap goes through") {
        Bytes p = udp4_pkt(kHost4, kR4a, 1000, 2000, 1348 - 28);
        Bytes out = f.one(kAcc0, from_host(p), kCore);
        REQUIRE(get16(out, 16) == 1400);
        Bytes q = udp6_pkt(kHost6, kR6b, 1000, 2000, 1328 - 48);
        REQUIRE(get16(f.one(kAcc0, from_host(q), kCore), 18) == 1328 + 8 + 24);
        Bytes big = udp4_pkt(kHost4, kR4a, 1000, 2000, 1349 - 28);
        REQUIRE(f.one_icmp(kAcc0, from_host(big)) == icmp4_error(3, 4, 1348, slice(big, 0, 548)));
    }
    SECTION("v6 inner too big over v6 outer: PTB with MTU core - 72") {
        Bytes p = udp6_pkt(kHost6, kR6b, 1000, 2000, 1329 - 48);
        Bytes out = f.one_icmp(kAcc0, from_host(p));
        REQUIRE(out == icmp6_error(2, 0, 1328, slice(p, 0, 1232)));
        REQUIRE(l4_csum_ok(kGw6, kHost6, 58, out.data() + 54, out.size() - 54));
    }
    SECTION("v6 inner over v4 outer: PTB with MTU core - 52") {
        Bytes p = udp6_pkt(kHost6, kR6a, 1000, 2000, 1349 - 48);
        REQUIRE(f.one_icmp(kAcc0, from_host(p)) == icmp6_error(2, 0, 1348, slice(p, 0, 1232)));
    }
    SECTION("v4 without DF: dropped too_big_no_df, nothing staged") {
        Bytes p = udp4_pkt(kHost4, kR4a, 1000, 2000, 1400 - 28, 0, 64, false);
        f.run(kAcc0, from_host(p));
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.drop(Drop::TooBigNoDf) == 1);
        REQUIRE(f.drops_total() == 1);
        REQUIRE(f.ctr.icmp_sent.get() == 0);
    }
    SECTION("native forwarding: frag needed with the core MTU itself") {
        Bytes p = udp4_pkt(kHost4, kNative4, 1000, 2000, 1401 - 28);
        REQUIRE(f.one_icmp(kAcc0, from_host(p)) == icmp4_error(3, 4, 1400, slice(p, 0, 548)));
        Bytes ok = udp4_pkt(kHost4, kNative4, 1000, 2000, 1400 - 28);
        REQUIRE(f.one(kAcc0, from_host(ok), kCore) == eth(kNh4, kMacCore, 0x0800, ttl_minus_one(ok)));
    }
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("MTU: PTB never advertises less than 1280", "[packet][mtu]") {
    Fixture f([](DpConfig& c) { c.ports[kCore].mtu = 1300; });
    map_four(f);
    Bytes p = udp6_pkt(kHost6, kR6b, 1000, 2000, 1300 - 48);
    REQUIRE(f.one_icmp(kAcc0, from_host(p)) == icmp6_error(2, 0, 1280, slice(p, 0, 1232)));
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// ECN (RFC 6040)

TEST_CASE("ECN: decap propagates CE, drops CE over Not-ECT; encap copies", "[packet][ecn]") {
    Fixture f;
    f.attach_mo(1, 0x30, kAcc0, kMoMac);
    const IpAddr cn4 = ip("192.0.2.99"), mo4 = ip("192.0.2.30");
    const IpAddr cn6 = ip("2001:db8:1::99"), mo6 = ip("2001:db8:1::30");
    auto with_tos = [](Bytes p, uint8_t tos) {
        if ((p[0] >> 4) == 4) {
            p[1] = tos;
            fix_ipv4_csum(p, 0);
        } else {
            uint32_t w = get32(p, 0);
            put32(p, 0, (w & 0xF00FFFFFu) | uint32_t(tos) << 20);
        }
        return p;
    };
    SECTION("outer CE + inner ECT(0) -> inner CE, checksum valid") {
        for (bool outer6 : {false, true}) {
            Bytes inner = udp4_pkt(cn4, mo4, 1, 2, 50, 0xB8 | 0x2);  // EF + ECT(0)
            LmFrame lf = outer6 ? lm6(inner, 4) : lm4(inner, 4);
            lf.tos = 0x03;
            Bytes out = f.one(kCore, lm_frame(lf), kAcc0);
            REQUIRE(out == eth(kMoMac, kGwMac, 0x0800, with_tos(inner, 0xBB)));
            REQUIRE(out[15] == 0xBB);
            REQUIRE(ipv4_csum_ok(out, 14));
        }
        Bytes in6 = udp6_pkt(cn6, mo6, 1, 2, 50, 0x01);  // ECT(1)
        LmFrame lf = lm6(in6, 41);
        lf.tos = 0x03;
        REQUIRE(f.one(kCore, lm_frame(lf), kAcc0) == eth(kMoMac, kGwMac, 0x86DD, with_tos(in6, 0x03)));
    }
    SECTION("outer CE + inner CE stays CE") {
        Bytes inner = udp4_pkt(cn4, mo4, 1, 2, 50, 0x03);
        LmFrame lf = lm4(inner, 4);
        lf.tos = 0x03;
        REQUIRE(f.one(kCore, lm_frame(lf), kAcc0) == eth(kMoMac, kGwMac, 0x0800, inner));
    }
    SECTION("outer CE + inner Not-ECT -> dropped ecn_ce_not_ect") {
        for (bool inner6 : {false, true}) {
            LmFrame lf = inner6 ? lm4(udp6_pkt(cn6, mo6, 1, 2, 50, 0xB8), 41) : lm4(udp4_pkt(cn4, mo4, 1, 2, 50, 0xB8), 4);
            lf.tos = 0xB8 | 0x03;
            f.run(kCore, lm_frame(lf));
        }
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.drop(Drop::EcnDrop) == 2);
        REQUIRE(f.drops_total() == 2);
    }
    SECTION("outer ECT(0) / Not-ECT leave the inner header alone") {
        Bytes inner = udp4_pkt(cn4, mo4, 1, 2, 50, 0x00);
        LmFrame lf = lm4(inner, 4);
        lf.tos = 0x02;
        REQUIRE(f.one(kCore, lm_frame(lf), kAcc0) == eth(kMoMac, kGwMac, 0x0800, inner));
        Bytes ect = udp4_pkt(cn4, mo4, 1, 2, 50, 0x01);
        lf = lm4(ect, 4);
        lf.tos = 0x00;
        REQUIRE(f.one(kCore, lm_frame(lf), kAcc0) == eth(kMoMac, kGwMac, 0x0800, ect));
    }
    SECTION("encap copies DSCP + ECN to the outer header") {
        map_four(f);
        for (uint8_t tos : {uint8_t(0xB9), uint8_t(0x03), uint8_t(0x00), uint8_t(0xFE)}) {
            Bytes a = f.one(kAcc0, from_host(udp4_pkt(kHost4, kR4a, 1, 2, 10, tos)), kCore);
            REQUIRE(a[15] == tos);
            REQUIRE(ipv4_csum_ok(a, 14));
            Bytes b = f.one(kAcc0, from_host(udp6_pkt(kHost6, kR6b, 1, 2, 10, tos)), kCore);
            REQUIRE(uint8_t(get32(b, 14) >> 20) == tos);
        }
    }
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("ECN: RFC 6040 decap of outer ECT(1) over inner ECT(0) gives ECT(1)", "[packet][ecn]") {
    // RFC 6040 section 4.2, Figure 4: arriving inner ECT(0) with outer ECT(1) leaves as ECT(1).
    Fixture f;
    f.attach_mo(1, 0x30, kAcc0, kMoMac);
    Bytes inner = udp4_pkt(ip("192.0.2.99"), ip("192.0.2.30"), 1, 2, 50, 0x02);
    LmFrame lf = lm4(inner, 4);
    lf.tos = 0x01;
    Bytes out = f.one(kCore, lm_frame(lf), kAcc0);
    Bytes want = inner;
    want[1] = 0x01;
    fix_ipv4_csum(want, 0);
    REQUIRE(out[15] == 0x01);
    REQUIRE(ipv4_csum_ok(out, 14));
    REQUIRE(out == eth(kMoMac, kGwMac, 0x0800, want));
    // ECT(1) over ECT(1), and ECT(1) over Not-ECT, leave the inner header as it is.
    for (uint8_t tos : {uint8_t(0x01), uint8_t(0x00)}) {
        Bytes in = udp4_pkt(ip("192.0.2.99"), ip("192.0.2.30"), 1, 2, 50, tos);
        LmFrame l = lm4(in, 4);
        l.tos = 0x01;
        REQUIRE(f.one(kCore, lm_frame(l), kAcc0) == eth(kMoMac, kGwMac, 0x0800, in));
    }
    // IPv6 inner ECT(0) under outer ECT(1) -> ECT(1).
    Bytes in6 = udp6_pkt(ip("2001:db8:1::99"), ip("2001:db8:1::30"), 1, 2, 50, 0xB8 | 0x02);
    LmFrame l6 = lm6(in6, 41);
    l6.tos = 0x01;
    Bytes want6 = in6;
    put32(want6, 0, (get32(want6, 0) & 0xF00FFFFFu) | uint32_t(0xB8 | 0x01) << 20);
    REQUIRE(f.one(kCore, lm_frame(l6), kAcc0) == eth(kMoMac, kGwMac, 0x86DD, want6));
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// MSS clamping

TEST_CASE("MSS clamp rewrites SYNs only, with a valid TCP checksum", "[packet][mss]") {
    Fixture f([](DpConfig& c) {
        c.mss_v4 = 1300;
        c.mss_v6 = 1280;
    });
    const Bytes tail = {1, 1, 4, 2, 1, 3, 3, 7};  // NOP NOP SACK-permitted NOP WS=7
    auto syn4 = [&](const IpAddr& dst, uint8_t flags, uint16_t mss) {
        return ipv4(V4{kHost4, dst, 6}, tcp(kHost4, dst, 33000, 443, flags, mss_opt(mss) + tail));
    };
    auto syn6 = [&](const IpAddr& dst, uint8_t flags, uint16_t mss) {
        return ipv6(V6{kHost6, dst, 6, 0, 0, 64}, tcp(kHost6, dst, 33000, 443, flags, mss_opt(mss) + tail));
    };
    SECTION("v4 SYN 1460 -> 1300") {
        Bytes out = f.one(kAcc0, from_host(syn4(kNative4, kSyn, 1460)), kCore);
        REQUIRE(out == eth(kNh4, kMacCore, 0x0800, ttl_minus_one(syn4(kNative4, kSyn, 1300))));
        REQUIRE(get16(out, 34 + 22) == 1300);
        REQUIRE(l4_csum_ok(kHost4, kNative4, 6, out.data() + 34, out.size() - 34));
        REQUIRE(f.ctr.mss_clamped.get() == 1);
    }
    SECTION("v4 SYN-ACK is clamped too") {
        Bytes out = f.one(kAcc0, from_host(syn4(kNative4, kSyn | kAck, 1460)), kCore);
        REQUIRE(out == eth(kNh4, kMacCore, 0x0800, ttl_minus_one(syn4(kNative4, kSyn | kAck, 1300))));
    }
    SECTION("v6 SYN 1440 -> 1280") {
        Bytes out = f.one(kAcc0, from_host(syn6(kNative6, kSyn, 1440)), kCore);
        REQUIRE(out == eth(kNh6, kMacCore, 0x86DD, ttl_minus_one(syn6(kNative6, kSyn, 1280))));
        REQUIRE(l4_csum_ok(kHost6, kNative6, 6, out.data() + 54, out.size() - 54));
    }
    SECTION("encapsulated SYN is clamped inside the tunnel") {
        map_four(f);
        Bytes out = f.one(kAcc0, from_host(syn4(kR4a, kSyn, 1460)), kCore);
        Bytes inner = slice(out, 66);
        REQUIRE(inner == ttl_minus_one(syn4(kR4a, kSyn, 1300)));
        REQUIRE(l4_csum_ok(kHost4, kR4a, 6, inner.data() + 20, inner.size() - 20));
    }
    SECTION("untouched: non-SYN, MSS already small") {
        Bytes ack = syn4(kNative4, kAck, 1460);
        REQUIRE(f.one(kAcc0, from_host(ack), kCore) == eth(kNh4, kMacCore, 0x0800, ttl_minus_one(ack)));
        Bytes small = syn4(kNative4, kSyn, 1200);
        REQUIRE(f.one(kAcc0, from_host(small), kCore) == eth(kNh4, kMacCore, 0x0800, ttl_minus_one(small)));
        Bytes small6 = syn6(kNative6, kSyn, 1280);
        REQUIRE(f.one(kAcc0, from_host(small6), kCore) == eth(kNh6, kMacCore, 0x86DD, ttl_minus_one(small6)));
        REQUIRE(f.ctr.mss_clamped.get() == 0);
    }
    SECTION("checksum stays valid over many MSS / port values") {
        for (uint16_t mss = 1301; mss < 1301 + 300; mss += 7) {
            V4 h{kHost4, kNative4, 6};
            h.id = mss;
            Bytes p = ipv4(h, tcp(kHost4, kNative4, mss, 443, kSyn, mss_opt(mss)));
            Bytes out = f.one(kAcc0, from_host(p), kCore);
            INFO("mss " << mss);
            REQUIRE(get16(out, 34 + 22) == 1300);
            REQUIRE(l4_csum_ok(kHost4, kNative4, 6, out.data() + 34, out.size() - 34));
        }
    }
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// Cache misses, next hops, tenants

TEST_CASE("cache miss -> MissMsg; mapping installed -> encap; deleted -> miss again", "[packet][cache]") {
    Fixture f;
    const IpAddr eid = ip("192.0.2.77");
    const Bytes frame = from_host(udp4_pkt(kHost4, eid, 1000, 2000, 40));

    f.run(kAcc0, frame);
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.drop(Drop::CacheMiss) == 1);
    REQUIRE(f.drops_total() == 1);
    REQUIRE(f.ctr.cache_miss.get() == 1);
    auto m = f.take_misses();
    REQUIRE(m.size() == 1);
    REQUIRE(m[0].key == EidKey::make(1, eid));
    REQUIRE(m[0].key.tenant() == 1);
    REQUIRE(m[0].key.family() == Family::V4);
    REQUIRE(m[0].key.ip() == eid);
    REQUIRE(m[0].worker == kWorkerId);

    f.map_remote(1, eid, 0x77, kPeer4, 5);
    Bytes out = f.one(kAcc0, frame, kCore);
    REQUIRE(get64(out, 42 + 8) == 0x77);
    REQUIRE(get64(out, 42 + 16) == 5);
    REQUIRE(f.take_misses().empty());

    SECTION("an update replaces the locator and epoch") {
        f.map_remote(1, eid, 0x77, kPeer6, 6);
        Bytes o6 = f.one(kAcc0, frame, kCore);
        REQUIRE(get16(o6, 12) == 0x86DD);
        REQUIRE(v6_at(o6, 38) == kPeer6);
        REQUIRE(get64(o6, 62 + 16) == 6);
    }
    SECTION("delete -> miss again") {
        f.unmap(1, eid);
        f.run(kAcc0, frame);
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.drop(Drop::CacheMiss) == 2);
        auto m2 = f.take_misses();
        REQUIRE(m2.size() == 1);
        REQUIRE(m2[0].key == EidKey::make(1, eid));
    }
    SECTION("v6 miss key") {
        const IpAddr e6 = ip("2001:db8:1::77");
        f.run(kAccV, from_host(udp6_pkt(kHost6, e6, 1, 2, 10), kVlan));
        auto m6 = f.take_misses();
        REQUIRE(m6.size() == 1);
        REQUIRE(m6[0].key == EidKey::make(1, e6));
        REQUIRE(m6[0].key.family() == Family::V6);
    }
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("no next hop MAC: dropped nexthop_unresolved, per family", "[packet][cache]") {
    Fixture f(nullptr, /*next_hops=*/false);
    map_four(f);
    f.run(kAcc0, from_host(udp4_pkt(kHost4, kR4a, 1, 2, 10)));
    f.run(kAcc0, from_host(udp6_pkt(kHost6, kR6b, 1, 2, 10)));
    f.run(kAcc0, from_host(udp4_pkt(kHost4, kNative4, 1, 2, 10)));
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.drop(Drop::NextHopUnresolved) == 3);
    REQUIRE(f.drops_total() == 3);

    f.set_next_hop(Family::V4, kNh4);
    REQUIRE(get16(f.one(kAcc0, from_host(udp6_pkt(kHost6, kR6a, 1, 2, 10)), kCore), 12) == 0x0800);  // 6in4 ok
    f.run(kAcc0, from_host(udp4_pkt(kHost4, kR4b, 1, 2, 10)));  // 4in6 still unresolved
    f.run(kAcc0, from_host(udp6_pkt(kHost6, kNative6, 1, 2, 10)));
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.drop(Drop::NextHopUnresolved) == 5);

    f.set_next_hop(Family::V6, kNh6);
    REQUIRE(slice(f.one(kAcc0, from_host(udp4_pkt(kHost4, kR4b, 1, 2, 10)), kCore), 0, 6) ==
            Bytes(kNh6.b.begin(), kNh6.b.end()));
    f.set_next_hop(Family::V6, MacAddr{});  // zero MAC: unresolved again
    f.run(kAcc0, from_host(udp4_pkt(kHost4, kR4b, 1, 2, 10)));
    REQUIRE(f.drop(Drop::NextHopUnresolved) == 6);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("no local locator of the mapping's family: no_local_locator", "[packet][cache]") {
    Fixture f([](DpConfig& c) { c.has_loc6 = false; });
    map_four(f);
    f.run(kAcc0, from_host(udp4_pkt(kHost4, kR4b, 1, 2, 10)));
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.drop(Drop::NoLocator) == 1);
    REQUIRE(f.drops_total() == 1);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("tenants: the same EID in two tenants maps to different MOs", "[packet][tenant]") {
    Fixture f;
    const IpAddr eid = ip("192.0.2.50");
    f.map_remote(1, eid, 0x1111, kPeer4, 10);
    f.map_remote(2, eid, 0x2222, kPeer6, 20);
    Bytes p = udp4_pkt(kHost4, eid, 1, 2, 10);
    Bytes o1 = f.one(kAcc0, from_host(p), kCore);
    Bytes o2 = f.one(kAcc1, from_host(p), kCore);
    REQUIRE(get32(o1, 42 + 4) == 0x00000100u);
    REQUIRE(get64(o1, 42 + 8) == 0x1111);
    REQUIRE(v4_at(o1, 30) == kPeer4);
    REQUIRE(get32(o2, 62 + 4) == 0x00000200u);
    REQUIRE(get64(o2, 62 + 8) == 0x2222);
    REQUIRE(v6_at(o2, 38) == kPeer6);
    // The VLAN port is tenant 1.
    REQUIRE(get64(f.one(kAccV, from_host(p, kVlan), kCore), 42 + 8) == 0x1111);

    SECTION("a large tenant id uses all 24 bits") {
        Fixture g([](DpConfig& c) { c.ports[kAcc1].tenant = 0xABCDEF; });
        g.map_remote(0xABCDEF, eid, 0x3333, kPeer4, 1);
        Bytes o = g.one(kAcc1, from_host(p), kCore);
        REQUIRE(get32(o, 42 + 4) == 0xABCDEF00u);
    }
    SECTION("decap looks the MO up per tenant") {
        f.attach_mo(2, 0x30, kAcc1, kMoMac);
        Bytes inner = udp4_pkt(ip("192.0.2.99"), eid, 1, 2, 10);
        LmFrame lf = lm4(inner, 4);
        lf.lm.tenant = 2;
        REQUIRE(f.one(kCore, lm_frame(lf), kAcc1) == eth(kMoMac, kGwMac, 0x0800, inner));
        lf.lm.tenant = 1;  // same MO id, other tenant: not attached here
        f.run(kCore, lm_frame(lf));
        REQUIRE(f.staged_total() == 0);
        REQUIRE(f.drop(Drop::LmUnknownMo) == 1);
    }
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// Valid but unusual packets

TEST_CASE("unusual valid packets are carried intact", "[packet][encap]") {
    Fixture f;
    map_four(f);
    SECTION("IPv4 with options (IHL 6)") {
        V4 h{kHost4, kR4a};
        h.options = {0x94, 0x04, 0x00, 0x00};  // Router Alert
        Bytes p = ipv4(h, udp(kHost4, kR4a, 1, 2, pattern(30)));
        REQUIRE(p[0] == 0x46);
        Bytes out = f.one(kAcc0, from_host(p), kCore);
        REQUIRE(slice(out, 66) == ttl_minus_one(p));
        REQUIRE(ipv4_csum_ok(out, 66));
        REQUIRE(get16(out, 16) == 52 + p.size());
    }
    SECTION("IPv6 with a hop-by-hop header") {
        Bytes hbh = {17, 0, 1, 4, 0, 0, 0, 0};  // next UDP, len 0, PadN(4)
        Bytes p = ipv6(V6{kHost6, kR6b, 0, 0, 0, 64}, hbh + udp(kHost6, kR6b, 1, 2, pattern(30)));
        Bytes out = f.one(kAcc0, from_host(p), kCore);
        REQUIRE(slice(out, 86) == ttl_minus_one(p));
        REQUIRE(out[62 + 2] == 41);
    }
    SECTION("IPv4 non-first fragment: hashed without ports, still encapsulated") {
        auto frag = [&](uint8_t first_byte) {
            V4 h{kHost4, kR4a};
            h.df = false;
            h.frag_off = 185;  // 1480 bytes in
            h.id = 0x4242;
            Bytes payload = pattern(64);
            payload[0] = first_byte;  // would be the "source port" if parsed as UDP
            return ipv4(h, payload);
        };
        Bytes a = frag(0x11), b = frag(0x99);
        Bytes oa = f.one(kAcc0, from_host(a), kCore);
        Bytes ob = f.one(kAcc0, from_host(b), kCore);
        REQUIRE(slice(oa, 66) == ttl_minus_one(a));
        REQUIRE(slice(ob, 66) == ttl_minus_one(b));
        REQUIRE(sport_of(oa, false) == sport_of(ob, false));
        REQUIRE((get16(oa, 20) & 0x4000) == 0);  // DF copied: inner has none
        // First fragments (offset 0, MF) do carry ports: different ports, different hash.
        std::set<uint16_t> ports;
        for (uint16_t sp = 1; sp <= 8; ++sp) {
            V4 h{kHost4, kR4a};
            h.df = false;
            h.mf = true;
            Bytes p = ipv4(h, udp(kHost4, kR4a, sp, 2, pattern(64)));
            ports.insert(sport_of(f.one(kAcc0, from_host(p), kCore), false));
        }
        REQUIRE(ports.size() >= 7);
    }
    SECTION("an ICMP error as the inner packet") {
        V4 h{kHost4, kR4a};
        h.proto = 1;
        Bytes quote = slice(udp4_pkt(kR4a, kHost4, 53, 40000, 20), 0, 28);
        Bytes p = ipv4(h, icmp4(3, 3, 0, quote));
        Bytes out = f.one(kAcc0, from_host(p), kCore);
        REQUIRE(slice(out, 66) == ttl_minus_one(p));
        Bytes p6 = ipv6(V6{kHost6, kR6b, 58, 0, 0, 64}, icmp6(kHost6, kR6b, 1, 4, 0, pattern(48)));
        REQUIRE(slice(f.one(kAcc0, from_host(p6), kCore), 86) == ttl_minus_one(p6));
    }
    SECTION("ICMP echo through the tunnel") {
        V4 h{kHost4, kR4a};
        h.proto = 1;
        Bytes p = ipv4(h, icmp4(8, 0, 0x12340001, pattern(56)));
        REQUIRE(slice(f.one(kAcc0, from_host(p), kCore), 66) == ttl_minus_one(p));
    }
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("a burst mixing every path is fully accounted for", "[packet][burst]") {
    Fixture f;
    map_four(f);
    f.map_local(1, ip("192.0.2.40"), 0x40, kAcc1, kMo2Mac);
    std::vector<Bytes> frames;
    for (int i = 0; i < 80; ++i) {  // more than one internal burst of 32
        switch (i % 8) {
            case 0: frames.push_back(from_host(udp4_pkt(kHost4, kR4a, uint16_t(i), 2, 10))); break;
            case 1: frames.push_back(from_host(udp6_pkt(kHost6, kR6b, uint16_t(i), 2, 10))); break;
            case 2: frames.push_back(from_host(udp4_pkt(kHost4, ip("192.0.2.40"), uint16_t(i), 2, 10))); break;
            case 3: frames.push_back(from_host(udp4_pkt(kHost4, kNative4, uint16_t(i), 2, 10))); break;
            case 4: frames.push_back(from_host(udp4_pkt(kHost4, ip("192.0.2.66"), uint16_t(i), 2, 10))); break;  // miss
            case 5: frames.push_back(eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kGw4))); break;
            case 6: frames.push_back(eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kHost4))); break;
            default: frames.push_back(eth(kGwMac, kHostMac, 0x1234, pattern(50))); break;
        }
    }
    // Keep within the 64-entry tx stage: run as two calls of 40.
    f.run(kAcc0, std::vector<Bytes>(frames.begin(), frames.begin() + 40));
    size_t core = f.take(kCore).size(), acc0 = f.take(kAcc0).size(), acc1 = f.take(kAcc1).size();
    f.run(kAcc0, std::vector<Bytes>(frames.begin() + 40, frames.end()));
    core += f.take(kCore).size();
    acc0 += f.take(kAcc0).size();
    acc1 += f.take(kAcc1).size();
    const size_t punted = f.take_punts().size();
    REQUIRE(core == 30);   // 10 encap v4 + 10 encap v6 + 10 native
    REQUIRE(acc1 == 10);   // local
    REQUIRE(acc0 == 10);   // ARP replies
    REQUIRE(punted == 10); // gratuitous ARP
    REQUIRE(f.drop(Drop::CacheMiss) == 10);
    REQUIRE(f.drop(Drop::UnknownEthertype) == 10);
    REQUIRE(f.drops_total() == 20);
    REQUIRE(f.take_misses().size() == 10);
    REQUIRE(f.ctr.ports[kAcc0].rx_packets.get() == 80);
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("full rings and a full tx stage are counted, never leaked", "[packet][burst]") {
    Fixture f;
    map_four(f);
    SECTION("punt ring full: punt_ring_full") {
        PuntMsg dummy{};
        unsigned filled = 0;
        while (rte_ring_enqueue_elem(f.punt_ring.get(), &dummy, sizeof dummy) == 0) ++filled;
        REQUIRE(filled == 1023);
        f.run(kAcc0, eth(kBcast, kHostMac, 0x0806, arp(1, kHostMac, kHost4, MacAddr{}, kHost4)));
        REQUIRE(f.drop(Drop::PuntRingFull) == 1);
        REQUIRE(f.drops_total() == 1);
        REQUIRE(f.ctr.punted.get() == 0);
        REQUIRE(f.staged_total() == 0);
        while (rte_ring_dequeue_elem(f.punt_ring.get(), &dummy, sizeof dummy) == 0) REQUIRE(dummy.mbuf == nullptr);
    }
    SECTION("miss ring full: still one cache_miss drop, miss_ring_full counted") {
        MissMsg dummy{};
        while (rte_ring_enqueue_elem(f.miss_ring.get(), &dummy, sizeof dummy) == 0) {
        }
        f.run(kAcc0, from_host(udp4_pkt(kHost4, ip("192.0.2.88"), 1, 2, 10)));
        REQUIRE(f.drop(Drop::CacheMiss) == 1);
        REQUIRE(f.drops_total() == 1);
        REQUIRE(f.ctr.miss_ring_full.get() == 1);
        REQUIRE(f.ctr.cache_miss.get() == 1);
    }
    SECTION("more than the tx stage holds in one call: tx_full") {
        std::vector<Bytes> frames;
        const unsigned stage = 2 * kBurst;  // the tx stage of a port
        for (uint16_t i = 0; i < stage + 16; ++i) frames.push_back(from_host(udp4_pkt(kHost4, kR4a, i, 2, 10)));
        f.run(kAcc0, frames);
        REQUIRE(f.staged_count(kCore) == stage);
        REQUIRE(f.drop(Drop::TxFull) == 16);
        REQUIRE(f.drops_total() == 16);
        REQUIRE(f.ctr.ports[kAcc0].rx_packets.get() == stage + 16);
    }
    f.discard();
    REQUIRE(f.in_use() == 0);
}

// =============================================================================================
// Miss buffer: packets wait for the control lcore's answer instead of being dropped

TEST_CASE("cache TTL: a hit past refresh_s asks for a refresh once, and the packet still goes", "[packet][pending]") {
    Fixture f;
    const uint32_t now_s = tsc_seconds(rte_rdtsc(), rte_get_tsc_hz());
    const IpAddr due = ip("192.0.2.70"), fresh = ip("192.0.2.71"), stat = ip("192.0.2.72");
    f.map_remote(1, due, 0x70, kPeer4, 3, now_s - 1);     // learned, TTL over
    f.map_remote(1, fresh, 0x71, kPeer4, 3, now_s + 300);  // learned, TTL running
    f.map_remote(1, stat, 0x72, kPeer4, 3, 0);            // static: never refreshed
    std::vector<Bytes> frames;
    for (const IpAddr* d : {&due, &fresh, &stat, &due})
        frames.push_back(from_host(udp4_pkt(kHost4, *d, 1000, 2000, 40)));
    f.run(kAcc0, frames);
    REQUIRE(f.take(kCore).size() == 4);  // nobody waits for the refresh
    REQUIRE(f.ctr.encap.get() == 4);
    auto m = f.take_misses();
    REQUIRE(m.size() == 1);  // the due mapping, once although two packets used it
    CHECK(m[0].key == EidKey::make(1, due));
    CHECK(m[0].refresh == 1);
    CHECK(f.ctr.cache_refresh.get() == 1);
    CHECK(f.ctr.cache_miss.get() == 0);
    // Asked: not again before the retry interval, even with more traffic.
    f.run(kAcc0, frames);
    CHECK(f.take(kCore).size() == 4);
    CHECK(f.take_misses().empty());
    // The control lcore's answer (a new TTL) and traffic: no question.
    f.map_remote(1, due, 0x70, kPeer4, 3, now_s + 300);
    f.run(kAcc0, frames);
    CHECK(f.take(kCore).size() == 4);
    CHECK(f.take_misses().empty());
    CHECK(f.in_use() == 0);
}

TEST_CASE("miss buffer: held, one question per EID, sent in order when the answer arrives", "[packet][pending]") {
    Fixture f([](DpConfig& c) {
        c.pending_packets = 16;
        c.pending_per_eid = 4;
        c.pending_timeout_ms = 60000;
    });
    const IpAddr eid = ip("192.0.2.77");
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < 6; ++i) frames.push_back(from_host(udp4_pkt(kHost4, eid, uint16_t(1000 + i), 2000, 40)));

    f.run(kAcc0, frames);
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.ctr.pending_held.get() == 4);
    REQUIRE(f.drop(Drop::PendingFull) == 2);  // per-EID bound
    REQUIRE(f.pp->pending_packets() == 4);
    auto m = f.take_misses();
    REQUIRE(m.size() == 1);  // coalesced: one question for four packets
    REQUIRE(m[0].key == EidKey::make(1, eid));

    f.map_remote(1, eid, 0x77, kPeer4, 5);  // the answer, as the control lcore sends it
    REQUIRE(f.pp->pending_packets() == 0);
    REQUIRE(f.ctr.pending_sent.get() == 4);
    auto out = f.take(kCore);
    REQUIRE(out.size() == 4);
    for (uint16_t i = 0; i < 4; ++i) {
        REQUIRE(get64(out[i], 42 + 8) == 0x77);                    // LM MO id
        REQUIRE(get16(out[i], 42 + 24 + 20) == uint16_t(1000 + i));  // inner UDP source port: order kept
    }
    REQUIRE(f.ctr.ports[kAcc0].rx_packets.get() == 6);  // released packets are not counted twice
    REQUIRE(f.in_use() == 0);
}

TEST_CASE("miss buffer: 400 packets for one EID wait and all leave in order (more than a tx stage)", "[packet][pending]") {
    Fixture f([](DpConfig& c) {
        c.pending_packets = 1024;
        c.pending_per_eid = 512;
        c.pending_timeout_ms = 60000;
    });
    f.enable_drain();  // as the worker does: the tx stage is emptied between passes
    const IpAddr eid = ip("192.0.2.78");
    const unsigned kN = 400;  // a woken-up VM's backlog to one correspondent
    std::vector<Bytes> frames;
    for (unsigned i = 0; i < kN; ++i) frames.push_back(from_host(udp4_pkt(kHost4, eid, uint16_t(1000 + i), 2000, 40)));
    f.run(kAcc0, frames);
    REQUIRE(f.ctr.pending_held.get() == kN);
    REQUIRE(f.take_misses().size() == 1);
    f.map_remote(1, eid, 0x78, kPeer4, 5);
    auto out = f.take(kCore);
    REQUIRE(out.size() == kN);
    for (unsigned i = 0; i < kN; ++i) REQUIRE(get16(out[i], 42 + 24 + 20) == uint16_t(1000 + i));
    CHECK(f.drops_total() == 0);
    CHECK(f.in_use() == 0);
}

TEST_CASE("miss buffer: negative answer, timeout and total bound drop with their counters", "[packet][pending]") {
    Fixture f([](DpConfig& c) {
        c.pending_packets = 3;
        c.pending_per_eid = 8;
        c.pending_timeout_ms = 10;
    });
    const IpAddr a = ip("192.0.2.77"), b = ip("192.0.2.78");
    f.run(kAcc0, {from_host(udp4_pkt(kHost4, a, 1, 2, 8)), from_host(udp4_pkt(kHost4, a, 1, 2, 8)),
                  from_host(udp4_pkt(kHost4, b, 1, 2, 8)), from_host(udp4_pkt(kHost4, b, 1, 2, 8))});
    REQUIRE(f.ctr.pending_held.get() == 3);
    REQUIRE(f.drop(Drop::PendingFull) == 1);  // total bound
    REQUIRE(f.take_misses().size() == 2);

    UpdateMsg neg{};
    neg.op = UpdateOp::MissFailed;
    neg.key = EidKey::make(1, a);
    f.pp->apply(neg);
    REQUIRE(f.drop(Drop::Unresolved) == 2);
    REQUIRE(f.pp->pending_packets() == 1);

    f.pp->expire_pending(rte_rdtsc());  // b's deadline (10 ms) has not passed yet
    REQUIRE(f.pp->pending_packets() == 1);
    rte_delay_ms(15);
    f.pp->expire_pending(rte_rdtsc());
    REQUIRE(f.drop(Drop::PendingTimeout) == 1);
    REQUIRE(f.pp->pending_packets() == 0);
    REQUIRE(f.staged_total() == 0);
    REQUIRE(f.in_use() == 0);
}
