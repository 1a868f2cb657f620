// Offline tests: record schema, keys, HLC, signing/verification, PKI files. No network.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "dht/directory.hpp"
#include "catch.hpp"
#include "dht/hlc.hpp"
#include "dht/pki.hpp"
#include "dht/record.hpp"
#include "dht/trust.hpp"
#include "dht_fixtures.hpp"

using namespace lm;
using namespace lm::dir;
using namespace lm::dir::test;

TEST_CASE("record keys follow the documented derivation", "[dht][record]") {
    CHECK(eid_key_name(7, ip("192.0.2.10")) == "lm/eid/7/192.0.2.10");
    CHECK(eid_key_name(0, ip("2001:db8::a")) == "lm/eid/0/2001:db8::a");
    CHECK(mac_key_name(16777215, mac("02:00:00:00:00:0a")) == "lm/mac/16777215/02:00:00:00:00:0a");
    CHECK(eid_key(7, ip("192.0.2.10")) == ::dht::InfoHash::get("lm/eid/7/192.0.2.10"));
    CHECK(eid_key(7, ip("192.0.2.10")) != eid_key(8, ip("192.0.2.10")));  // tenants may reuse addresses
    auto r = sample_record();
    auto keys = record_keys(r);
    REQUIRE(keys.size() == 3);
    CHECK(keys[0] == eid_key(7, ip("192.0.2.10")));
    CHECK(keys[1] == eid_key(7, ip("2001:db8::10")));
    CHECK(keys[2] == mac_key(7, mac("02:00:00:00:00:0a")));
    CHECK(record_matches_key(r, keys[1]));
    CHECK_FALSE(record_matches_key(r, eid_key(7, ip("192.0.2.11"))));
}

TEST_CASE("record msgpack round trip and malformed input", "[dht][record]") {
    auto r = sample_record();
    r.withdrawn = true;
    auto b = encode_record(r);
    auto d = decode_record(b);
    REQUIRE(d);
    CHECK(*d == r);

    Record minimal;
    minimal.mo = 1;
    auto dm = decode_record(encode_record(minimal));
    REQUIRE(dm);
    CHECK(*dm == minimal);

    CHECK_FALSE(decode_record(Blob{}));
    CHECK_FALSE(decode_record(Blob{0xc1}));           // never-used msgpack byte
    CHECK_FALSE(decode_record(Blob{0x93, 1, 2, 3}));  // an array, not a map
    for (size_t cut = 0; cut < b.size(); cut += 7) {  // truncations never crash nor decode
        Blob t(b.begin(), b.begin() + long(cut));
        CHECK_FALSE(decode_record(t));
    }
    // An envelope round trip.
    Envelope e{b, Blob{1, 2, 3}, Blob{4, 5}};
    auto de = decode_envelope(encode_envelope(e));
    REQUIRE(de);
    CHECK(de->rec == e.rec);
    CHECK(de->sig == e.sig);
    CHECK(de->cert == e.cert);
}

TEST_CASE("value id: one per (publisher, epoch), deterministic, never 0", "[dht][record]") {
    const auto a = ::dht::InfoHash::get("publisher a"), b = ::dht::InfoHash::get("publisher b");
    const Epoch e = 0x0001'0000'0000'0001ULL;
    CHECK(value_id_for(a, e) == value_id_for(a, e));  // a refresh (same epoch) edits the same value
    CHECK(value_id_for(a, e) != value_id_for(a, e + 1));  // a new epoch is a new value
    CHECK(value_id_for(a, e) != value_id_for(b, e));
    CHECK(value_id_for(::dht::InfoHash{}, 0) != 0);
    // The documented derivation: first 8 bytes, big endian, of SHA-1(key id || epoch big endian).
    uint8_t in[28];
    std::memcpy(in, a.data(), 20);
    for (int i = 0; i < 8; ++i) in[20 + i] = uint8_t(e >> (56 - 8 * i));
    const auto h = ::dht::InfoHash::get(in, sizeof in);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | h[size_t(i)];
    CHECK(value_id_for(a, e) == v);
    CHECK(Signer(pki().ar1).value_id(e) == value_id_for(Signer(pki().ar1).key_id(), e));
}

