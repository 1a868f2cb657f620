// Trust: who may move an MO's traffic.
//
// Every AR has an identity (Ed25519 or RSA key + X.509 certificate whose CN is the AR name)
// issued by the operator's domain CA (pki.hpp). A record is accepted only if
//   - the envelope carries a record, a signature and a certificate (else: Unsigned),
//   - the certificate chains to the domain CA (GnuTLS trust list, profile MEDIUM, validity
//     period checked), is a single leaf certificate, and its key is Ed25519 or RSA of at least
//     2048 bits (else: UntrustedSigner),
//   - the signature over signing_input(rec) verifies with the certificate's key (else: BadSignature,
//     which is also what any byte changed after signing gives),
//   - the record's "pub" equals the certificate CN (else: NameMismatch),
//   - the record has not expired (expiry + allowed clock skew >= now) (else: Expired).
// Epoch ordering (replays of old epochs) is the directory's job (directory.hpp).
//
// Signing model -- why not OpenDHT's putSigned():
//   putSigned() signs the dht::Value with the node's key and storage nodes then only let the same
//   owner edit that value (same value id, increasing seq). In LM the publisher changes at every
//   migration (AR2, then AR3, then AR2 again), and the owner's key is not tied to any CA: SecureDht
//   accepts any self-generated key. So we sign inside the payload instead: the record bytes are
//   signed with the AR's private key, the AR's certificate travels in the value (so a reader needs
//   no extra round trip to fetch it -- a miss is on the packet path), and readers verify the chain
//   to the domain CA themselves. Values are plain put() with a value id derived from the publisher
//   and the record's epoch (record.hpp): each publication is its own value ("slot") under the key,
//   which the AR's refreshes edit in place, and the LM value type's edit policy (installed on
//   every node by the directory) lets a slot be replaced only by a valid record of the same
//   signer with an epoch >= the stored one (refresh) -- an attacker cannot overwrite a legitimate
//   slot, and a legitimate AR cannot be rolled back in its own slot.
//   Readers take the newest valid epoch among all values under the key.
//
// Key type: Ed25519 by default (pki.hpp; RSA identities stay accepted). Measured with
// test/dht/test_crypto.cpp (GnuTLS, one core of the 2-core dev VM, -O2, record with its DER
// certificate): Ed25519 sign 21 us, verify 70 us, value 548 B; RSA 2048 sign 1.0 ms, verify 19 us,
// value 992 B; RSA 4096 sign 5.8 ms, verify 60 us, value 1.5 kB. Signing is on the critical path
// of every migration (the new AR signs before it can notify the old AR: 1-5 ms with RSA 2048 on a
// loaded machine, which was most of the handover's non-WAN time) and runs at every refresh;
// verification happens once per distinct value per reader, then is cached. A value under 600
// bytes also fits one OpenDHT packet (larger ones are sent as a header plus value parts), which
// roughly halves the packets of a get or a listen update. Ed25519 is at the 128-bit level, RSA
// 2048 at 112 (fine through 2030); 4096-bit RSA signing is what delayed packets in OpenDHT's
// issue tracker.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <opendht/crypto.h>

#include "dht/record.hpp"

namespace lm::dir {

enum class Verdict : uint8_t {
    Ok,
    Malformed,        // not an envelope, or the record does not decode
    Unsigned,         // no signature or no certificate
    UntrustedSigner,  // certificate does not chain to the domain CA (self-signed, other CA, expired)
    BadSignature,     // signature does not verify (forged or tampered bytes)
    NameMismatch,     // record "pub" != certificate CN
    Expired,          // record expiry passed
    // Not a Verifier verdict: Directory::accept_envelope() gives it for a valid record older than
    // the record the directory already holds for one of its keys (a replay or a late notification).
    Stale,
};
const char* to_string(Verdict v);

// A record that passed verify().
struct Verified {
    Record rec;
    ::dht::InfoHash signer;     // public key id of the signing AR
    ::dht::InfoHash rec_digest; // SHA-1 of the record bytes (deterministic tie-break)
};

// Total order used by every reader: epoch, then signer key id (bytes), then expiry (a refresh of
// the same record by the same AR wins), then record digest.
bool newer_than(const Verified& a, const Verified& b);

// DER of the certificate alone (without its issuer chain), as carried in envelopes.
Blob leaf_certificate_der(const ::dht::crypto::Certificate& cert);

// An AR's identity, used to sign its records.
class Signer {
public:
    explicit Signer(::dht::crypto::Identity id);
    const std::string& name() const { return name_; }
    const ::dht::InfoHash& key_id() const { return key_id_; }
    // Value id of this AR's publication of a record with `epoch` (record.hpp).
    uint64_t value_id(Epoch epoch) const { return value_id_for(key_id_, epoch); }
    const ::dht::crypto::Identity& identity() const { return id_; }
    // Signs `r` with publisher set to name(). Thread-safe.
    Envelope sign(Record r) const;

private:
    ::dht::crypto::Identity id_;
    int algo_ = 0;  // gnutls_sign_algorithm_t of the key (trust.cpp)
    Blob cert_der_;
    std::string name_;
    ::dht::InfoHash key_id_;
};

// The domain CA as trust anchor, with a cache of certificates already checked and of envelopes
// already verified (keyed by their bytes' digest), so a value read again (every get returns it)
// costs a hash, not a signature verification. Thread-safe (called from OpenDHT threads).
class Verifier {
public:
    explicit Verifier(std::shared_ptr<::dht::crypto::Certificate> ca, uint64_t clock_skew_ms = 30'000);

    // Verifies the bytes of a dht::Value::data. `first_seen` (optional) tells whether no caller
    // passing `first_seen` has been given these exact bytes before (readers count rejections once
    // per distinct value; storage-side checks pass nullptr and do not consume that).
    Verdict verify(const uint8_t* p, size_t n, Verified& out, uint64_t now_ms, bool* first_seen = nullptr) const;
    Verdict verify(const Blob& b, Verified& out, uint64_t now_ms, bool* first_seen = nullptr) const {
        return verify(b.data(), b.size(), out, now_ms, first_seen);
    }
    const ::dht::crypto::Certificate& ca() const { return *ca_; }

private:
    struct CertInfo {
        bool trusted = false;
        std::shared_ptr<::dht::crypto::PublicKey> key;
        int algo = 0;  // gnutls_sign_algorithm_t the key's records are signed with (trust.cpp)
        std::string name;
        ::dht::InfoHash id;
        uint64_t not_after_ms = 0;
    };
    std::shared_ptr<const CertInfo> cert_info(const Blob& der) const;
    Verdict verify_uncached(const uint8_t* p, size_t n, Verified& out, uint64_t& cert_not_after_ms) const;

    std::shared_ptr<::dht::crypto::Certificate> ca_;
    uint64_t skew_ms_;
    mutable std::mutex mu_;
    ::dht::crypto::TrustList trust_;  // guarded by mu_
    mutable std::unordered_map<std::string, std::shared_ptr<const CertInfo>> certs_;  // DER -> info
    struct Seen {
        Verdict verdict;
        Verified v;
        uint64_t cert_not_after_ms;
        bool reported;  // a caller passing first_seen has been told about these bytes
    };
    mutable std::unordered_map<::dht::InfoHash, Seen, InfoHashHasher> seen_;  // digest of value bytes -> result
};

}  // namespace lm::dir
