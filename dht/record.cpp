#include "dht/record.hpp"

#include <cstring>

#include <fmt/format.h>
#include <msgpack.hpp>

namespace lm::dir {

namespace {

constexpr char kSignPrefix[] = "LMREC1";  // + the terminating NUL: 7 bytes

void pack_bin(msgpack::packer<msgpack::sbuffer>& pk, const uint8_t* p, size_t n) {
    pk.pack_bin(uint32_t(n));
    pk.pack_bin_body(reinterpret_cast<const char*>(p), uint32_t(n));
}

void pack_string(msgpack::packer<msgpack::sbuffer>& pk, std::string_view k) {
    pk.pack_str(uint32_t(k.size()));
    pk.pack_str_body(k.data(), uint32_t(k.size()));
}

void pack_addr(msgpack::packer<msgpack::sbuffer>& pk, const IpAddr& a) {
    pack_bin(pk, a.b.data(), a.is_v4() ? 4 : 16);
}

std::optional<IpAddr> addr_from_bin(const msgpack::object& o) {
    if (o.type != msgpack::type::BIN) return std::nullopt;
    IpAddr a;
    if (o.via.bin.size == 4) {
        a.family = Family::V4;
    } else if (o.via.bin.size == 16) {
        a.family = Family::V6;
    } else {
        return std::nullopt;
    }
    std::memcpy(a.b.data(), o.via.bin.ptr, o.via.bin.size);
    return a;
}

bool key_is(const msgpack::object& k, std::string_view name) {
    return k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == name;
}

bool get_uint(const msgpack::object& o, uint64_t& out) {
    if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
    out = o.via.u64;
    return true;
}

bool get_bin(const msgpack::object& o, Blob& out) {
    if (o.type != msgpack::type::BIN) return false;
    out.assign(reinterpret_cast<const uint8_t*>(o.via.bin.ptr),
               reinterpret_cast<const uint8_t*>(o.via.bin.ptr) + o.via.bin.size);
    return true;
}

}  // namespace

std::string Record::str() const {
    std::string e;
    for (const auto& a : eids) e += (e.empty() ? "" : ",") + a.str();
    return fmt::format("mo={:#x} tenant={} eids=[{}] mac={} loc4={} loc6={} epoch={:#x} pub={} exp={} {}",
                       mo, tenant, e, mac.str(), loc4 ? loc4->str() : "-", loc6 ? loc6->str() : "-", epoch,
                       publisher, expiry_ms, withdrawn ? "WITHDRAWN" : "");
}

std::string eid_key_name(TenantId tenant, const IpAddr& eid) {
    return fmt::format("lm/eid/{}/{}", tenant, eid.str());
}
std::string mac_key_name(TenantId tenant, const MacAddr& mac) {
    return fmt::format("lm/mac/{}/{}", tenant, mac.str());
}
::dht::InfoHash eid_key(TenantId tenant, const IpAddr& eid) { return ::dht::InfoHash::get(eid_key_name(tenant, eid)); }
::dht::InfoHash mac_key(TenantId tenant, const MacAddr& mac) { return ::dht::InfoHash::get(mac_key_name(tenant, mac)); }

std::vector<::dht::InfoHash> record_keys(const Record& r) {
    std::vector<::dht::InfoHash> keys;
    keys.reserve(r.eids.size() + 1);
    for (const auto& e : r.eids) keys.push_back(eid_key(r.tenant, e));
    keys.push_back(mac_key(r.tenant, r.mac));
    return keys;
}

bool record_matches_key(const Record& r, const ::dht::InfoHash& key) {
    for (const auto& k : record_keys(r))
        if (k == key) return true;
    return false;
}

Blob encode_record(const Record& r) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(&buf);
    pk.pack_map(10);
    pack_string(pk, "v");
    pk.pack(uint64_t(kRecordVersion));
    pack_string(pk, "mo");
    pk.pack(uint64_t(r.mo));
    pack_string(pk, "tenant");
    pk.pack(uint64_t(r.tenant));
    pack_string(pk, "eids");
    pk.pack_array(uint32_t(r.eids.size()));
    for (const auto& e : r.eids) pack_addr(pk, e);
    pack_string(pk, "mac");
    pack_bin(pk, r.mac.b.data(), 6);
    pack_string(pk, "locs");
    pk.pack_array((r.loc4 ? 1 : 0) + (r.loc6 ? 1 : 0));
    if (r.loc4) pack_addr(pk, *r.loc4);
    if (r.loc6) pack_addr(pk, *r.loc6);
    pack_string(pk, "epoch");
    pk.pack(uint64_t(r.epoch));
    pack_string(pk, "pub");
    pack_string(pk, r.publisher);
    pack_string(pk, "exp");
    pk.pack(uint64_t(r.expiry_ms));
    pack_string(pk, "tomb");
    pk.pack(r.withdrawn);
    return Blob(reinterpret_cast<const uint8_t*>(buf.data()), reinterpret_cast<const uint8_t*>(buf.data()) + buf.size());
}

