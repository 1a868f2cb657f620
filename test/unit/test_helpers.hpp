// Shared fixture and packet builders for the packet-path unit tests ([packet], [malformed]).
//
// Packets are built byte by byte here, with checksums computed by our own ones'-complement sum
// (never DPDK's helpers), so the tests check the router against an independent implementation.
// The Fixture owns a real mempool, real rte_rings (miss, punt), a LocatorCache, an
// AttachmentTable and a PacketPath wired the way a worker wires them.
#pragma once

#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"
#include "common/counters.hpp"
#include "common/lm_wire.hpp"
#include "common/ring_msg.hpp"
#include "common/types.hpp"
#include "dataplane/dp_config.hpp"
#include "dataplane/dpdk_env.hpp"
#include "dataplane/locator_cache.hpp"
#include "dataplane/packet_path.hpp"

namespace lmt {

using namespace lm;
using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------------------------
// Values

inline IpAddr ip(std::string_view s) {
    auto a = IpAddr::parse(s);
    if (!a) throw std::invalid_argument("bad ip " + std::string(s));
    return *a;
}
inline MacAddr mac(std::string_view s) {
    auto m = MacAddr::parse(s);
    if (!m) throw std::invalid_argument("bad mac " + std::string(s));
    return *m;
}
inline Prefix pfx(std::string_view s) {
    auto p = Prefix::parse(s);
    if (!p) throw std::invalid_argument("bad prefix " + std::string(s));
    return *p;
}

// Port indices of the standard topology.
inline constexpr uint8_t kAcc0 = 0;  // access, tenant 1
inline constexpr uint8_t kCore = 1;  // core
inline constexpr uint8_t kAcc1 = 2;  // access, tenant 2
inline constexpr uint8_t kAccV = 3;  // access, tenant 1, VLAN 100
inline constexpr uint16_t kVlan = 100;
inline constexpr uint16_t kLmPort = 5555;  // deliberately not the default 4341
inline constexpr uint32_t kWorkerId = 7;

inline const MacAddr kMacAcc0 = mac("02:00:00:00:0a:00");
inline const MacAddr kMacCore = mac("02:00:00:00:0c:00");
inline const MacAddr kMacAcc1 = mac("02:00:00:00:0a:01");
inline const MacAddr kMacAccV = mac("02:00:00:00:0a:02");
inline const MacAddr kGwMac = mac("00:00:5e:00:01:01");
inline const MacAddr kNh4 = mac("02:00:00:00:ee:04");
inline const MacAddr kNh6 = mac("02:00:00:00:ee:06");
inline const MacAddr kHostMac = mac("52:54:00:00:00:0a");  // sender on an access port
inline const MacAddr kMoMac = mac("52:54:00:00:00:30");    // MO attached here (decap target)
inline const MacAddr kMo2Mac = mac("52:54:00:00:00:31");
inline const MacAddr kBcast = mac("ff:ff:ff:ff:ff:ff");

inline const IpAddr kGw4 = ip("192.0.2.1");
inline const IpAddr kGw6 = ip("2001:db8:1::1");
inline const IpAddr kLoc4 = ip("198.51.100.1");
inline const IpAddr kLoc6 = ip("2001:db8:ff::1");
inline const IpAddr kPeer4 = ip("198.51.100.2");
inline const IpAddr kPeer6 = ip("2001:db8:ff::2");
inline const IpAddr kHost4 = ip("192.0.2.10");  // sender behind access0 (mobile prefix)
inline const IpAddr kHost6 = ip("2001:db8:1::10");
inline const IpAddr kRemote4 = ip("192.0.2.20");  // MO at a remote AR (mapped by tests)
inline const IpAddr kRemote6 = ip("2001:db8:1::20");
inline const IpAddr kNative4 = ip("203.0.113.5");  // outside every mobile prefix
inline const IpAddr kNative6 = ip("2001:db8:99::5");

// The standard data plane configuration: 4 ports, v4+v6 locators and gateway.
inline DpConfig default_config() {
    DpConfig c;
    c.nb_ports = 4;
    c.core_index = kCore;
    c.ports[kAcc0] = DpPort{0, PortRole::Access, 1, 1500, kMacAcc0, false, 0};
    c.ports[kCore] = DpPort{1, PortRole::Core, 0, 1500, kMacCore, false, 0};
    c.ports[kAcc1] = DpPort{2, PortRole::Access, 2, 1500, kMacAcc1, false, 0};
    c.ports[kAccV] = DpPort{3, PortRole::Access, 1, 1500, kMacAccV, true, kVlan};
    c.has_loc4 = c.has_loc6 = true;
    c.loc4 = kLoc4;
    c.loc6 = kLoc6;
    c.has_gw4 = c.has_gw6 = true;
    c.gw4 = kGw4;
    c.gw6 = kGw6;
    c.gw_mac = kGwMac;
    c.mobile = {MobilePrefix{pfx("192.0.2.0/24"), std::nullopt}, MobilePrefix{pfx("2001:db8:1::/64"), std::nullopt}};
    c.peers = {pfx("198.51.100.0/24"), pfx("2001:db8:ff::/64")};
    c.udp_port = kLmPort;
    c.udp_csum_v6 = false;
    c.df = DfPolicy::Copy;
    c.mss_v4 = c.mss_v6 = 0;
    c.icmp_rate = 100;
    c.pending_packets = 0;  // miss buffer off: a miss is an immediate, counted drop (its own tests turn it on)
    return c;
}

// ---------------------------------------------------------------------------------------------
// Byte helpers and an independent Internet checksum (RFC 1071)

inline void put16(Bytes& b, size_t off, uint16_t v) {
    b.at(off) = uint8_t(v >> 8);
    b.at(off + 1) = uint8_t(v);
}
inline void put32(Bytes& b, size_t off, uint32_t v) {
    put16(b, off, uint16_t(v >> 16));
    put16(b, off + 2, uint16_t(v));
}
inline uint16_t get16(const Bytes& b, size_t off) { return uint16_t(b.at(off) << 8 | b.at(off + 1)); }
inline uint32_t get32(const Bytes& b, size_t off) { return uint32_t(get16(b, off)) << 16 | get16(b, off + 2); }
inline uint64_t get64(const Bytes& b, size_t off) { return uint64_t(get32(b, off)) << 32 | get32(b, off + 4); }
inline Bytes slice(const Bytes& b, size_t off, size_t n = SIZE_MAX) {
    if (off > b.size()) throw std::out_of_range("slice");
    n = std::min(n, b.size() - off);
    return Bytes(b.begin() + long(off), b.begin() + long(off + n));
}
inline Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}
inline Bytes pattern(size_t n, uint8_t seed = 0) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed + i * 7 + (i >> 8));
    return b;
}

