// Messages between the control lcore and the workers: the only types both sides share.
// Every message is a fixed-size, trivially copyable struct carried by value in an rte_ring
// created with rte_ring_create_elem, so nothing is allocated per message.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/types.hpp"

struct rte_mbuf;

namespace lm {

// Key of the per-worker locator cache: tenant + family + address, padded to 32 bytes with
// zeroes: the cache (dataplane/flat_table.hpp) hashes and compares keys as bytes.
struct alignas(8) EidKey {
    // No default member initialisers: the data plane builds keys in a per-burst array and
    // writes every byte itself (make_raw). Use EidKey{} or make() elsewhere.
    uint32_t tenant_family;  // tenant << 8 | family (4 or 6)
    uint8_t addr[16];
    uint8_t pad[12];

    static EidKey make(TenantId t, const IpAddr& a) {
        EidKey k{};
        k.tenant_family = t << 8 | uint32_t(a.family);
        std::memcpy(k.addr, a.b.data(), 16);
        return k;
    }
    // From header bytes: 4 (IPv4) or 16 (IPv6) address bytes.
    void set_raw(TenantId t, Family f, const void* a) {
        tenant_family = t << 8 | uint32_t(f);
        std::memset(addr + 4, 0, sizeof addr - 4 + sizeof pad);
        std::memcpy(addr, a, f == Family::V4 ? 4 : 16);
    }
    TenantId tenant() const { return tenant_family >> 8; }
    Family family() const { return Family(tenant_family & 0xFF); }
    IpAddr ip() const {
        IpAddr a;
        a.family = family();
        std::memcpy(a.b.data(), addr, 16);
        return a;
    }
    bool operator==(const EidKey& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
static_assert(sizeof(EidKey) == 32);

// What a worker knows about one EID.
struct MappingValue {
    MoId mo_id = 0;
    Epoch epoch = 0;
    IpAddr locator;            // remote AR (unused when kLocal)
    uint8_t flags = 0;
    uint8_t port_index = 0;    // kLocal: access port the MO sits behind
    MacAddr mac;               // kLocal: the MO's MAC
    // Learned from the DHT: TSC second (tsc_seconds()) after which a packet using this mapping
    // asks the control lcore to refresh it (MissMsg::refresh). 0: never (static, local).
    uint32_t refresh_s = 0;
    static constexpr uint8_t kLocal = 0x1;  // attached to this AR: deliver, do not encapsulate
    // With kLocal: the MO is leaving (migrate-begin). Packets for it wait in the worker's hold
    // buffer under AttachKey(tenant, mo_id) until the attachment leaves the Hold state.
    static constexpr uint8_t kHold = 0x2;
};

// What a worker does with LM packets (and local traffic) for an MO attached here.
enum class AttachState : uint8_t {
    Deliver = 0,  // decapsulate and deliver on the access port
    Hold = 1,     // migrate-begin: keep packets in the hold buffer (bounded, timed out)
    Forward = 2,  // the MO moved: re-encapsulate to fwd_locator with fwd_epoch (forwarding pointer)
};

enum class UpdateOp : uint8_t {
    UpsertMapping = 1,     // key + mapping
    DeleteMapping = 2,     // key
    // tenant + mo_id -> port_index + mac (decap delivery), state, epoch, forwarding target.
    // Leaving Hold (to Deliver or Forward) or being deleted releases the held packets: they go
    // through the packet path again and follow the new state.
    UpsertAttachment = 3,
    DeleteAttachment = 4,
    SetNextHop = 5,        // family + mac of the core next hop (zero MAC = unresolved)
    MissFailed = 6,        // key: no mapping exists; packets waiting for it are dropped
    // Everything the control lcore pushes at start-up (next hops, static attachments and
    // mappings: more than an update ring holds, the rest follows from its backlog) came before
    // this: a worker started with WorkerParams::wait_ready may now poll its ports.
    Ready = 7,
};

// Control lcore -> one worker. Idempotent: applying the same message twice is harmless,
// so the control lcore may retry freely when a ring is full.
struct UpdateMsg {
    UpdateOp op{};
    Family family = Family::V4;  // SetNextHop
    uint8_t pad[2] = {};
    TenantId tenant = 0;         // attachments
    MoId mo_id = 0;              // attachments
    MacAddr mac;                 // attachments, next hop
    uint8_t port_index = 0;      // attachments
    AttachState state = AttachState::Deliver;  // attachments
    Epoch epoch = 0;             // attachments: epoch of the MO's current record here (stale senders)
    Epoch fwd_epoch = 0;         // attachments, Forward: epoch written into re-encapsulated packets
    IpAddr fwd_locator;          // attachments, Forward: the MO's new AR
    EidKey key{};                // mappings
    MappingValue value;          // mappings
};
static_assert(std::is_trivially_copyable_v<UpdateMsg>);
static_assert(sizeof(UpdateMsg) % 4 == 0, "rte_ring element size must be a multiple of 4");

// Worker -> control lcore: a destination that missed the cache.
struct MissMsg {
    EidKey key{};
    uint32_t worker = 0;
    uint32_t refresh = 0;  // 1: not a miss but a hit on a mapping due for refresh (traffic flows)
};

// Seconds of the TSC clock, as both planes count refresh_s.
inline uint32_t tsc_seconds(uint64_t tsc, uint64_t tsc_hz) { return uint32_t(tsc / tsc_hz); }
static_assert(std::is_trivially_copyable_v<MissMsg>);
static_assert(sizeof(MissMsg) % 4 == 0);

enum class PuntReason : uint8_t {
    Arp = 1,          // ARP not answered by the fast path (replies, gratuitous ARP, RARP)
    Nd = 2,           // ND not answered by the fast path (NA, RS, DAD)
    LocalIcmp = 3,    // ICMP/ICMPv6 addressed to the gateway or a locator (ping)
    LmControl = 4,    // LM packet of a control type (refresh hint, move notification)
    Rarp = 5,         // RARP on an access port (QEMU's announce after a migration)
};

// Worker -> control lcore: a packet the fast path does not handle. The control lcore owns
// the mbuf afterwards and must free or transmit it.
struct PuntMsg {
    rte_mbuf* mbuf = nullptr;
    uint8_t port_index = 0;
    PuntReason reason{};
    uint8_t pad[6] = {};
};
static_assert(std::is_trivially_copyable_v<PuntMsg>);
static_assert(sizeof(PuntMsg) % 4 == 0);

// Control lcore -> worker 0: packets to transmit (ARP/ND requests and replies).
// port_index is carried in mbuf->port.

}  // namespace lm
