// Catch2 v2 main for the dht suite (no DPDK here).
#define CATCH_CONFIG_MAIN
#include "catch.hpp"