inline uint64_t sum16(const uint8_t* p, size_t n, uint64_t acc = 0) {
    size_t i = 0;
    for (; i + 1 < n; i += 2) acc += uint32_t(p[i]) << 8 | p[i + 1];
    if (i < n) acc += uint32_t(p[i]) << 8;
    return acc;
}
inline uint16_t fold(uint64_t s) {
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
    return uint16_t(s);
}
inline uint16_t inet_csum(const uint8_t* p, size_t n) { return uint16_t(~fold(sum16(p, n))); }
inline uint64_t pseudo_sum(const IpAddr& s, const IpAddr& d, uint8_t proto, size_t len) {
    const size_t al = s.is_v4() ? 4 : 16;
    uint64_t acc = sum16(s.b.data(), al);
    acc = sum16(d.b.data(), al, acc);
    return acc + proto + (len >> 16) + (len & 0xFFFF);
}
// Checksum to store in an L4 header whose checksum field is zero.
inline uint16_t l4_csum(const IpAddr& s, const IpAddr& d, uint8_t proto, const uint8_t* p, size_t n) {
    return uint16_t(~fold(sum16(p, n, pseudo_sum(s, d, proto, n))));
}
// True when an L4 segment (checksum field filled in) verifies.
inline bool l4_csum_ok(const IpAddr& s, const IpAddr& d, uint8_t proto, const uint8_t* p, size_t n) {
    return fold(sum16(p, n, pseudo_sum(s, d, proto, n))) == 0xFFFF;
}
inline bool ipv4_csum_ok(const Bytes& b, size_t off) {
    const size_t ihl = (b.at(off) & 0xF) * 4u;
    if (off + ihl > b.size()) return false;
    return fold(sum16(b.data() + off, ihl)) == 0xFFFF;
}
inline void fix_ipv4_csum(Bytes& b, size_t off) {
    const size_t ihl = (b.at(off) & 0xF) * 4u;
    put16(b, off + 10, 0);
    put16(b, off + 10, inet_csum(b.data() + off, ihl));
}
inline IpAddr v4_at(const Bytes& b, size_t off) {
    IpAddr a;
    a.family = Family::V4;
    std::memcpy(a.b.data(), b.data() + off, 4);
    return a;
}
inline IpAddr v6_at(const Bytes& b, size_t off) { return IpAddr::v6_from(b.data() + off); }

