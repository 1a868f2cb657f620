// Per-worker miss buffer: packets whose destination missed the locator cache wait here while
// the control lcore resolves the EID, and leave when the answer is applied (or are dropped on
// a negative answer, on timeout, or when the buffer is full). Bounded in total and per EID;
// fixed storage, no allocation; misses are rare, so a linear scan over live entries is enough.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <span>

#include "common/ring_msg.hpp"

namespace lm {

class PendingBuffer {
public:
    static constexpr unsigned kMaxEntries = 64;   // distinct EIDs waiting at once
    // A migrated VM that wakes up answers its whole backlog to one correspondent at once: a few
    // hundred packets for an EID its new AR has not resolved yet (docs/vm-migration.md).
    static constexpr unsigned kMaxPerEid = 512;

    enum class Hold : uint8_t { NewEntry, Added, Full };

    void configure(unsigned total, unsigned per_eid, uint64_t timeout_tsc) {
        total_max_ = total;
        per_eid_ = per_eid < kMaxPerEid ? per_eid : kMaxPerEid;
        timeout_ = timeout_tsc;
    }
    bool enabled() const { return total_max_ != 0; }
    unsigned packets() const { return total_; }

    // Keeps m (received on port `in`) until key is answered. NewEntry: the caller must ask the
    // control lcore (first miss for that key); Added: coalesced with an earlier miss; Full: the
    // caller drops m.
    Hold hold(const EidKey& key, uint8_t in, rte_mbuf* m, uint64_t now) {
        if (total_ >= total_max_) return Hold::Full;
        Entry* free_e = nullptr;
        for (auto& e : entries_) {
            if (e.n && e.key == key) {
                if (e.n >= per_eid_) return Hold::Full;
                e.pkts[e.n] = m;
                e.in[e.n++] = in;
                ++total_;
                return Hold::Added;
            }
            if (!e.n && !free_e) free_e = &e;
        }
        if (!free_e) return Hold::Full;
        free_e->key = key;
        free_e->deadline = now + timeout_;
        free_e->pkts[0] = m;
        free_e->in[0] = in;
        free_e->n = 1;
        ++total_;
        return Hold::NewEntry;
    }

    // Removes the packets waiting for key and calls fn(in, span of mbufs) per input port run.
    template <typename F>
    unsigned release(const EidKey& key, F&& fn) {
        for (auto& e : entries_) {
            if (!e.n || !(e.key == key)) continue;
            const unsigned n = e.n;
            e.n = 0;
            total_ -= n;
            for (unsigned i = 0; i < n;) {  // group consecutive packets of one input port
                unsigned j = i + 1;
                while (j < n && e.in[j] == e.in[i]) ++j;
                fn(e.in[i], std::span<rte_mbuf*>(e.pkts.data() + i, j - i));
                i = j;
            }
            return n;
        }
        return 0;
    }

    // Frees the packets of entries whose deadline passed (or of every entry if all); returns
    // how many packets were freed.
    unsigned expire(uint64_t now, bool all = false) {
        if (!total_) return 0;
        unsigned freed = 0;
        for (auto& e : entries_) {
            if (!e.n || (!all && now < e.deadline)) continue;
            for (unsigned i = 0; i < e.n; ++i) rte_pktmbuf_free(e.pkts[i]);
            freed += e.n;
            total_ -= e.n;
            e.n = 0;
        }
        return freed;
    }

    // Frees the packets waiting for key (negative answer); returns how many.
    unsigned discard(const EidKey& key) {
        return release(key, [](uint8_t, std::span<rte_mbuf*> pk) {
            for (auto* m : pk) rte_pktmbuf_free(m);
        });
    }

    ~PendingBuffer() { expire(0, true); }

private:
    struct Entry {
        EidKey key{};
        uint64_t deadline = 0;
        unsigned n = 0;
        std::array<rte_mbuf*, kMaxPerEid> pkts{};
        std::array<uint8_t, kMaxPerEid> in{};
    };
    std::array<Entry, kMaxEntries> entries_{};
    unsigned total_ = 0, total_max_ = 0, per_eid_ = 8;
    uint64_t timeout_ = 0;
};

}  // namespace lm
