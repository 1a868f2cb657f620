#include "dht/pki.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <type_traits>

namespace lm::dir {

namespace {

// GnuTLS objects until an OpenDHT wrapper has taken them (its constructor may throw).
using KeyOwner = std::unique_ptr<std::remove_pointer_t<gnutls_x509_privkey_t>, decltype(&gnutls_x509_privkey_deinit)>;
using CertOwner = std::unique_ptr<std::remove_pointer_t<gnutls_x509_crt_t>, decltype(&gnutls_x509_crt_deinit)>;

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("lm pki: cannot read " + path);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const void* data, size_t n, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("lm pki: cannot write " + path);
    ::fchmod(fd, mode);  // also when the file existed with other permissions
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w <= 0) {
            ::close(fd);
            throw std::runtime_error("lm pki: short write to " + path);
        }
        p += w;
        n -= size_t(w);
    }
    if (::close(fd) != 0) throw std::runtime_error("lm pki: cannot close " + path);
}

}  // namespace

std::optional<KeyType> KeyType::parse(std::string_view s) {
    if (s == "ed25519") return ed25519();
    if (s == "rsa2048") return rsa(2048);
    if (s == "rsa3072") return rsa(3072);
    if (s == "rsa4096") return rsa(4096);
    return std::nullopt;
}

std::string KeyType::str() const { return algo == Algo::Ed25519 ? "ed25519" : "rsa" + std::to_string(rsa_bits); }

std::shared_ptr<::dht::crypto::PrivateKey> generate_key(KeyType type) {
    if (type.algo == KeyType::Algo::Rsa) {
        if (type.rsa_bits < 2048) throw std::invalid_argument("lm pki: RSA keys must have at least 2048 bits");
        return std::make_shared<::dht::crypto::PrivateKey>(::dht::crypto::PrivateKey::generate(type.rsa_bits));
    }
    // OpenDHT 2.4 generates RSA (and P-521) keys only; it wraps any GnuTLS key.
    gnutls_x509_privkey_t raw = nullptr;
    if (gnutls_x509_privkey_init(&raw) != GNUTLS_E_SUCCESS) throw std::runtime_error("lm pki: cannot allocate a key");
    KeyOwner k(raw, gnutls_x509_privkey_deinit);
    if (int rc = gnutls_x509_privkey_generate(k.get(), GNUTLS_PK_EDDSA_ED25519, 0, 0); rc != GNUTLS_E_SUCCESS)
        throw std::runtime_error(std::string("lm pki: Ed25519 key generation failed: ") + gnutls_strerror(rc));
    auto key = std::make_shared<::dht::crypto::PrivateKey>(k.get());  // owns the key once constructed
    k.release();
    return key;
}

std::optional<KeyType> key_type_of(const ::dht::crypto::PrivateKey& key) {
    if (!key.key) return std::nullopt;
    unsigned bits = 0;
    const int pk = gnutls_privkey_get_pk_algorithm(key.key, &bits);
    if (pk == GNUTLS_PK_EDDSA_ED25519) return KeyType::ed25519();
    if (pk == GNUTLS_PK_RSA) return KeyType::rsa(bits);
    return std::nullopt;
}