// ---------------------------------------------------------------------------------------------
// Header builders

struct V4 {
    V4(const IpAddr& s, const IpAddr& d, uint8_t p = 17) : src(s), dst(d), proto(p) {}
    IpAddr src, dst;
    uint8_t proto = 17;
    uint8_t tos = 0;
    uint8_t ttl = 64;
    bool df = true;
    bool mf = false;
    uint16_t frag_off = 0;  // in 8-byte units
    uint16_t id = 0x1234;
    Bytes options;          // multiple of 4
};
inline Bytes ipv4(const V4& h, const Bytes& payload) {
    const size_t ihl = 20 + h.options.size();
    Bytes b(ihl);
    b[0] = uint8_t(0x40 | (ihl / 4));
    b[1] = h.tos;
    put16(b, 2, uint16_t(ihl + payload.size()));
    put16(b, 4, h.id);
    put16(b, 6, uint16_t((h.frag_off & 0x1FFF) | (h.df ? 0x4000 : 0) | (h.mf ? 0x2000 : 0)));
    b[8] = h.ttl;
    b[9] = h.proto;
    std::memcpy(&b[12], h.src.b.data(), 4);
    std::memcpy(&b[16], h.dst.b.data(), 4);
    std::copy(h.options.begin(), h.options.end(), b.begin() + 20);
    put16(b, 10, inet_csum(b.data(), ihl));
    return b + payload;
}

struct V6 {
    IpAddr src, dst;
    uint8_t nh = 17;
    uint8_t tc = 0;
    uint32_t flow = 0;
    uint8_t hop = 64;
};
inline Bytes ipv6(const V6& h, const Bytes& payload) {
    Bytes b(40);
    put32(b, 0, 6u << 28 | uint32_t(h.tc) << 20 | (h.flow & 0xFFFFF));
    put16(b, 4, uint16_t(payload.size()));
    b[6] = h.nh;
    b[7] = h.hop;
    std::memcpy(&b[8], h.src.b.data(), 16);
    std::memcpy(&b[24], h.dst.b.data(), 16);
    return b + payload;
}

inline Bytes udp(const IpAddr& s, const IpAddr& d, uint16_t sp, uint16_t dp, const Bytes& data, bool csum = true) {
    Bytes b(8);
    put16(b, 0, sp);
    put16(b, 2, dp);
    put16(b, 4, uint16_t(8 + data.size()));
    b = b + data;
    if (csum) {
        uint16_t c = l4_csum(s, d, 17, b.data(), b.size());
        put16(b, 6, c == 0 ? 0xFFFF : c);
    }
    return b;
}

inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
inline Bytes tcp(const IpAddr& s, const IpAddr& d, uint16_t sp, uint16_t dp, uint8_t flags, const Bytes& options,
                 const Bytes& data = {}) {
    Bytes opt = options;
    while (opt.size() % 4) opt.push_back(0);
    Bytes b(20);
    put16(b, 0, sp);
    put16(b, 2, dp);
    put32(b, 4, 0x11223344);
    put32(b, 8, flags & kAck ? 0x55667788 : 0);
    b[12] = uint8_t(((20 + opt.size()) / 4) << 4);
    b[13] = flags;
    put16(b, 14, 64240);
    b = b + opt + data;
    put16(b, 16, l4_csum(s, d, 6, b.data(), b.size()));
    return b;
}
inline Bytes mss_opt(uint16_t mss) { return {2, 4, uint8_t(mss >> 8), uint8_t(mss)}; }

