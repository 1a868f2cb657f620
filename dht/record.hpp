// The LM record: what an AR publishes in the LM DHT so that any other AR can find a mobile
// object (MO) by one of its EIDs or by its MAC, and how it is laid out on the wire.
//
// ---- Keys (copy of this block goes to docs/protocol.md) ------------------------------------
//   EID key:  InfoHash::get("lm/eid/<tenant>/<addr>")
//   MAC key:  InfoHash::get("lm/mac/<tenant>/<mac>")
//     <tenant> : the 24-bit tenant (instance) id in decimal, no leading zeros ("0", "42")
//     <addr>   : the EID in canonical text: dotted quad for IPv4 ("192.0.2.10"), RFC 5952
//                form for IPv6 as printed by inet_ntop ("2001:db8::a")
//     <mac>    : six lowercase hex pairs separated by ':' ("02:00:00:00:00:0a")
//   InfoHash::get() is OpenDHT's SHA-1 of the UTF-8 string (160-bit key).
//   One record is put under every EID key of the MO and under its MAC key.
//
// ---- Value (OpenDHT dht::Value) -------------------------------------------------------------
//   type   = kLmValueType (0x4C4D, "LM"); the type's storage lifetime is kRecordTtl
//   id     = value id of one publication (publisher, epoch): the first 8 bytes, big endian, of
//            InfoHash::get(K || E) -- SHA-1 over K = the publishing AR's public-key id (the 20
//            bytes of the InfoHash of its key) followed by E = the record's epoch as 8 bytes big
//            endian; 0 is mapped to 1 (value_id_for()).
//            A refresh (same record, same epoch, later expiry) keeps the id: it is an edit of the
//            same value ("slot"), which storage nodes accept only from the same signer with an
//            epoch >= the stored one (trust.hpp). A new epoch -- a new publication after the MO
//            came back, or a tombstone -- gets a new id, i.e. a new value under the key.
//            Why not one id per AR (the earlier scheme): OpenDHT 2.4's listen side treats a value
//            whose id it already knows as a mere refresh and never calls the listen callback
//            with the new bytes, so after AR2 -> AR3 -> AR2 the watchers never saw AR2's new
//            record (lm-bench handover: stale_after_1s > 0). Upstream compares seq since PR
//            #651, which 2.4.12 does not have. A fresh id per epoch is always "new" to listeners.
//   Storage cost: a key holds one value per publication made within the storage lifetime
//            (kRecordTtl, 600 s): the current record (refreshed, so it stays) plus every record
//            and tombstone superseded in the last 600 s (their publishers cancel the permanent
//            puts, so they expire 600 s after their last put). An MO that moves every T seconds
//            has about 1 + 600/T values under each of its keys, ~0.5 kB each (Ed25519 envelope
//            with the certificate; ~1 kB with an RSA 2048 AR): moving every 10 s = ~61 values =
//            ~33 kB per get of the key (a watch only receives the new values); moving once a
//            minute = ~11 values, ~6 kB.
//            The earlier scheme had at most one value per AR that hosted the MO. Nothing in LM
//            bounds it; OpenDHT does: at most 64 Ki values per key on a storage node and
//            DEFAULT_STORAGE_LIMIT (64 MiB) of values per node (beyond it, storage nodes expire
//            or refuse values), and a value is at most 64 kB. Readers keep the best epoch
//            whatever the count; only bandwidth and verification (once per distinct value, then
//            cached) grow.
//   data   = msgpack map (the "envelope"):
//              "rec"  : bin  msgpack bytes of the record below (exactly the signed bytes)
//              "sig"  : bin  signature over "LMREC1\0" || rec with the publishing AR's key:
//                            Ed25519 (RFC 8032, 64 bytes) for Ed25519 identities, the default;
//                            RSA PKCS#1 v1.5 with SHA-512 for RSA identities (>= 2048 bits,
//                            what earlier versions made); readers pick by the certificate's key
//              "cert" : bin  X.509 certificate of the publishing AR (leaf only, DER; PEM from
//                            earlier versions is accepted), issued by the operator's domain CA
//              (routers before Ed25519 support verify RSA only: upgrade them all before issuing
//              Ed25519 identities; docs/operations.md, lmctl pki)
// ---- Record (msgpack map, MSGPACK_DEFINE_MAP key names) ---------------------------------------
//   "v"      : uint   schema version (1)
//   "mo"     : uint   64-bit MO identifier
//   "tenant" : uint   24-bit tenant id
//   "eids"   : array of bin (4 bytes = IPv4, 16 bytes = IPv6)
//   "mac"    : bin(6) MO MAC address
//   "locs"   : array of bin (4 or 16 bytes): the publishing AR's locators (at most one per family)
//   "epoch"  : uint   hybrid-logical-clock epoch (see hlc.hpp)
//   "pub"    : str    publishing AR name; must equal the certificate's common name
//   "exp"    : uint   expiry, Unix time in milliseconds; readers ignore expired records
//   "tomb"   : bool   tombstone: the MO was withdrawn (detached, not moved) at this epoch
//   Unknown keys are ignored on decode (forward compatibility); missing keys keep defaults.
//
// ---- Choosing among values under one key ----------------------------------------------------
//   A reader verifies every value (signature, certificate chains to the domain CA, CN == pub,
//   not expired, key matches the record's tenant/EID/MAC) and keeps the one with the highest
//   epoch; equal epochs are broken by the larger publisher key id (bytes, lexicographic), then
//   the later expiry (a refresh), then the larger SHA-1 of the record bytes, so every reader
//   picks the same one.
//   A record never replaces one with a higher epoch that the reader already holds.
//
// ---- Direct move notification (LM MoveNotify, copy to docs/protocol.md) ----------------------
//   Payload = the exact envelope bytes (encode_envelope) the new AR has just signed and is
//   putting in the DHT (Event::Signed). The receiver verifies them exactly like a DHT value
//   (Directory::accept_envelope: envelope/record well formed, certificate chains to the domain
//   CA, signature, pub == CN, not expired), observes the epoch, and holds the record under every
//   key of the record (its EID keys and MAC key), so a later read of an older DHT value cannot
//   roll it back. A valid record older than the one held is refused as "stale". Accepting the
//   same bytes twice is harmless (idempotent).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <opendht/infohash.h>

