#!/usr/bin/env bash
# Builds the LM Router test guest from installed Debian packages only:
#
#   scripts/vm/build-guest.sh OUTDIR
#
#   OUTDIR/vmlinuz      the kernel of linux-image-amd64 (/boot/vmlinuz-VERSION, copied)
#   OUTDIR/initrd.img   gzip'd cpio (newc): busybox-static (all applets), the virtio-net modules
#                       of that kernel with all their dependencies (uncompressed), /init
#                       (guest-init.sh) and lm-guest-agent (lm-guest-agent.c, linked statically)
#   OUTDIR/guest.json   what was built: kernel version, modules in load order, input hash, times
#
# Boot it with: -kernel OUTDIR/vmlinuz -initrd OUTDIR/initrd.img -append "console=ttyS0 lm.ip4=..."
# (guest-init.sh lists the lm.* keys; test/vm/vmlib.py does all of this).
#
# Idempotent and cached: the inputs (this script, guest-init.sh, lm-guest-agent.c, kernel, busybox,
# module files, compiler version) are hashed; when OUTDIR/guest.json has the same hash nothing is
# rebuilt ("cached" on stdout, ~50 ms). Concurrent runs on one OUTDIR are serialized (flock).
#
# Environment: LM_VM_KERNEL=/boot/vmlinuz-X (default: the newest /boot/vmlinuz-* that has
# /lib/modules/X), LM_VM_MODULES="extra modules" (added to virtio_net virtio_pci), CC (default cc).
# Needs: linux-image-amd64, busybox-static, kmod (modinfo), cpio, gzip, a C compiler with a static
# libc (gcc + libc6-dev); xz-utils / zstd only for kernels whose modules are compressed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:?usage: build-guest.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
t0=$(date +%s.%N)

die() { echo "build-guest: $*" >&2; exit 1; }

# --- inputs -----------------------------------------------------------------------------------
if [[ -n "${LM_VM_KERNEL:-}" ]]; then
    KERNEL=$LM_VM_KERNEL
else
    KERNEL=
    for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
        if [[ -d /lib/modules/${k#/boot/vmlinuz-} ]]; then KERNEL=$k; break; fi
    done
fi
[[ -n "$KERNEL" && -r "$KERNEL" ]] || die "no kernel in /boot (apt-get install linux-image-amd64)"
KVER=${KERNEL#/boot/vmlinuz-}
[[ -d /lib/modules/$KVER ]] || die "no /lib/modules/$KVER for $KERNEL"

BUSYBOX=
for b in /bin/busybox /usr/bin/busybox; do [[ -x $b ]] && BUSYBOX=$b && break; done
[[ -n "$BUSYBOX" ]] || die "no busybox (apt-get install busybox-static)"
if command -v readelf >/dev/null && readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
    die "$BUSYBOX is dynamically linked (apt-get install busybox-static)"
fi
command -v modinfo >/dev/null || die "no modinfo (apt-get install kmod)"
command -v cpio >/dev/null || die "no cpio (apt-get install cpio)"
CC=${CC:-cc}
command -v "$CC" >/dev/null || die "no C compiler '$CC' (apt-get install gcc libc6-dev)"

# Modules: virtio-net over PCI and everything they depend on, dependencies first (modinfo reads
# modules.dep's view of each .ko; built-in modules are skipped).
WANT=(virtio_net virtio_pci ${LM_VM_MODULES:-})
declare -A SEEN=() FILE=()
ORDER=()
visit() {   # visit MODULE [optional]
    local m=$1 f deps d
    [[ -n "${SEEN[$m]:-}" ]] && return 0
    SEEN[$m]=1
    f=$(modinfo -k "$KVER" -F filename "$m" 2>/dev/null | head -n1) || true
    if [[ -z "$f" ]]; then
        [[ -n "${2:-}" ]] && return 0
        die "module $m not found for kernel $KVER"
    fi
    if [[ "$f" == "(builtin)" ]]; then return 0; fi
    deps=$(modinfo -k "$KVER" -F depends "$m" 2>/dev/null | tr ',' ' ')
    for d in $deps; do visit "${d//-/_}"; done
    # softdep "pre:" modules (none for virtio today) load first too, when they exist
    for d in $(modinfo -k "$KVER" -F softdep "$m" 2>/dev/null \
               | awk '{p = 0; for (i = 1; i <= NF; i++) { if ($i == "pre:") p = 1; else if ($i == "post:") p = 0; else if (p) print $i } }'); do
        visit "${d//-/_}" optional
    done
    FILE[$m]=$f
    ORDER+=("$m")
}
for m in "${WANT[@]}"; do visit "$m"; done

HASH=$( {
    sha256sum "${BASH_SOURCE[0]}" "$HERE/guest-init.sh" "$HERE/lm-guest-agent.c" "$KERNEL" "$BUSYBOX" \
        $(for m in "${ORDER[@]}"; do echo "${FILE[$m]}"; done) | awk '{print $1}'
    echo "$KVER ${ORDER[*]}"
    "$CC" --version | head -n1
} | sha256sum | awk '{print $1}')

exec 9>"$OUT/.lock"
flock 9
if [[ -f "$OUT/guest.json" && -f "$OUT/vmlinuz" && -f "$OUT/initrd.img" ]] \
    && grep -q "\"hash\": \"$HASH\"" "$OUT/guest.json" \
    && { ! grep -q '"boot_kernel": "vmlinux"' "$OUT/guest.json" || [[ -f "$OUT/vmlinux" ]]; }; then
    echo "cached $OUT (kernel $KVER, hash ${HASH:0:12})"
    exit 0
fi

# --- build ------------------------------------------------------------------------------------
STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,lib/modules}
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [[ "$a" == busybox ]] || ln -s busybox "$R/bin/$a"
done
ln -s ../bin/busybox "$R/sbin/init"   # (unused: /init is the script)
install -m 0755 "$HERE/guest-init.sh" "$R/init"
"$CC" -static -Os -s -Wall -Wextra -o "$R/bin/lm-guest-agent" "$HERE/lm-guest-agent.c" \
    || die "compiling lm-guest-agent failed (a static libc is needed: apt-get install libc6-dev)"

: > "$R/etc/lm-modules"
for m in "${ORDER[@]}"; do
    f=${FILE[$m]}
    case "$f" in
        *.ko) cp "$f" "$R/lib/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$f" > "$R/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" > "$R/lib/modules/$m.ko" ;;
        *.ko.gz) gzip -dc "$f" > "$R/lib/modules/$m.ko" ;;
        *) die "unknown module format: $f" ;;
    esac
    echo "$m" >> "$R/etc/lm-modules"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "lm-guest" > "$R/etc/hostname"

