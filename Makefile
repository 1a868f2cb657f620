# Front door. `make demo` and `make test` install what is missing, configure, build and run.
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_OPTS ?=

.PHONY: all deps build demo demo-vm test test-asan bench bench-report clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --werror $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	bash scripts/demo.sh $(BUILD)

# The VM live-migration demo (issue 7, docs/vm-migration.md): report, plot, one JSON line (~15 s).
demo-vm: build
	$(if $(filter 0,$(shell id -u)),,sudo) /usr/bin/python3 test/vm/demo_vm_migration.py \
	  --router $(BUILD)/lm-router --plot $(BUILD)/vm-migration.png

test: build
	meson test -C $(BUILD) --print-errorlogs

# Unit suite under AddressSanitizer + UndefinedBehaviorSanitizer. g++ 12 reports false
# -Wmaybe-uninitialized inside libstdc++'s <regex> (used by Catch2) when sanitizers are on.
# Alignment checks are off: x86 loads unaligned words by design and DPDK's CRC hash
# (rte_hash_crc) and our header parsing read packet bytes at 2-byte-aligned offsets.
$(ASAN_BUILD)/build.ninja: | deps
	meson setup $(ASAN_BUILD) --werror -Db_sanitize=address,undefined -Db_lundef=false \
	  "-Dcpp_args=['-Wno-maybe-uninitialized','-fno-sanitize=alignment']" \
	  -Dcpp_link_args=-fno-sanitize=alignment

test-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) unit-tests
	LSAN_OPTIONS=suppressions=$(CURDIR)/test/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	meson test -C $(ASAN_BUILD) --suite unit --print-errorlogs --no-rebuild

bench: build
	$(BUILD)/bench/lm-bench fastpath

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# Scaling sweeps of lm-bench (fast path vs MOs/burst/size/family/workers, resolve vs DHT nodes,
# handover vs ARs) into $(BUILD)/bench-report/*.csv and docs/img/bench-*.png (gnuplot).
# Quick: ~7 min on 2 vCPUs; FULL=1 for the full grids (real hardware).
bench-report: build
	bash bench/report/run_report.sh $(BUILD)