#include "common/types.hpp"

namespace lm::dir {

using Blob = std::vector<uint8_t>;

inline constexpr uint16_t kLmValueType = 0x4C4D;
inline constexpr uint8_t kRecordVersion = 1;
// Storage lifetime of an LM value on DHT nodes (the ValueType's expiration). It must be the same
// on every AR of a deployment. Publishers refresh well before (DhtConfig::refresh_interval).
inline constexpr std::chrono::seconds kRecordTtl{600};

struct Record {
    MoId mo = 0;
    TenantId tenant = 0;
    std::vector<IpAddr> eids;
    MacAddr mac;
    std::optional<IpAddr> loc4;  // publisher's IPv4 locator
    std::optional<IpAddr> loc6;  // publisher's IPv6 locator
    Epoch epoch = 0;
    std::string publisher;   // AR name == certificate CN
    uint64_t expiry_ms = 0;  // Unix ms
    bool withdrawn = false;  // tombstone

    bool operator==(const Record&) const = default;
    std::string str() const;
};

// Key derivation (see the block above).
std::string eid_key_name(TenantId tenant, const IpAddr& eid);
std::string mac_key_name(TenantId tenant, const MacAddr& mac);
::dht::InfoHash eid_key(TenantId tenant, const IpAddr& eid);
::dht::InfoHash mac_key(TenantId tenant, const MacAddr& mac);
// Every key a record is published under: one per EID, then the MAC key.
std::vector<::dht::InfoHash> record_keys(const Record& r);

// msgpack encoding of the record itself. decode() returns nullopt on malformed input
// (wrong types, bad address lengths, tenant > 24 bits, unknown version).
Blob encode_record(const Record& r);
std::optional<Record> decode_record(const uint8_t* p, size_t n);
inline std::optional<Record> decode_record(const Blob& b) { return decode_record(b.data(), b.size()); }

// The signed envelope carried in dht::Value::data.
struct Envelope {
    Blob rec;   // encode_record() bytes
    Blob sig;   // signature over signing_input(rec)
    Blob cert;  // DER certificate of the signer
};
Blob encode_envelope(const Envelope& e);
std::optional<Envelope> decode_envelope(const uint8_t* p, size_t n);
inline std::optional<Envelope> decode_envelope(const Blob& b) { return decode_envelope(b.data(), b.size()); }

// Bytes actually signed: a domain-separation prefix, then the record bytes.
Blob signing_input(const Blob& rec);

// Value id of the publication of a record with `epoch` by the AR whose public-key id is
// `publisher_key_id` (see the block above). Deterministic, never 0.
uint64_t value_id_for(const ::dht::InfoHash& publisher_key_id, Epoch epoch);

// Hasher for unordered containers keyed by InfoHash (OpenDHT 2.4 has no std::hash for it).
struct InfoHashHasher {
    size_t operator()(const ::dht::InfoHash& h) const noexcept {
        size_t v = 0;
        for (size_t i = 0; i < sizeof(size_t); ++i) v = (v << 8) | h[i];
        return v;
    }
};

// Does `r` belong under `key`? (one of its EID keys or its MAC key)
bool record_matches_key(const Record& r, const ::dht::InfoHash& key);

// Unix time in ms (system clock).
uint64_t unix_ms_now();

}  // namespace lm::dir