TEST_CASE("HLC: monotonic, observes, survives a clock going backwards", "[dht][hlc]") {
    uint64_t wall = 1'700'000'000'000ULL;
    Hlc h([&] { return wall; });
    const Epoch a = h.next();
    CHECK(a == Hlc::from_ms(wall));
    const Epoch b = h.next();  // same millisecond: the counter moves
    CHECK(b == a + 1);
    CHECK(Hlc::ms_of(b) == wall);
    CHECK(Hlc::counter_of(b) == 1);
    wall -= 5000;  // NTP step back
    const Epoch c = h.next();
    CHECK(c > b);
    // An epoch from an AR whose clock is 50 ms ahead.
    const Epoch remote = Hlc::from_ms(wall + 5000 + 50) + 3;
    h.observe(remote);
    CHECK(h.next() > remote);
    h.observe(1);  // observing an old epoch changes nothing
    CHECK(h.last() > remote);
    wall += 1'000'000;  // the wall clock takes over again
    CHECK(h.next() == Hlc::from_ms(wall));
}

TEST_CASE("ordering of verified records is total and deterministic", "[dht][record]") {
    Verified a, b;
    a.rec.epoch = 10;
    b.rec.epoch = 9;
    CHECK(newer_than(a, b));
    CHECK_FALSE(newer_than(b, a));
    b.rec.epoch = 10;
    a.signer = ::dht::InfoHash::get("a");
    b.signer = ::dht::InfoHash::get("b");
    CHECK(newer_than(a, b) == (b.signer < a.signer));
    CHECK(newer_than(a, b) != newer_than(b, a));
    b.signer = a.signer;
    a.rec.expiry_ms = 2;
    b.rec.expiry_ms = 1;
    CHECK(newer_than(a, b));
    CHECK_FALSE(newer_than(a, a));
}

TEST_CASE("verifier accepts records of CA-issued ARs and rejects the rest", "[dht][trust]") {
    const auto& k = pki();
    Verifier v(k.ca.second);
    const uint64_t now = unix_ms_now();
    Signer ar1(k.ar1);
    CHECK(ar1.name() == "ar1");
    auto r = sample_record();
    auto env = ar1.sign(r);
    Verified out;
    bool first = false;
    REQUIRE(v.verify(encode_envelope(env), out, now, &first) == Verdict::Ok);
    CHECK(first);
    CHECK(out.rec.publisher == "ar1");
    CHECK(out.rec.loc4 == r.loc4);
    CHECK(out.signer == k.ar1.second->getId());
    // Same bytes again: cached, not "first" any more.
    REQUIRE(v.verify(encode_envelope(env), out, now, &first) == Verdict::Ok);
    CHECK_FALSE(first);

    SECTION("unsigned") {
        CHECK(v.verify(encode_record(r), out, now) == Verdict::Unsigned);
        Envelope nosig = env;
        nosig.sig.clear();
        CHECK(v.verify(encode_envelope(nosig), out, now) == Verdict::Unsigned);
        Envelope nocert = env;
        nocert.cert.clear();
        CHECK(v.verify(encode_envelope(nocert), out, now) == Verdict::Unsigned);
    }
    SECTION("malformed") {
        CHECK(v.verify(Blob{1, 2, 3}, out, now) == Verdict::Malformed);
        Envelope bad = env;
        bad.rec = Blob{0x80};  // empty map: no mo/epoch/mac
        CHECK(v.verify(encode_envelope(bad), out, now) == Verdict::Malformed);
    }
    SECTION("forged signer: other CA, self-signed") {
        CHECK(v.verify(encode_envelope(Signer(k.rogue_ar2).sign(r)), out, now) == Verdict::UntrustedSigner);
        CHECK(v.verify(encode_envelope(Signer(k.self_signed_ar2).sign(r)), out, now) == Verdict::UntrustedSigner);
        // The CA's own certificate is trusted, but garbage is not a certificate.
        Envelope junk = env;
        junk.cert = Blob(300, 0x30);
        CHECK(v.verify(encode_envelope(junk), out, now) == Verdict::UntrustedSigner);
        // Only a single leaf certificate is accepted, not a chain.
        Envelope chain = env;
        chain.cert = k.ar1.second->getPacked();
        CHECK(chain.cert.size() > env.cert.size());
        CHECK(v.verify(encode_envelope(chain), out, now) == Verdict::UntrustedSigner);
    }
    SECTION("tampered: record bytes changed after signing") {
        auto rec = *decode_record(env.rec);
        rec.loc4 = ip("203.0.113.66");
        Envelope t = env;
        t.rec = encode_record(rec);
        CHECK(v.verify(encode_envelope(t), out, now) == Verdict::BadSignature);
        Envelope flip = env;
        flip.sig[10] ^= 1;
        CHECK(v.verify(encode_envelope(flip), out, now) == Verdict::BadSignature);
        // A valid signature of another AR with this AR's certificate.
        Envelope swap = env;
        swap.sig = Signer(k.ar2).sign(r).sig;
        CHECK(v.verify(encode_envelope(swap), out, now) == Verdict::BadSignature);
    }
    SECTION("name mismatch: ar3 signs a record claiming to be ar2") {
        auto rec = r;
        rec.publisher = "ar2";
        Envelope e;
        e.rec = encode_record(rec);
        e.sig = k.ar3.first->sign(signing_input(e.rec));
        e.cert = leaf_certificate_der(*k.ar3.second);
        CHECK(v.verify(encode_envelope(e), out, now) == Verdict::NameMismatch);
    }
    SECTION("RSA identities and the PEM certificates of earlier versions are accepted") {
        // An RSA 2048 AR under the (Ed25519) domain CA: RSA-SHA512 signatures, as before.
        const auto rsa = issue_ar_identity(k.ca, "ar1", KeyType::rsa(2048));
        Envelope e = Signer(rsa).sign(r);
        CHECK(e.sig.size() == 256);
        REQUIRE(v.verify(encode_envelope(e), out, now) == Verdict::Ok);
        CHECK(out.signer == rsa.second->getId());
        // Values used to carry the certificate as PEM text; the bytes differ, the verdict not.
        const std::string pem = k.ar1.second->toString(false);
        Envelope old = ar1.sign(r);
        REQUIRE(old.cert.size() < pem.size());  // DER now
        old.cert.assign(pem.begin(), pem.end());
        CHECK(v.verify(encode_envelope(old), out, now) == Verdict::Ok);
        // An Ed25519 signature presented with an RSA certificate of the same name does not verify.
        Envelope mix = ar1.sign(r);
        mix.cert = leaf_certificate_der(*rsa.second);
        CHECK(v.verify(encode_envelope(mix), out, now) == Verdict::BadSignature);
    }
    SECTION("expired") {
        auto rec = r;
        rec.expiry_ms = now - 120'000;
        CHECK(v.verify(encode_envelope(ar1.sign(rec)), out, now) == Verdict::Expired);
        // Within the tolerated clock skew it is still fine.
        rec.expiry_ms = now - 1000;
        CHECK(v.verify(encode_envelope(ar1.sign(rec)), out, now) == Verdict::Ok);
    }
}

