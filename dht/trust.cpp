#include "dht/trust.hpp"

#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include <chrono>
#include <stdexcept>

namespace lm::dir {

namespace {

constexpr size_t kMaxCachedCerts = 4096;
constexpr size_t kMaxSeenValues = 65536;

uint64_t to_unix_ms(std::chrono::system_clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    return ms < 0 ? 0 : uint64_t(ms);
}

// The one signature scheme per key algorithm that records use (docs/protocol.md, section 10):
// Ed25519 (RFC 8032, pure), or RSA PKCS#1 v1.5 over SHA-512 -- what OpenDHT's PrivateKey::sign()
// made, so records signed by RSA identities of earlier versions still verify. Anything else
// (other curves, DSA, RSA below 2048 bits) is not an LM key: kUnsupported.
constexpr gnutls_sign_algorithm_t kUnsupported = GNUTLS_SIGN_UNKNOWN;

struct GnutlsBuffer {  // frees what GnuTLS allocated, also when copying it out throws
    gnutls_datum_t d{};
    ~GnutlsBuffer() { gnutls_free(d.data); }
    Blob blob() const { return Blob(d.data, d.data + d.size); }
};
gnutls_sign_algorithm_t record_signature(int pk_algo, unsigned bits) {
    if (pk_algo == GNUTLS_PK_EDDSA_ED25519) return GNUTLS_SIGN_EDDSA_ED25519;
    if (pk_algo == GNUTLS_PK_RSA && bits >= 2048) return GNUTLS_SIGN_RSA_SHA512;
    return kUnsupported;
}

}  // namespace

const char* to_string(Verdict v) {
    switch (v) {
        case Verdict::Ok: return "ok";
        case Verdict::Malformed: return "malformed";
        case Verdict::Unsigned: return "unsigned";
        case Verdict::UntrustedSigner: return "untrusted-signer";
        case Verdict::BadSignature: return "bad-signature";
        case Verdict::NameMismatch: return "name-mismatch";
        case Verdict::Expired: return "expired";
        case Verdict::Stale: return "stale";
    }
    return "?";
}

bool newer_than(const Verified& a, const Verified& b) {
    if (a.rec.epoch != b.rec.epoch) return a.rec.epoch > b.rec.epoch;
    if (a.signer != b.signer) return b.signer < a.signer;
    if (a.rec.expiry_ms != b.rec.expiry_ms) return a.rec.expiry_ms > b.rec.expiry_ms;  // a refresh
    return b.rec_digest < a.rec_digest;
}

Blob leaf_certificate_der(const ::dht::crypto::Certificate& cert) {
    // The leaf alone, as DER. (Certificate::getPacked() is PEM plus the issuer chain: until
    // this version values carried the PEM text, ~35% bigger; readers still accept it.)
    if (!cert.cert) throw std::invalid_argument("lm dht: no certificate");
    GnutlsBuffer out;
    if (int rc = gnutls_x509_crt_export2(cert.cert, GNUTLS_X509_FMT_DER, &out.d); rc != GNUTLS_E_SUCCESS)
        throw std::runtime_error(std::string("lm dht: cannot export the certificate: ") + gnutls_strerror(rc));
    return out.blob();
}

// ---- Signer ---------------------------------------------------------------------------------

Signer::Signer(::dht::crypto::Identity id) : id_(std::move(id)) {
    if (!id_.first || !id_.second || !*id_.first || !*id_.second)
        throw std::invalid_argument("lm dht: signer needs a private key and a certificate");
    unsigned bits = 0;
    const int pk = gnutls_privkey_get_pk_algorithm(id_.first->key, &bits);
    algo_ = record_signature(pk, bits);
    if (algo_ == kUnsupported)
        throw std::invalid_argument("lm dht: an AR key must be Ed25519 or RSA of at least 2048 bits");
    cert_der_ = leaf_certificate_der(*id_.second);
    name_ = id_.second->getName();
    key_id_ = id_.second->getId();
}

Envelope Signer::sign(Record r) const {
    r.publisher = name_;
    Envelope e;
    e.rec = encode_record(r);
    const Blob in = signing_input(e.rec);
    const gnutls_datum_t dat{const_cast<uint8_t*>(in.data()), unsigned(in.size())};
    GnutlsBuffer sig;
    if (int rc = gnutls_privkey_sign_data2(id_.first->key, gnutls_sign_algorithm_t(algo_), 0, &dat, &sig.d);
        rc != GNUTLS_E_SUCCESS)
        throw std::runtime_error(std::string("lm dht: signing failed: ") + gnutls_strerror(rc));
    e.sig = sig.blob();
    e.cert = cert_der_;
    return e;
}

// ---- Verifier -------------------------------------------------------------------------------

Verifier::Verifier(std::shared_ptr<::dht::crypto::Certificate> ca, uint64_t clock_skew_ms)
    : ca_(std::move(ca)), skew_ms_(clock_skew_ms) {
    if (!ca_ || !*ca_) throw std::invalid_argument("lm dht: verifier needs the domain CA certificate");
    trust_.add(*ca_);
}

std::shared_ptr<const Verifier::CertInfo> Verifier::cert_info(const Blob& der) const {
    std::string k(der.begin(), der.end());
    {
        std::lock_guard lk(mu_);
        if (auto it = certs_.find(k); it != certs_.end()) return it->second;
    }
    auto info = std::make_shared<CertInfo>();
    try {
        ::dht::crypto::Certificate cert(der);
        if (cert && !cert.issuer) {  // exactly one (leaf) certificate
            ::dht::crypto::TrustList::VerifyResult res;
            {
                std::lock_guard lk(mu_);
                res = trust_.verify(cert);
            }
            info->key = std::make_shared<::dht::crypto::PublicKey>(cert.getPublicKey());
            unsigned bits = 0;
            const int pk = info->key->pk ? gnutls_pubkey_get_pk_algorithm(info->key->pk, &bits) : GNUTLS_PK_UNKNOWN;
            info->algo = record_signature(pk, bits);
            info->trusted = res.isValid() && info->algo != kUnsupported;
            info->name = cert.getName();
            info->id = cert.getId();
            info->not_after_ms = to_unix_ms(cert.getExpiration());
        }
    } catch (const std::exception&) {
        info->trusted = false;
    }
    std::lock_guard lk(mu_);
    if (certs_.size() >= kMaxCachedCerts) certs_.clear();
    certs_.emplace(std::move(k), info);
    return info;
}

Verdict Verifier::verify_uncached(const uint8_t* p, size_t n, Verified& out, uint64_t& cert_not_after_ms) const {
    auto env = decode_envelope(p, n);
    if (!env) return Verdict::Malformed;
    if (env->rec.empty()) {
        // A bare record without envelope is "unsigned"; anything else is garbage.
        return decode_record(p, n) ? Verdict::Unsigned : Verdict::Malformed;
    }
    if (env->sig.empty() || env->cert.empty()) return Verdict::Unsigned;
    auto rec = decode_record(env->rec);
    if (!rec) return Verdict::Malformed;
    auto ci = cert_info(env->cert);
    if (!ci->trusted || !ci->key) return Verdict::UntrustedSigner;
    const Blob in = signing_input(env->rec);
    const gnutls_datum_t dat{const_cast<uint8_t*>(in.data()), unsigned(in.size())};
    const gnutls_datum_t sig{const_cast<uint8_t*>(env->sig.data()), unsigned(env->sig.size())};
    if (gnutls_pubkey_verify_data2(ci->key->pk, gnutls_sign_algorithm_t(ci->algo), 0, &dat, &sig) < 0)
        return Verdict::BadSignature;
    if (rec->publisher != ci->name) return Verdict::NameMismatch;
    out.rec = std::move(*rec);
    out.signer = ci->id;
    out.rec_digest = ::dht::InfoHash::get(env->rec);
    cert_not_after_ms = ci->not_after_ms;
    return Verdict::Ok;
}

Verdict Verifier::verify(const uint8_t* p, size_t n, Verified& out, uint64_t now_ms, bool* first_seen) const {
    const auto digest = ::dht::InfoHash::get(p, n);
    Seen s{Verdict::Malformed, {}, 0, false};
    bool found = false;
    {
        std::lock_guard lk(mu_);
        if (auto it = seen_.find(digest); it != seen_.end()) {
            s = it->second;
            found = true;
            if (first_seen) it->second.reported = true;
        }
    }
    if (!found) {
        s.verdict = verify_uncached(p, n, s.v, s.cert_not_after_ms);
        std::lock_guard lk(mu_);
        if (seen_.size() >= kMaxSeenValues) seen_.clear();
        auto [it, inserted] = seen_.emplace(digest, s);
        if (!inserted) s.reported = it->second.reported;  // raced with another thread
        if (first_seen) it->second.reported = true;
    }
    if (first_seen) *first_seen = !s.reported;
    if (s.verdict != Verdict::Ok) return s.verdict;
    // Time-dependent checks are redone at every use.
    if (s.v.rec.expiry_ms + skew_ms_ < now_ms) return Verdict::Expired;
    if (s.cert_not_after_ms + skew_ms_ < now_ms) return Verdict::UntrustedSigner;
    out = std::move(s.v);
    return Verdict::Ok;
}

}  // namespace lm::dir
