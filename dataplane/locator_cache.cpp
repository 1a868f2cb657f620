#include "dataplane/locator_cache.hpp"

#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <fmt/format.h>
#include <stdexcept>

namespace lm {

static HashPtr make_hash(const std::string& name, uint32_t entries, uint32_t key_len, int socket) {
    rte_hash_parameters p{};
    p.name = name.c_str();
    p.entries = entries;
    p.key_len = key_len;
    p.hash_func = rte_hash_crc;
    p.hash_func_init_val = 0;
    p.socket_id = socket;
    // No RW-concurrency flags: one worker is the only reader and writer. The extendable bucket
    // table guarantees that `entries` keys always fit, whatever their hash distribution.
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    auto* h = rte_hash_create(&p);
    if (!h) throw std::runtime_error(fmt::format("cannot create hash '{}' ({} entries): {}", name, entries, rte_strerror(rte_errno)));
    return HashPtr(h);
}

template <typename T>
static T* alloc_array(const std::string& name, uint32_t n, int socket) {
    void* p = rte_zmalloc_socket(name.c_str(), sizeof(T) * n, alignof(T) < 64 ? 64 : alignof(T), socket);
    if (!p) throw std::runtime_error(fmt::format("cannot allocate '{}' ({} entries)", name, n));
    return new (p) T[n];  // placement: trivially destructible, freed with rte_free
}

void LocatorCache::FreeDeleter::operator()(void* p) const { rte_free(p); }
void AttachmentTable::FreeDeleter::operator()(void* p) const { rte_free(p); }

LocatorCache::LocatorCache(const std::string& name, uint32_t entries, int socket)
    : hash_(make_hash(name, entries, sizeof(EidKey), socket)),
      values_(alloc_array<Slot>(name + "_v", entries + 1, socket)),
      capacity_(entries) {}

void LocatorCache::lookup_bulk(const EidKey** keys, unsigned n, const MappingValue** out) const {
    int32_t pos[kMaxBulk];
    rte_hash_lookup_bulk(hash_.get(), reinterpret_cast<const void**>(keys), n, pos);
    for (unsigned i = 0; i < n; ++i) out[i] = pos[i] >= 0 ? &values_[pos[i]].v : nullptr;
}

const MappingValue* LocatorCache::lookup(const EidKey& k) const {
    int32_t pos = rte_hash_lookup(hash_.get(), &k);
    return pos >= 0 ? &values_[pos].v : nullptr;
}

bool LocatorCache::upsert(const EidKey& k, const MappingValue& v) {
    int32_t pos = rte_hash_add_key(hash_.get(), &k);
    if (pos < 0) return false;
    values_[pos].v = v;
    return true;
}

void LocatorCache::erase(const EidKey& k) { rte_hash_del_key(hash_.get(), &k); }

AttachmentTable::AttachmentTable(const std::string& name, uint32_t entries, int socket)
    : hash_(make_hash(name, entries, sizeof(AttachKey), socket)), values_(alloc_array<Attachment>(name + "_v", entries + 1, socket)) {}

void AttachmentTable::lookup_bulk(const AttachKey** keys, unsigned n, const Attachment** out) const {
    int32_t pos[RTE_HASH_LOOKUP_BULK_MAX];
    rte_hash_lookup_bulk(hash_.get(), reinterpret_cast<const void**>(keys), n, pos);
    for (unsigned i = 0; i < n; ++i) out[i] = pos[i] >= 0 ? &values_[pos[i]] : nullptr;
}

const Attachment* AttachmentTable::lookup(const AttachKey& k) const {
    int32_t pos = rte_hash_lookup(hash_.get(), &k);
    return pos >= 0 ? &values_[pos] : nullptr;
}

bool AttachmentTable::upsert(const AttachKey& k, const Attachment& a) {
    int32_t pos = rte_hash_add_key(hash_.get(), &k);
    if (pos < 0) return false;
    values_[pos] = a;
    return true;
}

void AttachmentTable::erase(const AttachKey& k) { rte_hash_del_key(hash_.get(), &k); }

}  // namespace lm
