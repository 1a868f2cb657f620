#include "dht/pki.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace lm::dir {

namespace {

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

::dht::crypto::Identity create_domain_ca(const std::string& name, unsigned rsa_bits, int64_t validity_s) {
    auto key = std::make_shared<::dht::crypto::PrivateKey>(::dht::crypto::PrivateKey::generate(rsa_bits));
    auto cert = std::make_shared<::dht::crypto::Certificate>(
        ::dht::crypto::Certificate::generate(*key, name, {}, true, validity_s));
    if (!*cert) throw std::runtime_error("lm pki: CA certificate generation failed");
    return {key, cert};
}

::dht::crypto::Identity issue_ar_identity(const ::dht::crypto::Identity& ca, const std::string& ar_name,
                                          unsigned rsa_bits, int64_t validity_s) {
    if (!ca.first || !ca.second) throw std::invalid_argument("lm pki: CA identity incomplete");
    auto key = std::make_shared<::dht::crypto::PrivateKey>(::dht::crypto::PrivateKey::generate(rsa_bits));
    auto cert = std::make_shared<::dht::crypto::Certificate>(
        ::dht::crypto::Certificate::generate(*key, ar_name, ca, false, validity_s));
    if (!*cert) throw std::runtime_error("lm pki: AR certificate generation failed");
    return {key, cert};
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
