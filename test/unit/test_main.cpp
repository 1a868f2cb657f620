// Catch2 runner for the unit suite. One EAL per process: --no-huge and no shared config, so
// tests never need hugepages, PCI devices or root-owned runtime files of another process.
#define CATCH_CONFIG_RUNNER
#include "catch.hpp"

#include <rte_eal.h>

#include <cstdio>

int main(int argc, char** argv) {
    char a0[] = "unit-tests", a1[] = "--no-huge", a2[] = "--no-pci", a3[] = "-m", a4[] = "256", a5[] = "--no-shconf",
         a6[] = "--log-level=lib.eal:error", a7[] = "-l", a8[] = "0", a9[] = "--no-telemetry";
    char* eal_argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9};
    if (rte_eal_init(int(std::size(eal_argv)), eal_argv) < 0) {
        std::fprintf(stderr, "unit-tests: EAL initialisation failed\n");
        return 1;
    }
    int rc = Catch::Session().run(argc, argv);
    rte_eal_cleanup();
    return rc;
}
