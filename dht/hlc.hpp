// Hybrid logical clock for locator epochs.
//
// epoch = (wall-clock Unix milliseconds << 16) | counter       (48 bits of ms: until year 10889)
//
// next()        returns max(wall_ms << 16, last + 1) and remembers it as `last`.
// observe(e)    raises `last` to e, so that every later next() is > e.
//
// An AR calls observe() for every epoch it learns: each valid record it reads from the DHT or gets
// from a watch (Directory does that itself), the epoch in the LM header of packets it decapsulates,
// refresh hints, the record it checks when an MO attaches. Invariant: an epoch minted by an AR is
// greater than every epoch that AR has seen, and greater than any epoch it minted before, whatever
// its wall clock does (steps back, stalls, or is behind the other ARs' clocks).
//
// Why a migrate-back within milliseconds orders correctly, even with a stale DHT read:
//   MO on AR2 (epoch e1) -> migrates to AR3 -> migrates back to AR2, all within a few ms.
//   * AR3 checks the MO's record when it attaches (it must: MAC and EIDs must match), so it has
//     observed e1 and mints e2 >= e1 + 1, even if its clock is behind AR2's.
//   * AR2 learns e2 before the MO can come back: as the old AR it watches the MO's keys (it must
//     learn the new locator to flush its migrate-begin buffer and install the forwarding pointer),
//     and the packets it forwards/receives from AR3 carry e2 in the LM header. Both observe(e2).
//     When the MO comes back, AR2 mints e3 = max(wall, e2 + 1) > e2 -- the value comes from AR2's
//     clock state, not from the DHT read, so a stale read at that moment (a replica that still
//     returns e1, or nothing) cannot make e3 lower than e2. Readers keep the highest epoch, so
//     every AR converges on AR2/e3, and records carrying e1 or e2 that are replayed or delivered
//     late lose against it.
//   * If AR2 somehow did not hear of e2 (it crashed and restarted, partition), the wall-clock part
//     still orders the two publications as long as the gap between them exceeds the clock skew
//     between AR3 and AR2 (NTP keeps ARs within a few ms; a live migration's stop-and-copy takes
//     longer than that). The counter makes several epochs within one millisecond distinct.
//   * Equal epochs from different ARs (only possible with neither causality nor clock order) are
//     broken deterministically by publisher key id, so all readers still agree.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "common/types.hpp"

namespace lm::dir {

class Hlc {
public:
    using WallMs = std::function<uint64_t()>;  // Unix ms; injectable for tests
    Hlc();
    explicit Hlc(WallMs wall);

    // A fresh epoch, greater than every epoch returned or observed before. Thread-safe.
    Epoch next();
    // Learn an epoch seen elsewhere. Thread-safe.
    void observe(Epoch e);
    // Highest epoch returned or observed so far.
    Epoch last() const { return last_.load(std::memory_order_acquire); }

    static constexpr Epoch from_ms(uint64_t ms) { return Epoch(ms) << 16; }
    static constexpr uint64_t ms_of(Epoch e) { return e >> 16; }
    static constexpr uint16_t counter_of(Epoch e) { return uint16_t(e & 0xFFFF); }

private:
    WallMs wall_;
    std::atomic<Epoch> last_{0};
};

}  // namespace lm::dir