std::optional<Record> decode_record(const uint8_t* p, size_t n) {
    try {
        auto oh = msgpack::unpack(reinterpret_cast<const char*>(p), n);
        const auto& o = oh.get();
        if (o.type != msgpack::type::MAP) return std::nullopt;
        Record r;
        uint64_t version = 0, u = 0;
        bool have_mo = false, have_epoch = false, have_mac = false;
        for (uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& k = o.via.map.ptr[i].key;
            const auto& v = o.via.map.ptr[i].val;
            if (key_is(k, "v")) {
                if (!get_uint(v, version)) return std::nullopt;
            } else if (key_is(k, "mo")) {
                if (!get_uint(v, r.mo)) return std::nullopt;
                have_mo = true;
            } else if (key_is(k, "tenant")) {
                if (!get_uint(v, u) || u > kMaxTenant) return std::nullopt;
                r.tenant = TenantId(u);
            } else if (key_is(k, "eids")) {
                if (v.type != msgpack::type::ARRAY) return std::nullopt;
                for (uint32_t j = 0; j < v.via.array.size; ++j) {
                    auto a = addr_from_bin(v.via.array.ptr[j]);
                    if (!a) return std::nullopt;
                    r.eids.push_back(*a);
                }
            } else if (key_is(k, "mac")) {
                if (v.type != msgpack::type::BIN || v.via.bin.size != 6) return std::nullopt;
                std::memcpy(r.mac.b.data(), v.via.bin.ptr, 6);
                have_mac = true;
            } else if (key_is(k, "locs")) {
                if (v.type != msgpack::type::ARRAY) return std::nullopt;
                for (uint32_t j = 0; j < v.via.array.size; ++j) {
                    auto a = addr_from_bin(v.via.array.ptr[j]);
                    if (!a) return std::nullopt;
                    auto& slot = a->is_v4() ? r.loc4 : r.loc6;
                    if (slot) return std::nullopt;  // at most one per family
                    slot = *a;
                }
            } else if (key_is(k, "epoch")) {
                if (!get_uint(v, r.epoch)) return std::nullopt;
                have_epoch = true;
            } else if (key_is(k, "pub")) {
                if (v.type != msgpack::type::STR) return std::nullopt;
                r.publisher.assign(v.via.str.ptr, v.via.str.size);
            } else if (key_is(k, "exp")) {
                if (!get_uint(v, r.expiry_ms)) return std::nullopt;
            } else if (key_is(k, "tomb")) {
                if (v.type != msgpack::type::BOOLEAN) return std::nullopt;
                r.withdrawn = v.via.boolean;
            }  // unknown keys: ignored
        }
        if (version != kRecordVersion || !have_mo || !have_epoch || !have_mac) return std::nullopt;
        return r;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

Blob encode_envelope(const Envelope& e) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(&buf);
    pk.pack_map(3);
    pack_string(pk, "rec");
    pack_bin(pk, e.rec.data(), e.rec.size());
    pack_string(pk, "sig");
    pack_bin(pk, e.sig.data(), e.sig.size());
    pack_string(pk, "cert");
    pack_bin(pk, e.cert.data(), e.cert.size());
    return Blob(reinterpret_cast<const uint8_t*>(buf.data()), reinterpret_cast<const uint8_t*>(buf.data()) + buf.size());
}

std::optional<Envelope> decode_envelope(const uint8_t* p, size_t n) {
    try {
        auto oh = msgpack::unpack(reinterpret_cast<const char*>(p), n);
        const auto& o = oh.get();
        if (o.type != msgpack::type::MAP) return std::nullopt;
        Envelope e;
        for (uint32_t i = 0; i < o.via.map.size; ++i) {
            const auto& k = o.via.map.ptr[i].key;
            const auto& v = o.via.map.ptr[i].val;
            if (key_is(k, "rec")) {
                if (!get_bin(v, e.rec)) return std::nullopt;
            } else if (key_is(k, "sig")) {
                if (!get_bin(v, e.sig)) return std::nullopt;
            } else if (key_is(k, "cert")) {
                if (!get_bin(v, e.cert)) return std::nullopt;
            }
        }
        return e;  // empty fields are reported by the verifier (unsigned)
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

Blob signing_input(const Blob& rec) {
    Blob in(sizeof kSignPrefix + rec.size());
    std::memcpy(in.data(), kSignPrefix, sizeof kSignPrefix);
    if (!rec.empty()) std::memcpy(in.data() + sizeof kSignPrefix, rec.data(), rec.size());
    return in;
}

uint64_t value_id_for(const ::dht::InfoHash& publisher_key_id, Epoch epoch) {
    uint8_t in[::dht::InfoHash::size() + 8];
    std::memcpy(in, publisher_key_id.data(), ::dht::InfoHash::size());
    for (size_t i = 0; i < 8; ++i) in[::dht::InfoHash::size() + i] = uint8_t(epoch >> (56 - 8 * i));
    const auto h = ::dht::InfoHash::get(in, sizeof in);
    uint64_t v = 0;
    for (size_t i = 0; i < 8; ++i) v = (v << 8) | h[i];
    return v == 0 ? 1 : v;
}

uint64_t unix_ms_now() {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
}

}  // namespace lm::dir
