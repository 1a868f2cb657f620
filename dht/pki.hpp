// PKI helpers for the LM domain: create the operator's domain CA, issue AR identities, and
// save/load them as PEM files (for a future `lmctl pki init` / `lmctl pki issue`).
//
// Files: <name>.key  PKCS#8 PEM private key (mode 0600), optionally password-protected
//        <name>.crt  PEM certificate (leaf only; the CA certificate is distributed separately)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <opendht/crypto.h>

namespace lm::dir {

// Key algorithm of a CA or an AR identity. Ed25519 is the default: signing is ~45x faster than
// RSA 2048 (it is on the attach -> move-notification path of every migration) and a record with
// its certificate is half the size (trust.hpp has the figures). RSA keys stay accepted, so
// identities made by earlier versions keep working.
struct KeyType {
    enum class Algo : uint8_t { Ed25519, Rsa };
    Algo algo = Algo::Ed25519;
    unsigned rsa_bits = 2048;  // Algo::Rsa only; at least 2048 (GnuTLS's MEDIUM profile)

    static KeyType ed25519() { return {}; }
    static KeyType rsa(unsigned bits) { return {Algo::Rsa, bits}; }
    // "ed25519", "rsa2048", "rsa3072", "rsa4096"; nullopt otherwise.
    static std::optional<KeyType> parse(std::string_view s);
    std::string str() const;
};
inline constexpr unsigned kDefaultRsaBits = 2048;  // when RSA is asked for without a size
inline constexpr int64_t kCaValiditySeconds = 10LL * 365 * 24 * 3600;
inline constexpr int64_t kArValiditySeconds = 2LL * 365 * 24 * 3600;

// A fresh private key of that type.
std::shared_ptr<::dht::crypto::PrivateKey> generate_key(KeyType type);
// What an existing key is (Ed25519 or RSA of some size); nullopt for anything else.
std::optional<KeyType> key_type_of(const ::dht::crypto::PrivateKey& key);

// A self-signed CA certificate (basic constraints CA, may sign certificates).
::dht::crypto::Identity create_domain_ca(const std::string& name, KeyType type = {},
                                         int64_t validity_s = kCaValiditySeconds);

// An AR identity: fresh key, certificate with CN = ar_name, issued by `ca`, not a CA.
::dht::crypto::Identity issue_ar_identity(const ::dht::crypto::Identity& ca, const std::string& ar_name,
                                          KeyType type = {}, int64_t validity_s = kArValiditySeconds);

void save_identity(const ::dht::crypto::Identity& id, const std::string& key_path, const std::string& cert_path,
                   const std::string& password = {});
::dht::crypto::Identity load_identity(const std::string& key_path, const std::string& cert_path,
                                      const std::string& password = {});
void save_certificate(const ::dht::crypto::Certificate& cert, const std::string& path);
std::shared_ptr<::dht::crypto::Certificate> load_certificate(const std::string& path);

}  // namespace lm::dir
