// Per-worker handover hold buffer: packets for an MO in the Hold state (migrate-begin: its NIC is
// about to vanish) wait here under the MO's AttachKey until the control lcore moves the MO to
// Deliver or Forward (or detaches it); then they go through the packet path again, in arrival
// order. 10k pps for a 100 ms stop-and-copy is 1000+ packets for one MO, so unlike the miss
// buffer (PendingBuffer: 64 x 64, linear scan) this one is sized by the config and O(1):
//   - packet slots: one array of `total` slots, a free list and a FIFO per MO, linked by index;
//   - MO entries: a pool with a free list, found through an open-addressing index (linear
//     probing, backward-shift deletion) and chained in a live list for expiry.
// Everything is allocated once in configure(), before the worker starts; hold/release/expire
// never allocate.
#pragma once

#include <rte_mbuf.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>

#include "dataplane/locator_cache.hpp"

namespace lm {

class HoldBuffer {
public:
    static constexpr unsigned kMaxEntries = 4096;  // MOs held at once (bounded by `total` too)
    static constexpr unsigned kChunk = 32;         // released packets per callback (one burst)

    void configure(unsigned total, unsigned per_mo, uint64_t timeout_tsc) {
        free_all();
        total_max_ = total;
        per_mo_ = std::max(per_mo, 1u);
        timeout_ = timeout_tsc;
        if (!total) return;
        slots_.reset(new Slot[total]);
        for (unsigned i = 0; i < total; ++i) slots_[i].next = i + 1 < total ? i + 1 : kNil;
        free_slot_ = 0;
        const unsigned ne = std::min(total, kMaxEntries);
        entries_.reset(new Entry[ne]);
        for (unsigned i = 0; i < ne; ++i) entries_[i].next_live = i + 1 < ne ? i + 1 : kNil;
        free_entry_ = 0;
        index_bits_ = 1;
        while ((1u << index_bits_) < 2 * ne) ++index_bits_;
        index_.reset(new uint32_t[1u << index_bits_]);
        std::fill_n(index_.get(), 1u << index_bits_, kNil);
        live_ = kNil;
    }
    bool enabled() const { return total_max_ != 0; }
    unsigned packets() const { return total_; }
    unsigned held(const AttachKey& k) const {
        const uint32_t e = find(k);
        return e == kNil ? 0 : entries_[e].n;
    }

    // Appends m (received on port `in`) to k's FIFO. False when full (in total, for this MO, or
    // no free MO entry): the caller drops m.
    bool hold(const AttachKey& k, uint8_t in, rte_mbuf* m, uint64_t now) {
        if (total_ >= total_max_) return false;
        uint32_t e = find(k);
        if (e == kNil) {
            if (free_entry_ == kNil) return false;
            e = free_entry_;
            free_entry_ = entries_[e].next_live;
            Entry& en = entries_[e];
            en.key = k;
            en.head = en.tail = kNil;
            en.n = 0;
            insert_index(e);
            en.prev_live = kNil;
            en.next_live = live_;
            if (live_ != kNil) entries_[live_].prev_live = e;
            live_ = e;
        }
        Entry& en = entries_[e];
        if (en.n >= per_mo_) return false;  // an entry is never left empty: it holds >= 1 here
        const uint32_t s = free_slot_;
        free_slot_ = slots_[s].next;
        slots_[s] = Slot{m, now + timeout_, kNil, in};
        if (en.tail == kNil) en.head = s;
        else slots_[en.tail].next = s;
        en.tail = s;
        ++en.n;
        ++total_;
        return true;
    }

    // Removes k's packets and calls fn(in, span) for runs of consecutive packets from one input
    // port, at most kChunk per call, in arrival order. fn may hold packets again (under any key):
    // the entry and every slot already handed out are free before fn runs. Returns the count.
    template <typename F>
    unsigned release(const AttachKey& k, F&& fn) {
        if (!total_) return 0;
        const uint32_t e = find(k);
        if (e == kNil) return 0;
        uint32_t s = entries_[e].head;
        const unsigned n = entries_[e].n;
        remove_entry(e);
        rte_mbuf* batch[kChunk];
        while (s != kNil) {
            const uint8_t in = slots_[s].in;
            unsigned b = 0;
            while (s != kNil && b < kChunk && slots_[s].in == in) {
                batch[b++] = slots_[s].m;
                s = free_slot(s);
            }
            fn(in, std::span<rte_mbuf*>(batch, b));
        }
        return n;
    }

