#!/usr/bin/env bash
# Installs every build, test and demo dependency from Debian 12's archive.
# Idempotent and quiet when everything is already there.
set -euo pipefail

PKGS=(
  build-essential g++ meson ninja-build pkg-config
  libdpdk-dev dpdk dpdk-dev            # DPDK 22.11 (rte_hash, rte_ring, net_pcap/null/ring/af_packet), testpmd, telemetry client
  libboost-program-options-dev libyaml-cpp-dev libfmt-dev catch2
  libopendht-dev libgnutls28-dev        # LM DHT (dht/); record signatures with GnuTLS
  libpcap-dev python3-scapy tshark      # packet tests
  iproute2 ethtool iperf3 procps        # netns end-to-end tests
  openssl                               # lmctl test checks issued certificates
  lua5.4 python3-yaml                   # pktgen-scenarios/ checks (luac5.4 -p, configs)
  gnuplot-nox fonts-dejavu-core         # make bench-report, make demo-vm: PNG plots (pngcairo)
  qemu-system-x86 linux-image-amd64     # VM live migration (test/vm, make demo-vm): a TCG guest
  busybox-static cpio kmod xz-utils     #   from Debian's kernel and busybox (scripts/vm/build-guest.sh)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections || true
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
