// FlatTable (dataplane/flat_table.hpp): the locator cache's and attachment table's exact-match
// table, checked against std::map under random upserts, erases and bulk lookups, in tables
// small enough that keys share buckets, probe past their home bucket and wrap around.
#include <map>
#include <random>
#include <vector>

#include "catch.hpp"
#include "dataplane/locator_cache.hpp"

using namespace lm;

namespace {

EidKey key_of(uint32_t i) {
    IpAddr a;
    a.family = Family::V6;
    a.b[0] = 0x20;
    a.b[1] = 0x01;
    a.b[2] = 0x0d;
    a.b[3] = 0xb8;
    a.b[12] = uint8_t(i >> 24);
    a.b[13] = uint8_t(i >> 16);
    a.b[14] = uint8_t(i >> 8);
    a.b[15] = uint8_t(i);
    return EidKey::make(1 + (i & 3), a);
}

MappingValue value_of(uint32_t i, uint64_t gen) {
    MappingValue v;
    v.mo_id = i;
    v.epoch = gen;
    return v;
}

std::string uniq(const char* base) {
    static int n = 0;
    return std::string(base) + std::to_string(n++);
}

}  // namespace

TEST_CASE("flat table: exactly `entries` keys fit, then upsert refuses; erase makes room", "[flat_table]") {
    for (uint32_t cap : {1u, 7u, 64u, 1000u}) {
        LocatorCache t(uniq("ft_cap"), cap, 0);
        CHECK(t.capacity() == cap);
        for (uint32_t i = 0; i < cap; ++i) REQUIRE(t.upsert(key_of(i), value_of(i, 1)));
        CHECK(t.size() == cap);
        CHECK_FALSE(t.upsert(key_of(cap), value_of(cap, 1)));
        CHECK(t.lookup(key_of(cap)) == nullptr);
        // Replacing a key that is there needs no room.
        REQUIRE(t.upsert(key_of(0), value_of(0, 2)));
        REQUIRE(t.lookup(key_of(0)));
        CHECK(t.lookup(key_of(0))->epoch == 2);
        for (uint32_t i = 0; i < cap; ++i) {
            const MappingValue* v = t.lookup(key_of(i));
            REQUIRE(v);
            CHECK(v->mo_id == i);
        }
        t.erase(key_of(cap / 2));
        CHECK(t.size() == cap - 1);
        CHECK(t.lookup(key_of(cap / 2)) == nullptr);
        REQUIRE(t.upsert(key_of(cap), value_of(cap, 1)));
        CHECK(t.lookup(key_of(cap))->mo_id == cap);
        t.erase(key_of(cap + 100));  // absent: nothing happens
        CHECK(t.size() == cap);
    }
}

TEST_CASE("flat table: random upserts, erases and bulk lookups agree with std::map", "[flat_table]") {
    // 64 entries in 16 buckets: half the slots in use at most, so keys collide, probe past
    // their home bucket and wrap around the end of the bucket array; erasing from the middle
    // of a probe chain must not hide the keys behind it.
    const uint32_t cap = 64;
    LocatorCache t(uniq("ft_rand"), cap, 0);
    std::map<uint32_t, uint64_t> model;
    std::mt19937 rng(12345);
    const uint32_t universe = 200;  // keys drawn from here: a third are never present at once
    for (uint64_t op = 1; op <= 200000; ++op) {
        const uint32_t k = rng() % universe;
        const unsigned what = rng() % 8;
        if (what < 4) {
            const bool ok = t.upsert(key_of(k), value_of(k, op));
            const bool fits = model.count(k) || model.size() < cap;
            REQUIRE(ok == fits);
            if (ok) model[k] = op;
        } else if (what < 7) {
            t.erase(key_of(k));
            model.erase(k);
        } else {
            // A bulk lookup of up to kMaxBulk keys, present and absent mixed.
            const unsigned n = 1 + rng() % LocatorCache::kMaxBulk;
            std::vector<EidKey> keys(n);
            std::vector<const EidKey*> ptrs(n);
            std::vector<const MappingValue*> out(n);
            for (unsigned i = 0; i < n; ++i) {
                keys[i] = key_of(rng() % universe);
                ptrs[i] = &keys[i];
            }
            t.lookup_bulk(ptrs.data(), n, out.data());
            for (unsigned i = 0; i < n; ++i) {
                const uint32_t id = uint32_t(keys[i].ip().b[12]) << 24 | uint32_t(keys[i].ip().b[13]) << 16 |
                                    uint32_t(keys[i].ip().b[14]) << 8 | keys[i].ip().b[15];
                auto it = model.find(id);
                if (it == model.end()) {
                    REQUIRE(out[i] == nullptr);
                } else {
                    REQUIRE(out[i]);
                    REQUIRE(out[i]->mo_id == id);
                    REQUIRE(out[i]->epoch == it->second);
                }
            }
        }
        REQUIRE(t.size() == model.size());
    }
    // Everything out again: no key is found, and the table takes `cap` fresh keys.
    for (uint32_t k = 0; k < universe; ++k) t.erase(key_of(k));
    CHECK(t.size() == 0);
    for (uint32_t k = 0; k < universe; ++k) CHECK(t.lookup(key_of(k)) == nullptr);
    for (uint32_t k = 1000; k < 1000 + cap; ++k) REQUIRE(t.upsert(key_of(k), value_of(k, 1)));
    for (uint32_t k = 1000; k < 1000 + cap; ++k) REQUIRE(t.lookup(key_of(k)));
}

TEST_CASE("flat table: the attachment table keys on (tenant, MO id)", "[flat_table]") {
    AttachmentTable t(uniq("ft_att"), 16, 0);
    Attachment a;
    a.port_index = 3;
    a.epoch = 77;
    REQUIRE(t.upsert(AttachKey::make(5, 0x30), a));
    CHECK(t.lookup(AttachKey::make(5, 0x31)) == nullptr);
    CHECK(t.lookup(AttachKey::make(6, 0x30)) == nullptr);
    const Attachment* got = t.lookup(AttachKey::make(5, 0x30));
    REQUIRE(got);
    CHECK(got->port_index == 3);
    CHECK(got->epoch == 77);
    CHECK(reinterpret_cast<uintptr_t>(got) % 64 == 0);  // one line per value
}