namespace {

// A lean X.509 v3 certificate: CN only (no UID attribute), validity, key, basic constraints, key
// usage and key identifiers -- what chain verification needs and nothing more, because the AR's
// certificate travels in every DHT value (an Ed25519 AR certificate: ~320 bytes instead of the
// ~570 of OpenDHT's Certificate::generate). The issuer signs with SHA-512 for an Ed25519 key (the
// only digest EdDSA takes) and SHA-256 for RSA; OpenDHT picks the digest from the subject's key,
// which fails for an RSA AR under an Ed25519 CA.
std::shared_ptr<::dht::crypto::Certificate> make_certificate(const ::dht::crypto::PrivateKey& key,
                                                             const std::string& name,
                                                             const ::dht::crypto::Identity* ca, bool is_ca,
                                                             int64_t validity_s) {
    if (name.empty()) throw std::invalid_argument("lm pki: a certificate needs a name");
    if (validity_s <= 0) throw std::invalid_argument("lm pki: validity must be positive");
    gnutls_x509_crt_t crt = nullptr;
    if (gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS) throw std::runtime_error("lm pki: cannot allocate a certificate");
    CertOwner owner(crt, gnutls_x509_crt_deinit);
    auto cert = std::make_shared<::dht::crypto::Certificate>(crt);  // owns the certificate from here
    owner.release();
    auto check = [](int rc, const char* what) {
        if (rc < 0) throw std::runtime_error(std::string("lm pki: ") + what + ": " + gnutls_strerror(rc));
    };
    check(gnutls_x509_crt_set_version(crt, 3), "version");
    check(gnutls_x509_crt_set_key(crt, key.x509_key), "public key");
    uint8_t serial[8];
    check(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial), "serial");
    serial[0] &= 0x7f;  // a positive INTEGER
    check(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), "serial");
    check(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, name.data(), unsigned(name.size())), "name");
    const time_t now = time(nullptr);
    check(gnutls_x509_crt_set_activation_time(crt, now - 60), "activation time");  // a minute of clock skew
    check(gnutls_x509_crt_set_expiration_time(crt, now + time_t(validity_s)), "expiration time");
    check(gnutls_x509_crt_set_basic_constraints(crt, is_ca ? 1 : 0, -1), "basic constraints");
    check(gnutls_x509_crt_set_key_usage(crt, is_ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                                                   : GNUTLS_KEY_DIGITAL_SIGNATURE),
          "key usage");
    uint8_t kid[64];
    size_t kid_len = sizeof kid;
    check(gnutls_x509_crt_get_key_id(crt, 0, kid, &kid_len), "key id");
    check(gnutls_x509_crt_set_subject_key_id(crt, kid, kid_len), "subject key id");
    gnutls_x509_crt_t issuer_crt = crt;
    const ::dht::crypto::PrivateKey* issuer_key = &key;
    if (ca) {
        issuer_crt = ca->second->cert;
        issuer_key = ca->first.get();
        uint8_t akid[64];
        size_t akid_len = sizeof akid;
        // The authority key id is optional: a CA made elsewhere may have no subject key id.
        const int rc = gnutls_x509_crt_get_subject_key_id(issuer_crt, akid, &akid_len, nullptr);
        if (rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
            check(rc, "CA key id");
            check(gnutls_x509_crt_set_authority_key_id(crt, akid, akid_len), "authority key id");
        }
        cert->issuer = ca->second;
    }
    const auto issuer_type = key_type_of(*issuer_key);
    const auto dig = issuer_type && issuer_type->algo == KeyType::Algo::Ed25519 ? GNUTLS_DIG_SHA512 : GNUTLS_DIG_SHA256;
    check(gnutls_x509_crt_privkey_sign(crt, issuer_crt, issuer_key->key, dig, 0), "signing");
    return cert;
}

}  // namespace

::dht::crypto::Identity create_domain_ca(const std::string& name, KeyType type, int64_t validity_s) {
    auto key = generate_key(type);
    return {key, make_certificate(*key, name, nullptr, true, validity_s)};
}

::dht::crypto::Identity issue_ar_identity(const ::dht::crypto::Identity& ca, const std::string& ar_name, KeyType type,
                                          int64_t validity_s) {
    if (!ca.first || !ca.second || !*ca.second) throw std::invalid_argument("lm pki: CA identity incomplete");
    if (!ca.second->isCA()) throw std::invalid_argument("lm pki: the issuer is not a CA certificate");
    auto key = generate_key(type);
    return {key, make_certificate(*key, ar_name, &ca, false, validity_s)};
}

void save_identity(const ::dht::crypto::Identity& id, const std::string& key_path, const std::string& cert_path,
                   const std::string& password) {
    if (!id.first || !id.second) throw std::invalid_argument("lm pki: identity incomplete");
    auto key = id.first->serialize(password);
    write_file(key_path, key.data(), key.size(), 0600);
    save_certificate(*id.second, cert_path);
}

::dht::crypto::Identity load_identity(const std::string& key_path, const std::string& cert_path,
                                      const std::string& password) {
    auto key = std::make_shared<::dht::crypto::PrivateKey>(read_file(key_path), password);
    auto cert = load_certificate(cert_path);
    if (key->getPublicKey().getId() != cert->getId())
        throw std::runtime_error("lm pki: " + key_path + " does not match " + cert_path);
    return {key, cert};
}

void save_certificate(const ::dht::crypto::Certificate& cert, const std::string& path) {
    auto pem = cert.toString(false);
    write_file(path, pem.data(), pem.size(), 0644);
}

std::shared_ptr<::dht::crypto::Certificate> load_certificate(const std::string& path) {
    auto cert = std::make_shared<::dht::crypto::Certificate>(read_file(path));
    if (!*cert) throw std::runtime_error("lm pki: no certificate in " + path);
    return cert;
}

}  // namespace lm::dir