inline Bytes icmp4(uint8_t type, uint8_t code, uint32_t rest, const Bytes& data) {
    Bytes b(8);
    b[0] = type;
    b[1] = code;
    put32(b, 4, rest);
    b = b + data;
    put16(b, 2, inet_csum(b.data(), b.size()));
    return b;
}
inline Bytes icmp6(const IpAddr& s, const IpAddr& d, uint8_t type, uint8_t code, uint32_t rest, const Bytes& data) {
    Bytes b(8);
    b[0] = type;
    b[1] = code;
    put32(b, 4, rest);
    b = b + data;
    put16(b, 2, l4_csum(s, d, 58, b.data(), b.size()));
    return b;
}

inline Bytes eth(const MacAddr& dst, const MacAddr& src, uint16_t type, const Bytes& payload, int vlan = -1) {
    Bytes b(vlan >= 0 ? 18 : 14);
    std::memcpy(&b[0], dst.b.data(), 6);
    std::memcpy(&b[6], src.b.data(), 6);
    if (vlan >= 0) {
        put16(b, 12, 0x8100);
        put16(b, 14, uint16_t(vlan));
        put16(b, 16, type);
    } else {
        put16(b, 12, type);
    }
    return b + payload;
}

inline Bytes arp(uint16_t op, const MacAddr& sha, const IpAddr& spa, const MacAddr& tha, const IpAddr& tpa) {
    Bytes b(28);
    put16(b, 0, 1);
    put16(b, 2, 0x0800);
    b[4] = 6;
    b[5] = 4;
    put16(b, 6, op);
    std::memcpy(&b[8], sha.b.data(), 6);
    std::memcpy(&b[14], spa.b.data(), 4);
    std::memcpy(&b[18], tha.b.data(), 6);
    std::memcpy(&b[24], tpa.b.data(), 4);
    return b;
}

// The LM header (docs: common/lm_wire.hpp), built by hand.
struct Lm {
    uint8_t version = 1;
    uint8_t flags = 0;
    uint8_t type = 0;
    uint8_t next = 4;
    uint32_t tenant = 1;
    uint64_t mo = 0x30;
    uint64_t epoch = 0x0000018F00000001ull;
};
inline Bytes lm_hdr(const Lm& l) {
    Bytes b(24);
    b[0] = uint8_t(l.version << 4 | (l.flags & 0xF));
    b[1] = l.type;
    b[2] = l.next;
    b[3] = 0;
    b[4] = uint8_t(l.tenant >> 16);
    b[5] = uint8_t(l.tenant >> 8);
    b[6] = uint8_t(l.tenant);
    b[7] = 0;
    put32(b, 8, uint32_t(l.mo >> 32));
    put32(b, 12, uint32_t(l.mo));
    put32(b, 16, uint32_t(l.epoch >> 32));
    put32(b, 20, uint32_t(l.epoch));
    return b;
}

// An LM packet as a peer AR sends it to us, as an Ethernet frame on the core port.
struct LmFrame {
    bool outer6 = false;
    IpAddr src = kPeer4;    // set to kPeer6 / kLoc6 for v6 outer
    IpAddr dst = kLoc4;
    uint8_t tos = 0;
    uint16_t sport = 51000;
    uint16_t dport = kLmPort;
    bool udp_csum = false;
    Lm lm;
    Bytes inner;
};
inline Bytes lm_frame(const LmFrame& f) {
    Bytes u = udp(f.src, f.dst, f.sport, f.dport, lm_hdr(f.lm) + f.inner, f.udp_csum);
    if (f.outer6) return eth(kMacCore, kNh6, 0x86DD, ipv6(V6{f.src, f.dst, 17, f.tos, 0x12345, 64}, u));
    V4 h{f.src, f.dst};
    h.tos = f.tos;
    h.id = 0;
    return eth(kMacCore, kNh4, 0x0800, ipv4(h, u));
}
inline LmFrame lm4(const Bytes& inner, uint8_t next) {
    LmFrame f;
    f.inner = inner;
    f.lm.next = next;
    return f;
}
inline LmFrame lm6(const Bytes& inner, uint8_t next) {
    LmFrame f;
    f.outer6 = true;
    f.src = kPeer6;
    f.dst = kLoc6;
    f.inner = inner;
    f.lm.next = next;
    return f;
}

