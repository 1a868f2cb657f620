// Shared test material for the dht suite: one domain CA and AR identities (Ed25519, generated
// once per process), a rogue CA, and small helpers.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include "dht/pki.hpp"
#include "dht/record.hpp"
#include "dht/trust.hpp"

namespace lm::dir::test {

struct Pki {
    ::dht::crypto::Identity ca;
    ::dht::crypto::Identity ar1, ar2, ar3, ar4;
    ::dht::crypto::Identity rogue_ca;
    ::dht::crypto::Identity rogue_ar2;        // CN "ar2", issued by the rogue CA
    ::dht::crypto::Identity self_signed_ar2;  // CN "ar2", self-signed
};

inline const Pki& pki() {
    static const Pki p = [] {
        Pki k;
        k.ca = create_domain_ca("lm-test-domain-ca");
        k.ar1 = issue_ar_identity(k.ca, "ar1");
        k.ar2 = issue_ar_identity(k.ca, "ar2");
        k.ar3 = issue_ar_identity(k.ca, "ar3");
        k.ar4 = issue_ar_identity(k.ca, "ar4");
        k.rogue_ca = create_domain_ca("rogue-ca");
        k.rogue_ar2 = issue_ar_identity(k.rogue_ca, "ar2");
        k.self_signed_ar2 = ::dht::crypto::generateIdentity("ar2", {}, 2048, false);
        return k;
    }();
    return p;
}

inline IpAddr ip(const char* s) { return *IpAddr::parse(s); }
inline MacAddr mac(const char* s) { return *MacAddr::parse(s); }

inline Record sample_record(MoId mo = 0x1234) {
    Record r;
    r.mo = mo;
    r.tenant = 7;
    r.eids = {ip("192.0.2.10"), ip("2001:db8::10")};
    r.mac = mac("02:00:00:00:00:0a");
    r.loc4 = ip("198.51.100.1");
    r.loc6 = ip("2001:db8:100::1");
    r.epoch = 0x0001'0000'0000'0001ULL;
    r.publisher = "ar1";
    r.expiry_ms = unix_ms_now() + 600'000;
    return r;
}

// Polls `cond` until true or the deadline passes.
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds step = std::chrono::milliseconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (cond()) return true;
        std::this_thread::sleep_for(step);
    }
    return cond();
}

}  // namespace lm::dir::test
