#include "dataplane/worker.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <fmt/format.h>

namespace lm {

Worker::Worker(const DpConfig& cfg, const WorkerParams& p)
    : cfg_(cfg),
      p_(p),
      cache_(fmt::format("lm_cache_{}", p.id), p.cache_entries, p.socket),
      attach_(fmt::format("lm_attach_{}", p.id), p.attachment_entries, p.socket),
      updates_(make_spsc_ring(fmt::format("lm_upd_{}", p.id), sizeof(UpdateMsg), kUpdateRingSize, p.socket)),
      ctrl_tx_(make_spsc_ring(fmt::format("lm_ctx_{}", p.id), sizeof(rte_mbuf*), kTxRingSize, p.socket)),
      path_(cfg, counters_, cache_, attach_, p.pool, PacketPath::Rings{p.miss_ring, p.punt_ring}, p.id) {
    // Held packets leave in chunks within one apply(); each chunk is sent before the next, and
    // the queue gets a few more tries than usual: a release is a one-off burst of up to
    // hold_per_mo packets that must not overtake later traffic nor be dropped for a full stage.
    path_.set_drain([](void* w) { static_cast<Worker*>(w)->flush(kDrainRetries); }, this);
}

void Worker::service_rings() {
    UpdateMsg u[64];
    unsigned n;
    bool applied = false;
    while ((n = rte_ring_dequeue_burst_elem(updates_.get(), u, sizeof(UpdateMsg), 64, nullptr)) > 0) {
        for (unsigned i = 0; i < n; ++i) {
            ready_ = ready_ || u[i].op == UpdateOp::Ready;
            path_.apply(u[i]);
            flush();  // an answer may have released up to pending_per_eid held packets
        }
        applied = true;
    }
    if (applied || path_.pending_packets() || path_.hold_packets()) {
        const uint64_t now = rte_rdtsc();
        path_.expire_pending(now);
        path_.expire_hold(now);
    }

    rte_mbuf* tx[kBurst];
    n = rte_ring_dequeue_burst_elem(ctrl_tx_.get(), tx, sizeof(rte_mbuf*), kBurst, nullptr);
    for (unsigned i = 0; i < n; ++i) {
        uint8_t port = uint8_t(tx[i]->port);
        if (port >= cfg_.nb_ports || !path_.stage(port, tx[i])) {
            counters_.drop(Drop::TxFull);
            rte_pktmbuf_free(tx[i]);
        } else {
            counters_.ctrl_tx.add();
        }
    }
    if (n) flush();
}

void Worker::flush(unsigned retries) {
    for (uint8_t p = 0; p < cfg_.nb_ports; ++p) {
        auto out = path_.staged(p);
        if (out.empty()) continue;
        uint16_t sent = rte_eth_tx_burst(cfg_.ports[p].port_id, uint16_t(p_.id), out.data(), uint16_t(out.size()));
        for (unsigned r = 0; r < retries && sent < out.size(); ++r)
            sent += rte_eth_tx_burst(cfg_.ports[p].port_id, uint16_t(p_.id), out.data() + sent, uint16_t(out.size() - sent));
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < sent; ++i) bytes += rte_pktmbuf_pkt_len(out[i]);
        auto& pc = counters_.ports[p];
        pc.tx_packets.add(sent);
        pc.tx_bytes.add(bytes);
        if (sent < out.size()) {
            counters_.drop(Drop::TxFull, out.size() - sent);
            for (size_t i = sent; i < out.size(); ++i) rte_pktmbuf_free(out[i]);
        }
        path_.clear_staged(p);
    }
}

unsigned Worker::poll_once() {
    unsigned total = 0;
    rte_mbuf* pkts[kBurst];
    for (uint8_t p = 0; p < cfg_.nb_ports; ++p) {
        uint16_t n = rte_eth_rx_burst(cfg_.ports[p].port_id, uint16_t(p_.id), pkts, kBurst);
        if (!n) continue;
        total += n;
        path_.process(p, std::span<rte_mbuf*>(pkts, n));
        flush();
    }
    return total;
}

void Worker::run(const std::atomic<bool>& stop) {
    while (p_.wait_ready && !ready_ && !stop.load(std::memory_order_relaxed)) {
        service_rings();
        if (!ready_) rte_delay_us_sleep(10);
    }
    unsigned idle = 0;
    while (!stop.load(std::memory_order_relaxed)) {
        service_rings();
        if (poll_once()) {
            idle = 0;
            continue;
        }
        // Idle back-off: several routers share 2 cores in tests; on a dedicated core set 0.
        if (p_.idle_backoff_us && ++idle > 16) rte_delay_us_sleep(p_.idle_backoff_us);
    }
}

}  // namespace lm