// Simple inner packets.
inline Bytes udp4_pkt(const IpAddr& s, const IpAddr& d, uint16_t sp, uint16_t dp, size_t n, uint8_t tos = 0,
                      uint8_t ttl = 64, bool df = true) {
    V4 h{s, d};
    h.tos = tos;
    h.ttl = ttl;
    h.df = df;
    return ipv4(h, udp(s, d, sp, dp, pattern(n, uint8_t(sp))));
}
inline Bytes udp6_pkt(const IpAddr& s, const IpAddr& d, uint16_t sp, uint16_t dp, size_t n, uint8_t tc = 0,
                      uint8_t hop = 64) {
    return ipv6(V6{s, d, 17, tc, 0xABCDE, hop}, udp(s, d, sp, dp, pattern(n, uint8_t(sp))));
}
// Access frame from the host on access0 (or another access port) to the gateway MAC.
inline Bytes from_host(const Bytes& ippkt, int vlan = -1) {
    const uint16_t type = (ippkt.at(0) >> 4) == 6 ? 0x86DD : 0x0800;
    return eth(kGwMac, kHostMac, type, ippkt, vlan);
}
inline Bytes ttl_minus_one(Bytes p) {
    if ((p.at(0) >> 4) == 4) {
        --p.at(8);
        fix_ipv4_csum(p, 0);
    } else {
        --p.at(7);
    }
    return p;
}

// ---------------------------------------------------------------------------------------------
// Fixture

struct Punted {
    uint8_t port;
    PuntReason reason;
    Bytes data;
};

class Fixture {
public:
    static constexpr unsigned kPoolSize = 2047;

    DpConfig cfg;
    WorkerCounters ctr;
    MempoolPtr pool;
    RingPtr miss_ring, punt_ring;
    std::unique_ptr<LocatorCache> cache;
    std::unique_ptr<AttachmentTable> attach;
    std::unique_ptr<PacketPath> pp;

