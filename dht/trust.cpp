#include "dht/trust.hpp"

#include <chrono>

namespace lm::dir {

namespace {

constexpr size_t kMaxCachedCerts = 4096;
constexpr size_t kMaxSeenValues = 65536;

uint64_t to_unix_ms(std::chrono::system_clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    return ms < 0 ? 0 : uint64_t(ms);
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
    // Certificate::getPacked() appends the issuer chain; a copy of the leaf has no issuer.
    ::dht::crypto::Certificate leaf(cert.getCopy());
    return leaf.getPacked();
}

// ---- Signer ---------------------------------------------------------------------------------

Signer::Signer(::dht::crypto::Identity id) : id_(std::move(id)) {
    if (!id_.first || !id_.second || !*id_.first || !*id_.second)
        throw std::invalid_argument("lm dht: signer needs a private key and a certificate");
    cert_der_ = leaf_certificate_der(*id_.second);
    name_ = id_.second->getName();
    key_id_ = id_.second->getId();
}

Envelope Signer::sign(Record r) const {
    r.publisher = name_;
    Envelope e;
    e.rec = encode_record(r);
    e.sig = id_.first->sign(signing_input(e.rec));
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
            info->trusted = res.isValid();
            info->key = std::make_shared<::dht::crypto::PublicKey>(cert.getPublicKey());
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
    if (!ci->key->checkSignature(in.data(), in.size(), env->sig.data(), env->sig.size()))
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
