#include "catch.hpp"
#include "common/ring_msg.hpp"
#include "common/types.hpp"

using namespace lm;

TEST_CASE("addresses parse, print and compare", "[types]") {
    auto a = IpAddr::parse("192.0.2.10");
    REQUIRE(a);
    CHECK(a->is_v4());
    CHECK(a->str() == "192.0.2.10");
    CHECK(a->b[0] == 192);
    CHECK(a->b[4] == 0);
    auto b = IpAddr::parse("2001:db8::1");
    REQUIRE(b);
    CHECK(b->is_v6());
    CHECK(b->str() == "2001:db8::1");
    CHECK_FALSE(IpAddr::parse(""));
    CHECK_FALSE(IpAddr::parse("192.0.2"));
    CHECK_FALSE(IpAddr::parse("192.0.2.256"));
    CHECK_FALSE(IpAddr::parse("2001:db8:::1"));
    CHECK_FALSE(IpAddr::parse(std::string(100, '1')));
}

TEST_CASE("prefixes contain what they should and reject host bits", "[types]") {
    auto p = Prefix::parse("192.0.2.0/24");
    REQUIRE(p);
    CHECK(p->contains(*IpAddr::parse("192.0.2.255")));
    CHECK_FALSE(p->contains(*IpAddr::parse("192.0.3.0")));
    CHECK_FALSE(p->contains(*IpAddr::parse("2001:db8::1")));
    auto q = Prefix::parse("2001:db8:1::/49");
    REQUIRE(q);
    CHECK(q->contains(*IpAddr::parse("2001:db8:1:7fff::1")));
    CHECK_FALSE(q->contains(*IpAddr::parse("2001:db8:1:8000::1")));
    CHECK(Prefix::parse("0.0.0.0/0")->contains(*IpAddr::parse("203.0.113.1")));
    CHECK_FALSE(Prefix::parse("192.0.2.1/24"));
    CHECK_FALSE(Prefix::parse("192.0.2.0/33"));
    CHECK_FALSE(Prefix::parse("192.0.2.0/"));
    CHECK_FALSE(Prefix::parse("192.0.2.0"));
    CHECK_FALSE(Prefix::parse("2001:db8::/129"));
}

TEST_CASE("MAC addresses parse strictly", "[types]") {
    auto m = MacAddr::parse("02:00:5E:00:00:01");
    REQUIRE(m);
    CHECK(m->str() == "02:00:5e:00:00:01");
    CHECK_FALSE(m->is_multicast());
    CHECK(MacAddr::parse("33:33:00:00:00:01")->is_multicast());
    CHECK_FALSE(MacAddr::parse("02:00:5e:00:00"));
    CHECK_FALSE(MacAddr::parse("02-00-5e-00-00-01"));
    CHECK_FALSE(MacAddr::parse("02:00:5e:00:00:0g"));
}

TEST_CASE("cache keys separate tenants and families", "[types]") {
    auto a = IpAddr::parse("192.0.2.10").value();
    CHECK_FALSE(EidKey::make(1, a) == EidKey::make(2, a));
    auto k = EidKey::make(0xABCDEF, a);
    CHECK(k.tenant() == 0xABCDEF);
    CHECK(k.family() == Family::V4);
    CHECK(k.ip() == a);
}
