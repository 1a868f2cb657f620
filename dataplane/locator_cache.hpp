// The per-worker locator cache and attachment table. Owned and written by one worker only:
// the control lcore never touches them, it sends UpdateMsg over the worker's ring instead.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/ring_msg.hpp"
#include "dataplane/dpdk_env.hpp"

namespace lm {

// EID -> MappingValue. rte_hash gives each key a slot index; values live in a parallel array.
class LocatorCache {
public:
    LocatorCache(const std::string& name, uint32_t entries, int socket);

    // Bulk lookup of up to kMaxBulk keys; out[i] is nullptr on a miss.
    static constexpr unsigned kMaxBulk = RTE_HASH_LOOKUP_BULK_MAX;
    void lookup_bulk(const EidKey** keys, unsigned n, const MappingValue** out) const;
    const MappingValue* lookup(const EidKey& k) const;

    bool upsert(const EidKey& k, const MappingValue& v);  // false when full
    void erase(const EidKey& k);
    uint32_t size() const { return rte_hash_count(hash_.get()); }
    uint32_t capacity() const { return capacity_; }
private:
    // One value per cache line: a lookup costs one line, never two.
    struct alignas(64) Slot {
        MappingValue v;
    };
    struct FreeDeleter {
        void operator()(void* p) const;
    };
    HashPtr hash_;
    std::unique_ptr<Slot[], FreeDeleter> values_;  // rte_zmalloc: hugepages when there are any
    uint32_t capacity_;
};

// (tenant, MO id), 16 bytes so rte_hash uses its inlined 16-byte compare.
struct AttachKey {
    uint32_t tenant;
    uint32_t pad;
    uint64_t mo_id;
    static AttachKey make(TenantId t, MoId m) { return {t, 0, m}; }
};
static_assert(sizeof(AttachKey) == 16);

// What decap needs about an MO attached here, in one 64-byte line (read once per packet).
struct alignas(64) Attachment {
    uint8_t port_index = 0;                    // Deliver: access port
    AttachState state = AttachState::Deliver;
    MacAddr mac;                               // Deliver: the MO's MAC
    Epoch epoch = 0;                           // current epoch here: older senders get a hint
    Epoch fwd_epoch = 0;                       // Forward: epoch written into forwarded packets
    IpAddr fwd_locator;                        // Forward: the MO's new AR
};
static_assert(sizeof(Attachment) == 64);

// (tenant, MO id) -> where the MO sits on this AR and what to do with its packets. Used by decap.
class AttachmentTable {
public:
    AttachmentTable(const std::string& name, uint32_t entries, int socket);
    void lookup_bulk(const AttachKey** keys, unsigned n, const Attachment** out) const;
    const Attachment* lookup(const AttachKey& k) const;
    bool upsert(const AttachKey& k, const Attachment& a);
    void erase(const AttachKey& k);
    uint32_t size() const { return rte_hash_count(hash_.get()); }

private:
    struct FreeDeleter {
        void operator()(void* p) const;
    };
    HashPtr hash_;
    std::unique_ptr<Attachment[], FreeDeleter> values_;
};

}  // namespace lm
