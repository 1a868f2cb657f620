// PKI helpers for the LM domain: create the operator's domain CA, issue AR identities, and
// save/load them as PEM files (for a future `lmctl pki init` / `lmctl pki issue`).
//
// Files: <name>.key  PKCS#8 PEM private key (mode 0600), optionally password-protected
//        <name>.crt  PEM certificate (leaf only; the CA certificate is distributed separately)
#pragma once

#include <memory>
#include <string>

#include <opendht/crypto.h>

namespace lm::dir {

inline constexpr unsigned kDefaultRsaBits = 2048;  // see trust.hpp and test/dht/test_crypto.cpp
inline constexpr int64_t kCaValiditySeconds = 10LL * 365 * 24 * 3600;
inline constexpr int64_t kArValiditySeconds = 2LL * 365 * 24 * 3600;

// A self-signed CA certificate (basic constraints CA, may sign certificates).
::dht::crypto::Identity create_domain_ca(const std::string& name, unsigned rsa_bits = kDefaultRsaBits,
                                         int64_t validity_s = kCaValiditySeconds);

// An AR identity: fresh RSA key, certificate with CN = ar_name, issued by `ca`, not a CA.
::dht::crypto::Identity issue_ar_identity(const ::dht::crypto::Identity& ca, const std::string& ar_name,
                                          unsigned rsa_bits = kDefaultRsaBits,
                                          int64_t validity_s = kArValiditySeconds);

void save_identity(const ::dht::crypto::Identity& id, const std::string& key_path, const std::string& cert_path,
                   const std::string& password = {});
::dht::crypto::Identity load_identity(const std::string& key_path, const std::string& cert_path,
                                      const std::string& password = {});
void save_certificate(const ::dht::crypto::Certificate& cert, const std::string& path);
std::shared_ptr<::dht::crypto::Certificate> load_certificate(const std::string& path);

}  // namespace lm::dir
