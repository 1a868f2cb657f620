// FlatTable: the exact-match table behind a worker's locator cache and attachment table.
//
// One worker is its only reader and writer (the control lcore sends it UpdateMsgs instead), so
// it needs no locks, no RCU and no atomics: it is built for the lookup, like VPP's bihash or
// l3fwd's exact-match table, but simpler.
//
//   buckets_  8 slots per 64-byte line: a 16-bit signature and a 32-bit entry index per slot,
//             and an overflow count (below)
//   keys_     Key per entry index
//   vals_     Value per entry index, one cache line each
//
// A lookup reads the key's home bucket, then the key and the value of the slot whose signature
// matches. Both addresses follow from the entry index, so the key and the value are fetched
// together: two dependent memory accesses per lookup where rte_hash plus a value array make
// three (bucket, key store, value). lookup_bulk() runs each step over the whole burst before the
// next one, so the misses of one packet overlap the work on the others.
//
// Collisions: linear probing over buckets. A bucket's overflow count is the number of keys
// whose home is this bucket or an earlier one and which live past it; a lookup stops at the
// first bucket whose count is 0. There are at least twice as many slots as entries, so probes
// are short and any key fits while the entry array has room: exactly `entries` keys always fit.
#pragma once

#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <fmt/format.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

namespace lm {

template <typename Key, typename Value>
class FlatTable {
public:
    static constexpr unsigned kMaxBulk = 64;  // lookup_bulk() takes at most this many keys

    FlatTable(const std::string& name, uint32_t entries, int socket)
        : capacity_(entries ? entries : 1), nbuckets_(bucket_count(capacity_)), mask_(nbuckets_ - 1),
          buckets_(alloc<Bucket>(name + "_b", nbuckets_, socket)),
          keys_(alloc<Key>(name + "_k", capacity_, socket)),
          vals_(alloc<Slot>(name + "_v", capacity_, socket)),
          free_(alloc<uint32_t>(name + "_f", capacity_, socket)) {
        // Entry indices are handed out from the top of the free stack: 0 first.
        for (uint32_t i = 0; i < capacity_; ++i) free_[i] = capacity_ - 1 - i;
        nfree_ = capacity_;
    }

    // out[i] = the value of *keys[i], or nullptr. n <= kMaxBulk.
    void lookup_bulk(const Key** keys, unsigned n, const Value** out) const {
        uint32_t h[kMaxBulk];
        uint32_t cand[kMaxBulk];
        for (unsigned i = 0; i < n; ++i) {
            h[i] = hash(*keys[i]);
            rte_prefetch0(&buckets_[h[i] & mask_]);
        }
        // First signature match in the home bucket: nearly always the key, when there is one.
        for (unsigned i = 0; i < n; ++i) {
            const Bucket& b = buckets_[h[i] & mask_];
            const unsigned m = b.match(sig_of(h[i]));
            cand[i] = m ? b.idx[std::countr_zero(m)] : kNone;
            if (m) {
                rte_prefetch0(&keys_[cand[i]]);
                rte_prefetch0(&vals_[cand[i]]);
            }
        }
        for (unsigned i = 0; i < n; ++i) {
            if (cand[i] != kNone && same(keys_[cand[i]], *keys[i])) [[likely]]
                out[i] = &vals_[cand[i]].v;
            else  // a miss, a signature collision or a key living past its home bucket
                out[i] = find(*keys[i], h[i]);
        }
    }

    const Value* lookup(const Key& k) const { return find(k, hash(k)); }
    Value* lookup_mut(const Key& k) { return const_cast<Value*>(find(k, hash(k))); }  // the owner may edit in place

    // Inserts or replaces. False when the table holds `entries` keys already.
    bool upsert(const Key& k, const Value& v) {
        const uint32_t h = hash(k);
        uint32_t bi, s;
        if (locate(k, h, bi, s)) {
            vals_[buckets_[bi].idx[s]].v = v;
            return true;
        }
        if (nfree_ == 0) return false;
        // The first free slot from the home bucket on; every bucket passed counts one more key
        // living past it. One exists: there are at least twice as many slots as entries.
        const uint32_t home = h & mask_;
        bi = home;
        int slot;
        while ((slot = buckets_[bi].free_slot()) < 0) bi = (bi + 1) & mask_;
        for (uint32_t j = home; j != bi; j = (j + 1) & mask_) ++buckets_[j].overflow;
        const uint32_t idx = free_[--nfree_];
        keys_[idx] = k;
        vals_[idx].v = v;
        buckets_[bi].sig[slot] = sig_of(h);
        buckets_[bi].idx[slot] = idx;
        return true;
    }

