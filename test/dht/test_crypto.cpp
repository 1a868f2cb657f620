// Ed25519 vs RSA 2048 vs RSA 4096: cost of signing and verifying an LM record (GnuTLS), and the
// size of a record with its certificate. Prints a table; the numbers back the key-type choice in
// dht/trust.hpp and dht/pki.hpp. Both kinds of identity must sign records every reader accepts.
#include <chrono>
#include <cstdio>

#include "catch.hpp"
#include "dht/pki.hpp"
#include "dht/record.hpp"
#include "dht/trust.hpp"
#include "dht_fixtures.hpp"

using namespace lm;
using namespace lm::dir;
using namespace lm::dir::test;

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0, int n) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
}

struct Cost {
    double keygen_ms, sign_us, verify_first_us, verify_us;
    size_t sig_bytes, cert_bytes, value_bytes;
};

// Signs n_sign records, then verifies n_verify distinct ones (so the value cache cannot help) as
// a reader does: envelope decode, certificate chain check (first value only, then cached),
// signature.
Cost measure(const ::dht::crypto::Identity& ca, KeyType type, int n_sign, int n_verify) {
    Cost c{};
    auto t0 = Clock::now();
    auto id = issue_ar_identity(ca, "ar-bench", type);
    c.keygen_ms = us_since(t0, 1) / 1000.0;
    REQUIRE(key_type_of(*id.first));
    CHECK(key_type_of(*id.first)->str() == type.str());
    Signer s(id);
    auto rec = sample_record();

    std::vector<Blob> values;
    t0 = Clock::now();
    for (int i = 0; i < n_sign; ++i) {
        auto r = rec;
        r.mo = MoId(i + 1);
        values.push_back(encode_envelope(s.sign(r)));
    }
    c.sign_us = us_since(t0, n_sign);
    for (int i = n_sign; i < n_verify; ++i) {
        auto r = rec;
        r.mo = MoId(i + 1);
        values.push_back(encode_envelope(s.sign(r)));
    }
    const auto env = decode_envelope(values[0].data(), values[0].size());
    REQUIRE(env);
    c.sig_bytes = env->sig.size();
    c.cert_bytes = env->cert.size();
    c.value_bytes = values[0].size();

    Verifier v(ca.second);
    const uint64_t now = unix_ms_now();
    Verified out;
    t0 = Clock::now();
    REQUIRE(v.verify(values[0], out, now) == Verdict::Ok);
    c.verify_first_us = us_since(t0, 1);
    bool ok = true;
    t0 = Clock::now();
    for (int i = 1; i < n_verify; ++i) ok = ok && v.verify(values[size_t(i)], out, now) == Verdict::Ok;
    c.verify_us = us_since(t0, n_verify - 1);
    REQUIRE(ok);
    // One flipped bit of the signature: rejected, whatever the algorithm.
    auto bad = *env;
    bad.sig[bad.sig.size() / 2] ^= 0x10;
    CHECK(v.verify(encode_envelope(bad), out, now) == Verdict::BadSignature);
    return c;
}

}  // namespace

TEST_CASE("Ed25519 vs RSA 2048/4096: sign and verify cost and size of an LM record", "[dht][crypto]") {
    const auto& k = pki();
    const auto ed = measure(k.ca, KeyType::ed25519(), 200, 400);
    const auto r2 = measure(k.ca, KeyType::rsa(2048), 50, 400);
    const auto r4 = measure(k.ca, KeyType::rsa(4096), 12, 200);
    std::printf("\n  LM record signing cost (GnuTLS, this machine, 1 thread; CA: %s)\n",
                key_type_of(*k.ca.first)->str().c_str());
    std::printf("  %-9s %10s %9s %17s %13s %6s %7s %8s\n", "key", "keygen ms", "sign us", "verify 1st us",
                "verify us", "sig B", "cert B", "value B");
    for (auto [name, c] : {std::pair{"ed25519", ed}, std::pair{"rsa2048", r2}, std::pair{"rsa4096", r4}})
        std::printf("  %-9s %10.1f %9.1f %17.1f %13.1f %6zu %7zu %8zu\n", name, c.keygen_ms, c.sign_us,
                    c.verify_first_us, c.verify_us, c.sig_bytes, c.cert_bytes, c.value_bytes);
    std::printf("  rsa2048/ed25519: sign x%.1f, verify x%.2f, value x%.2f\n\n", r2.sign_us / ed.sign_us,
                r2.verify_us / ed.verify_us, double(r2.value_bytes) / double(ed.value_bytes));
    // The choice (trust.hpp): Ed25519 signs far faster and makes smaller values; RSA verifies
    // faster, but a value is verified once per reader, then cached.
    CHECK(ed.sign_us < r2.sign_us);
    CHECK(r2.sign_us < r4.sign_us);
    CHECK(ed.value_bytes < r2.value_bytes);
    CHECK(ed.sig_bytes == 64);
    CHECK(r2.sig_bytes == 256);
    CHECK(r4.sig_bytes == 512);
}
