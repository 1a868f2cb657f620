// RSA 2048 vs 4096: cost of signing and verifying an LM record (OpenDHT crypto = GnuTLS).
// Prints a table; the numbers back the key-size choice in dht/trust.hpp and dht/pki.hpp.
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
    double keygen_ms, sign_us, verify_us, verify_record_first_us, verify_record_cached_us;
    size_t sig_bytes, value_bytes;
};

Cost measure(const ::dht::crypto::Identity& ca, unsigned bits, int n_sign, int n_verify) {
    Cost c{};
    auto t0 = Clock::now();
    auto id = issue_ar_identity(ca, "ar-bench", bits);
    c.keygen_ms = us_since(t0, 1) / 1000.0;
    Signer s(id);
    auto rec = sample_record();
    rec.publisher = "ar-bench";
    const Blob in = signing_input(encode_record(rec));

    Blob sig;
    t0 = Clock::now();
    for (int i = 0; i < n_sign; ++i) sig = id.first->sign(in);
    c.sign_us = us_since(t0, n_sign);
    c.sig_bytes = sig.size();

    auto pk = id.first->getSharedPublicKey();
    bool ok = true;
    t0 = Clock::now();
    for (int i = 0; i < n_verify; ++i) ok = ok && pk->checkSignature(in.data(), in.size(), sig.data(), sig.size());
    c.verify_us = us_since(t0, n_verify);
    REQUIRE(ok);

    // Whole-record verification as a reader does it: envelope decode, certificate chain check
    // (first time only, then cached), signature. Distinct values so the value cache cannot help.
    Verifier v(ca.second);
    const uint64_t now = unix_ms_now();
    std::vector<Blob> values;
    for (int i = 0; i < n_verify; ++i) {
        auto r = rec;
        r.mo = MoId(i + 1);
        values.push_back(encode_envelope(s.sign(r)));
    }
    c.value_bytes = values[0].size();
    Verified out;
    t0 = Clock::now();
    REQUIRE(v.verify(values[0], out, now) == Verdict::Ok);
    c.verify_record_first_us = us_since(t0, 1);
    t0 = Clock::now();
    for (int i = 1; i < n_verify; ++i) ok = ok && v.verify(values[size_t(i)], out, now) == Verdict::Ok;
    c.verify_record_cached_us = us_since(t0, n_verify - 1);
    REQUIRE(ok);
    return c;
}

}  // namespace

TEST_CASE("RSA 2048 vs 4096: sign and verify cost of an LM record", "[dht][crypto]") {
    const auto& k = pki();
    auto c2 = measure(k.ca, 2048, 50, 400);
    auto c4 = measure(k.ca, 4096, 12, 200);
    std::printf("\n  LM record signing cost (OpenDHT crypto / GnuTLS, this machine, 1 thread)\n");
    std::printf("  %-9s %11s %10s %11s %19s %19s %9s %11s\n", "RSA bits", "keygen ms", "sign us", "verify us",
                "rec verify 1st us", "rec verify next us", "sig B", "value B");
    for (auto [bits, c] : {std::pair{2048, c2}, std::pair{4096, c4}})
        std::printf("  %-9d %11.1f %10.1f %11.1f %19.1f %19.1f %9zu %11zu\n", bits, c.keygen_ms, c.sign_us,
                    c.verify_us, c.verify_record_first_us, c.verify_record_cached_us, c.sig_bytes, c.value_bytes);
    std::printf("  4096/2048: sign x%.1f, verify x%.1f\n\n", c4.sign_us / c2.sign_us, c4.verify_us / c2.verify_us);
    // The choice: 2048-bit keys. 4096 costs several times more on both paths for no need of ours.
    CHECK(c2.sign_us < c4.sign_us);
    CHECK(c2.verify_us < c4.verify_us);
    CHECK(c2.sig_bytes == 256);
    CHECK(c4.sig_bytes == 512);
}