    // `tweak` edits the configuration before the PacketPath is built (icmp_rate is read then).
    explicit Fixture(const std::function<void(DpConfig&)>& tweak = nullptr, bool next_hops = true) {
        static std::atomic<unsigned> seq{0};
        const std::string id = "tp" + std::to_string(seq++);
        const int socket = int(rte_socket_id());
        cfg = default_config();
        if (tweak) tweak(cfg);
        // Cache size 0: rte_mempool_avail_count is then exact, so leaks are visible.
        rte_mempool* p = rte_pktmbuf_pool_create((id + "p").c_str(), kPoolSize, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
        if (!p) throw std::runtime_error("cannot create test mbuf pool " + id);
        pool.reset(p);
        miss_ring = make_mpsc_ring(id + "m", sizeof(MissMsg), 1024, socket);
        punt_ring = make_mpsc_ring(id + "u", sizeof(PuntMsg), 1024, socket);
        cache = std::make_unique<LocatorCache>(id + "c", 1024, socket);
        attach = std::make_unique<AttachmentTable>(id + "a", 256, socket);
        pp = std::make_unique<PacketPath>(cfg, ctr, *cache, *attach, pool.get(),
                                          PacketPath::Rings{miss_ring.get(), punt_ring.get()}, kWorkerId);
        if (next_hops) {
            set_next_hop(Family::V4, kNh4);
            set_next_hop(Family::V6, kNh6);
        }
    }
    ~Fixture() { discard(); }
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;

    // ---- state, through the same messages the control lcore sends
    // refresh_s: as the control lcore sets it for a DHT-learned mapping (0: static, never).
    void map_remote(TenantId t, const IpAddr& eid, MoId mo, const IpAddr& loc, Epoch ep, uint32_t refresh_s = 0) {
        UpdateMsg u;
        u.op = UpdateOp::UpsertMapping;
        u.key = EidKey::make(t, eid);
        u.value.mo_id = mo;
        u.value.epoch = ep;
        u.value.locator = loc;
        u.value.refresh_s = refresh_s;
        pp->apply(u);
    }
    void map_local(TenantId t, const IpAddr& eid, MoId mo, uint8_t port, const MacAddr& m) {
        UpdateMsg u;
        u.op = UpdateOp::UpsertMapping;
        u.key = EidKey::make(t, eid);
        u.value.mo_id = mo;
        u.value.flags = MappingValue::kLocal;
        u.value.port_index = port;
        u.value.mac = m;
        pp->apply(u);
    }
    void unmap(TenantId t, const IpAddr& eid) {
        UpdateMsg u;
        u.op = UpdateOp::DeleteMapping;
        u.key = EidKey::make(t, eid);
        pp->apply(u);
    }
    void attach_mo(TenantId t, MoId mo, uint8_t port, const MacAddr& m) {
        UpdateMsg u;
        u.op = UpdateOp::UpsertAttachment;
        u.tenant = t;
        u.mo_id = mo;
        u.port_index = port;
        u.mac = m;
        pp->apply(u);
    }
    // An attachment with its handover state (Deliver / Hold / Forward), as the control lcore sends it.
    void attach_state(TenantId t, MoId mo, uint8_t port, const MacAddr& m, AttachState st, Epoch ep = 0,
                      Epoch fwd_ep = 0, const IpAddr& fwd = IpAddr{}) {
        UpdateMsg u;
        u.op = UpdateOp::UpsertAttachment;
        u.tenant = t;
        u.mo_id = mo;
        u.port_index = port;
        u.mac = m;
        u.state = st;
        u.epoch = ep;
        u.fwd_epoch = fwd_ep;
        u.fwd_locator = fwd;
        pp->apply(u);
    }
    // A local mapping with kHold (migrate-begin: local traffic to the MO waits too).
    void map_local_hold(TenantId t, const IpAddr& eid, MoId mo, uint8_t port, const MacAddr& m) {
        UpdateMsg u;
        u.op = UpdateOp::UpsertMapping;
        u.key = EidKey::make(t, eid);
        u.value.mo_id = mo;
        u.value.flags = MappingValue::kLocal | MappingValue::kHold;
        u.value.port_index = port;
        u.value.mac = m;
        pp->apply(u);
    }
    void detach_mo(TenantId t, MoId mo) {
        UpdateMsg u;
        u.op = UpdateOp::DeleteAttachment;
        u.tenant = t;
        u.mo_id = mo;
        pp->apply(u);
    }
    void set_next_hop(Family f, const MacAddr& m) {
        UpdateMsg u;
        u.op = UpdateOp::SetNextHop;
        u.family = f;
        u.mac = m;
        pp->apply(u);
    }

    // ---- mbufs
    rte_mbuf* mbuf(const Bytes& b) {
        rte_mbuf* m = rte_pktmbuf_alloc(pool.get());
        if (!m) throw std::runtime_error("test pool empty");
        char* p = rte_pktmbuf_append(m, uint16_t(b.size()));
        if (!p && !b.empty()) {
            rte_pktmbuf_free(m);
            throw std::runtime_error("frame too large for one mbuf");
        }
        if (!b.empty()) std::memcpy(p, b.data(), b.size());
        return m;
    }
    static Bytes bytes(const rte_mbuf* m) {
        Bytes b(rte_pktmbuf_pkt_len(m));
        if (b.empty()) return b;
        const void* p = rte_pktmbuf_read(m, 0, uint32_t(b.size()), b.data());
        if (p != b.data()) std::memcpy(b.data(), p, b.size());
        return b;
    }
    int in_use() const { return int(kPoolSize) - int(rte_mempool_avail_count(pool.get())); }

    // ---- running
    void run(uint8_t port, const std::vector<Bytes>& frames) {
        std::vector<rte_mbuf*> v;
        v.reserve(frames.size());
        for (auto& f : frames) v.push_back(mbuf(f));
        pp->process(port, std::span<rte_mbuf*>(v));
    }
    void run(uint8_t port, const Bytes& frame) { run(port, std::vector<Bytes>{frame}); }

    size_t staged_count(uint8_t p) { return pp->staged(p).size(); }
    size_t staged_total() {
        size_t n = 0;
        for (uint8_t p = 0; p < kMaxPorts; ++p) n += pp->staged(p).size();
        return n;
    }
    // Released held packets leave in chunks inside one apply(): like the worker, transmit
    // (here: copy out and free) between chunks, so the 64-packet tx stage never overflows.
    void enable_drain() {
        pp->set_drain(
            [](void* ctx) {
                auto* f = static_cast<Fixture*>(ctx);
                for (uint8_t p = 0; p < kMaxPorts; ++p) {
                    for (rte_mbuf* m : f->pp->staged(p)) {
                        f->drained_[p].push_back(bytes(m));
                        rte_pktmbuf_free(m);
                    }
                    f->pp->clear_staged(p);
                }
            },
            this);
    }

    // Copies out and frees what is staged on port p (after what a drain already took).
    std::vector<Bytes> take(uint8_t p) {
        std::vector<Bytes> out = std::move(drained_[p]);
        drained_[p].clear();
        for (rte_mbuf* m : pp->staged(p)) {
            out.push_back(bytes(m));
            rte_pktmbuf_free(m);
        }
        pp->clear_staged(p);
        return out;
    }
    std::vector<Punted> take_punts() {
        std::vector<Punted> out;
        PuntMsg msg;
        while (rte_ring_dequeue_elem(punt_ring.get(), &msg, sizeof msg) == 0) {
            out.push_back({msg.port_index, msg.reason, bytes(msg.mbuf)});
            rte_pktmbuf_free(msg.mbuf);
        }
        return out;
    }
    std::vector<MissMsg> take_misses() {
        std::vector<MissMsg> out;
        MissMsg msg;
        while (rte_ring_dequeue_elem(miss_ring.get(), &msg, sizeof msg) == 0) out.push_back(msg);
        return out;
    }
    // Frees everything staged on every port and everything punted.
    void discard() {
        for (uint8_t p = 0; p < kMaxPorts; ++p) take(p);
        take_punts();
        take_misses();
    }

    // Run one frame and return the single packet staged on `out` (requires nothing else staged,
    // punted or dropped).
    Bytes one(uint8_t in, const Bytes& frame, uint8_t out) {
        const auto before = drops();
        run(in, frame);
        for (uint8_t p = 0; p < kMaxPorts; ++p)
            if (p != out) REQUIRE(staged_count(p) == 0);
        REQUIRE(staged_count(out) == 1);
        REQUIRE(drops() == before);
        auto v = take(out);
        REQUIRE(take_punts().empty());
        return v.at(0);
    }

    // Run one frame that must produce exactly one generated ICMP error staged on `out` (default:
    // back on the input port) while the original is dropped (one drop reason, plus nothing else).
    Bytes one_icmp(uint8_t in, const Bytes& frame, int out = -1) {
        const uint8_t o = out < 0 ? in : uint8_t(out);
        const uint64_t drops0 = drops_total(), sent0 = ctr.icmp_sent.get();
        run(in, frame);
        REQUIRE(staged_total() == 1);
        REQUIRE(staged_count(o) == 1);
        REQUIRE(drops_total() == drops0 + 1);
        REQUIRE(ctr.icmp_sent.get() == sent0 + 1);
        REQUIRE(take_punts().empty());
        return take(o).at(0);
    }

    // ---- counters
    std::array<uint64_t, size_t(Drop::Count)> drops() const {
        std::array<uint64_t, size_t(Drop::Count)> a{};
        for (size_t i = 0; i < a.size(); ++i) a[i] = ctr.drops[i].get();
        return a;
    }
    uint64_t drop(Drop d) const { return ctr.dropped(d); }
    uint64_t drops_total() const {
        uint64_t n = 0;
        for (size_t i = 0; i < size_t(Drop::Count); ++i) n += ctr.drops[i].get();
        return n;
    }
    uint64_t rx_total() const {
        uint64_t n = 0;
        for (auto& p : ctr.ports) n += p.rx_packets.get();
        return n;
    }

private:
    std::array<std::vector<Bytes>, kMaxPorts> drained_;
};

inline std::string drop_name(Drop d) { return std::string(kDropNames[size_t(d)]); }

}  // namespace lmt

// Byte vectors print as offset-annotated hex in failure messages.
namespace Catch {
template <>
struct StringMaker<std::vector<uint8_t>> {
    static std::string convert(const std::vector<uint8_t>& v) {
        static const char* hex = "0123456789abcdef";
        std::string s = "[" + std::to_string(v.size()) + " bytes]";
        for (size_t i = 0; i < v.size(); ++i) {
            if (i % 16 == 0) {
                char off[32];
                std::snprintf(off, sizeof off, "\n%04zx:", i);
                s += off;
            }
            s += ' ';
            s += hex[v[i] >> 4];
            s += hex[v[i] & 0xF];
        }
        return s;
    }
};
}  // namespace Catch
