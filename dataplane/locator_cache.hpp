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
    // Prefetch the value slot of a hit before it is used (l3fwd style).
    void prefetch(const MappingValue* v) const { rte_prefetch0(v); }

private:
    HashPtr hash_;
    std::unique_ptr<MappingValue[]> values_;
    uint32_t capacity_;
};

struct AttachKey {
    uint32_t tenant;
    uint32_t mo_hi;
    uint32_t mo_lo;
    static AttachKey make(TenantId t, MoId m) { return {t, uint32_t(m >> 32), uint32_t(m)}; }
};
static_assert(sizeof(AttachKey) == 12);

struct Attachment {
    uint8_t port_index = 0;
    MacAddr mac;
};

// (tenant, MO id) -> where the MO sits on this AR. Used by decap.
class AttachmentTable {
public:
    AttachmentTable(const std::string& name, uint32_t entries, int socket);
    void lookup_bulk(const AttachKey** keys, unsigned n, const Attachment** out) const;
    const Attachment* lookup(const AttachKey& k) const;
    bool upsert(const AttachKey& k, const Attachment& a);
    void erase(const AttachKey& k);
    uint32_t size() const { return rte_hash_count(hash_.get()); }

private:
    HashPtr hash_;
    std::unique_ptr<Attachment[]> values_;
};

}  // namespace lm