    void erase(const Key& k) {
        const uint32_t h = hash(k);
        uint32_t bi, s;
        if (!locate(k, h, bi, s)) return;
        for (uint32_t j = h & mask_; j != bi; j = (j + 1) & mask_) --buckets_[j].overflow;
        free_[nfree_++] = buckets_[bi].idx[s];
        buckets_[bi].sig[s] = 0;
    }

    uint32_t size() const { return capacity_ - nfree_; }
    uint32_t capacity() const { return capacity_; }

private:
    static constexpr uint32_t kNone = UINT32_MAX;

    struct alignas(64) Bucket {
        uint16_t sig[8];     // 0: empty slot
        uint32_t idx[8];     // entry index of each used slot
        uint32_t overflow;   // keys homed here or earlier that live in a later bucket

        // Bit i set: slot i holds signature s.
        unsigned match(uint16_t s) const {
#if defined(__SSE2__)
            const __m128i eq = _mm_cmpeq_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(sig)), _mm_set1_epi16(int16_t(s)));
            const unsigned bytes = unsigned(_mm_movemask_epi8(eq));  // two bits per slot
            return unsigned(one_bit_per_lane(bytes));
#else
            unsigned m = 0;
            for (unsigned i = 0; i < 8; ++i) m |= unsigned(sig[i] == s) << i;
            return m;
#endif
        }
        int free_slot() const {
            for (int i = 0; i < 8; ++i)
                if (!sig[i]) return i;
            return -1;
        }
#if defined(__SSE2__)
        // Keeps every other bit (the low bit of each 16-bit lane): 8 bits, one per slot.
        static unsigned one_bit_per_lane(unsigned x) {
            x &= 0x5555;
            x = (x | (x >> 1)) & 0x3333;
            x = (x | (x >> 2)) & 0x0F0F;
            x = (x | (x >> 4)) & 0x00FF;
            return x;
        }
#endif
    };
    static_assert(sizeof(Bucket) == 64);

    // The value in a line of its own: reading it costs one line, never two.
    struct alignas(64) Slot {
        Value v;
    };

    struct FreeDeleter {
        void operator()(void* p) const { rte_free(p); }
    };
    template <typename T>
    using Array = std::unique_ptr<T[], FreeDeleter>;

    template <typename T>
    static Array<T> alloc(const std::string& name, uint32_t n, int socket) {
        void* p = rte_zmalloc_socket(name.c_str(), sizeof(T) * size_t(n), alignof(T) < 64 ? 64 : alignof(T), socket);
        if (!p) throw std::runtime_error(fmt::format("cannot allocate '{}' ({} x {} bytes)", name, n, sizeof(T)));
        return Array<T>(new (p) T[n]);  // trivially destructible: freed with rte_free
    }

    // A power of two, with at least two slots per entry (8 slots a bucket).
    static uint32_t bucket_count(uint32_t entries) {
        const uint64_t want = (uint64_t(entries) * 2 + 7) / 8;
        return uint32_t(std::bit_ceil(want < 2 ? uint64_t(2) : want));
    }

    static uint32_t hash(const Key& k) { return rte_hash_crc(&k, sizeof(Key), 0); }
    // Signature from the bits the home index does not use first (never 0: 0 marks a free slot).
    static uint16_t sig_of(uint32_t h) { return uint16_t((h >> 16) | 1); }
    static bool same(const Key& a, const Key& b) { return std::memcmp(&a, &b, sizeof(Key)) == 0; }

    bool locate(const Key& k, uint32_t h, uint32_t& bi, uint32_t& s) const {
        const uint16_t sg = sig_of(h);
        bi = h & mask_;
        for (;;) {
            const Bucket& b = buckets_[bi];
            for (unsigned m = b.match(sg); m; m &= m - 1) {
                s = unsigned(std::countr_zero(m));
                if (same(keys_[b.idx[s]], k)) return true;
            }
            if (!b.overflow) return false;
            bi = (bi + 1) & mask_;
        }
    }

    const Value* find(const Key& k, uint32_t h) const {
        uint32_t bi, s;
        return locate(k, h, bi, s) ? &vals_[buckets_[bi].idx[s]].v : nullptr;
    }

    uint32_t capacity_;
    uint32_t nbuckets_;
    uint32_t mask_;
    Array<Bucket> buckets_;
    Array<Key> keys_;
    Array<Slot> vals_;
    Array<uint32_t> free_;  // stack of free entry indices
    uint32_t nfree_ = 0;
};

}  // namespace lm
