#include "dht/hlc.hpp"

#include "dht/record.hpp"

namespace lm::dir {

Hlc::Hlc() : wall_(unix_ms_now) {}
Hlc::Hlc(WallMs wall) : wall_(std::move(wall)) {}

Epoch Hlc::next() {
    const Epoch wall = from_ms(wall_());
    Epoch cur = last_.load(std::memory_order_acquire);
    for (;;) {
        const Epoch want = wall > cur ? wall : cur + 1;
        if (last_.compare_exchange_weak(cur, want, std::memory_order_acq_rel)) return want;
    }
}

void Hlc::observe(Epoch e) {
    Epoch cur = last_.load(std::memory_order_acquire);
    while (e > cur && !last_.compare_exchange_weak(cur, e, std::memory_order_acq_rel)) {
    }
}

}  // namespace lm::dir