TEST_CASE("PKI: save and load CA and AR identities as PEM", "[dht][pki]") {
    const auto& k = pki();
    char tmpl[] = "/tmp/lm-dht-pki-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const std::string dir = tmpl;
    save_certificate(*k.ca.second, dir + "/ca.crt");
    save_identity(k.ar2, dir + "/ar2.key", dir + "/ar2.crt");
    struct stat st {};
    REQUIRE(stat((dir + "/ar2.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto ca = load_certificate(dir + "/ca.crt");
    CHECK(ca->isCA());
    CHECK(ca->getId() == k.ca.second->getId());
    auto id = load_identity(dir + "/ar2.key", dir + "/ar2.crt");
    CHECK(id.second->getName() == "ar2");
    CHECK_FALSE(id.second->isCA());
    // A record signed with the loaded key verifies against the loaded CA.
    Verifier v(ca);
    Verified out;
    CHECK(v.verify(encode_envelope(Signer(id).sign(sample_record())), out, unix_ms_now()) == Verdict::Ok);
    // Mismatched key and certificate are refused.
    save_identity(k.ar3, dir + "/ar3.key", dir + "/ar3.crt");
    CHECK_THROWS(load_identity(dir + "/ar3.key", dir + "/ar2.crt"));
    CHECK_THROWS(load_certificate(dir + "/missing.crt"));

    // A directory configured from the PEM files (an isolated node, no bootstrap).
    DhtConfig cfg;
    cfg.port = 0;
    cfg.bind4 = "127.0.0.1";
    cfg.ca_cert = dir + "/ca.crt";
    cfg.identity_key = dir + "/ar2.key";
    cfg.identity_cert = dir + "/ar2.crt";
    {
        Directory d(cfg);
        CHECK(d.can_publish());
        CHECK(d.name() == "ar2");
        CHECK(d.bound_port() != 0);
    }
    cfg.identity_key.clear();
    {
        Directory ro(cfg);
        CHECK_FALSE(ro.can_publish());
        CHECK_THROWS_AS(ro.publish(sample_record()), std::logic_error);
    }
    cfg.bootstrap = {"no-port"};
    CHECK_THROWS(Directory(cfg));
    std::filesystem::remove_all(dir);
}