# reproducible archive: fixed owner and mtime, sorted names, no gzip timestamp
find "$R" -exec touch -h -d @1 {} +
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) \
    | gzip -n -6 > "$STAGE/initrd.img"
cp "$KERNEL" "$STAGE/vmlinuz"

# PVH: the uncompressed ELF kernel, which QEMU boots directly (-kernel vmlinux finds its
# XEN_ELFNOTE_PHYS32_ENTRY note). Under TCG this saves the guest's own decompression of the
# bzImage (XZ for Debian: ~3-6 s of a 5-13 s boot). Falls back to the bzImage when the payload
# cannot be found or the ELF has no PVH entry.
extract_vmlinux() {   # extract_vmlinux BZIMAGE OUT
    local magic cmd off
    for pair in '\xfd7zXZ\x00:xz -dc' '\x28\xb5\x2f\xfd:zstd -qdc' '\x1f\x8b\x08:gzip -dc' '\x02\x21\x4c\x18:lz4 -dc'; do
        magic=${pair%%:*}
        cmd=${pair#*:}
        command -v "${cmd%% *}" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "$magic" "$1" 2>/dev/null | head -n 4 | cut -d: -f1); do
            tail -c +$((off + 1)) "$1" | $cmd > "$2" 2>/dev/null || true
            if [[ "$(head -c 4 "$2" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]]; then
                return 0
            fi
        done
    done
    rm -f "$2"
    return 1
}
BOOT=vmlinuz
if command -v readelf >/dev/null && extract_vmlinux "$KERNEL" "$STAGE/vmlinux"; then
    # note type 0x12 = XEN_ELFNOTE_PHYS32_ENTRY
    if readelf -n "$STAGE/vmlinux" 2>/dev/null | grep -q 'Xen.*0x00000012'; then
        BOOT=vmlinux
    else
        rm -f "$STAGE/vmlinux"
    fi
fi

t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
mods=$(printf '"%s", ' "${ORDER[@]}")
cat > "$STAGE/guest.json" <<EOF
{"hash": "$HASH", "kernel": "$KERNEL", "kernel_version": "$KVER", "busybox": "$BUSYBOX", "boot_kernel": "$BOOT",
 "modules": [${mods%, }], "initrd_bytes": $(stat -c %s "$STAGE/initrd.img"),
 "built": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "build_seconds": $secs}
EOF
mv -f "$STAGE/vmlinuz" "$OUT/vmlinuz"
if [[ $BOOT == vmlinux ]]; then mv -f "$STAGE/vmlinux" "$OUT/vmlinux"; else rm -f "$OUT/vmlinux"; fi
mv -f "$STAGE/initrd.img" "$OUT/initrd.img"
mv -f "$STAGE/guest.json" "$OUT/guest.json"   # last: it marks the build complete
echo "built $OUT in ${secs} s (kernel $KVER booted as $BOOT, modules: ${ORDER[*]}, initrd $(stat -c %s "$OUT/initrd.img") bytes)"