    // Frees packets held past their deadline (every packet if all); returns how many.
    unsigned expire(uint64_t now, bool all = false) {
        if (!total_) return 0;
        unsigned freed = 0;
        for (uint32_t e = live_; e != kNil;) {
            Entry& en = entries_[e];
            const uint32_t next = en.next_live;
            while (en.head != kNil && (all || now >= slots_[en.head].deadline)) {  // FIFO: oldest first
                rte_pktmbuf_free(slots_[en.head].m);
                en.head = free_slot(en.head);
                --en.n;
                ++freed;
            }
            if (en.head == kNil) remove_entry(e);
            e = next;
        }
        return freed;
    }

    HoldBuffer() = default;
    HoldBuffer(const HoldBuffer&) = delete;
    HoldBuffer& operator=(const HoldBuffer&) = delete;
    ~HoldBuffer() { free_all(); }

private:
    static constexpr uint32_t kNil = UINT32_MAX;
    struct Slot {
        rte_mbuf* m;
        uint64_t deadline;  // TSC
        uint32_t next;      // next slot of the MO's FIFO, or of the free list
        uint8_t in;         // input port index
    };
    struct Entry {
        AttachKey key;
        uint32_t head, tail, n;
        uint32_t prev_live, next_live;  // live list; next_live doubles as the free-list link
    };

    void free_all() {
        if (total_) expire(0, true);
    }
    // Returns the slot after s in its chain and puts s on the free list.
    uint32_t free_slot(uint32_t s) {
        const uint32_t next = slots_[s].next;
        slots_[s].next = free_slot_;
        free_slot_ = s;
        --total_;
        return next;
    }
    uint32_t home(const AttachKey& k) const {
        const uint64_t h = (k.mo_id ^ uint64_t(k.tenant) << 40) * 0x9E3779B97F4A7C15ull;
        return uint32_t(h >> (64 - index_bits_));
    }
    uint32_t find(const AttachKey& k) const {
        if (!index_) return kNil;
        const uint32_t mask = (1u << index_bits_) - 1;
        for (uint32_t i = home(k);; i = (i + 1) & mask) {
            const uint32_t e = index_[i];
            if (e == kNil) return kNil;
            if (entries_[e].key.mo_id == k.mo_id && entries_[e].key.tenant == k.tenant) return e;
        }
    }
    void insert_index(uint32_t e) {  // the index is at least twice as large as the entry pool
        const uint32_t mask = (1u << index_bits_) - 1;
        uint32_t i = home(entries_[e].key);
        while (index_[i] != kNil) i = (i + 1) & mask;
        index_[i] = e;
    }
    // Unlinks e from the index (backward shift keeps every probe chain unbroken) and the live
    // list, and returns it to the entry free list.
    void remove_entry(uint32_t e) {
        const uint32_t mask = (1u << index_bits_) - 1;
        uint32_t i = home(entries_[e].key);
        while (index_[i] != e) i = (i + 1) & mask;
        for (uint32_t j = (i + 1) & mask; index_[j] != kNil; j = (j + 1) & mask) {
            const uint32_t h = home(entries_[index_[j]].key);
            // Move index_[j] into the hole at i unless its home lies cyclically in (i, j].
            if (((j - h) & mask) >= ((j - i) & mask)) {
                index_[i] = index_[j];
                i = j;
            }
        }
        index_[i] = kNil;
        Entry& en = entries_[e];
        if (en.prev_live != kNil) entries_[en.prev_live].next_live = en.next_live;
        else live_ = en.next_live;
        if (en.next_live != kNil) entries_[en.next_live].prev_live = en.prev_live;
        en.next_live = free_entry_;
        free_entry_ = e;
    }

    std::unique_ptr<Slot[]> slots_;
    std::unique_ptr<Entry[]> entries_;
    std::unique_ptr<uint32_t[]> index_;
    uint32_t free_slot_ = kNil, free_entry_ = kNil, live_ = kNil;
    unsigned index_bits_ = 1;
    unsigned total_ = 0, total_max_ = 0, per_mo_ = 0;
    uint64_t timeout_ = 0;
};

}  // namespace lm
