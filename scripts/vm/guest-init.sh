#!/bin/sh
# /init of the LM Router test guest (scripts/vm/build-guest.sh puts it in the initramfs).
# Busybox only. Configuration from the kernel command line (every key optional):
#   lm.ip4=192.0.2.20/24      IPv4 EID (a /32 gets an on-link route to the gateway)
#   lm.gw4=192.0.2.1          IPv4 default gateway (the ARs' anycast gateway)
#   lm.ip6=2001:db8:1::20/64  IPv6 EID (a /128 gets an on-link route to the gateway)
#   lm.gw6=2001:db8:1::1      IPv6 default gateway
#   lm.tcp=7000 lm.rate=100   sequence-numbered TCP stream (port, lines/s); 0 = off
#   lm.echo=7001              UDP echo port; 0 = off
#   lm.sink=7002              UDP sink port (counts the e2e "LMSQ" stream; STAT queries); 0 = off
#   lm.mtu=1500               eth0 MTU
#   lm.ll=0                   no IPv6 link-local address on eth0 (default 1: like any VM; after a
#                             migration the guest's unsolicited NAs then cover the EID only)
#   lm.shell=1                a shell on the console after start-up (stdin of the console)
# The MAC is QEMU's (-device virtio-net-pci,mac=...). The console shows "LM-GUEST-READY ..." once
# eth0 is configured and the responders run; vmlib.py waits for that line.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t devtmpfs dev /dev 2>/dev/null
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /tmp /run
mount -t tmpfs tmp /tmp

echo "lm-guest: init at $(cut -d' ' -f1 /proc/uptime) s"

IP4= GW4= IP6= GW6= TCP=7000 RATE=100 ECHO=7001 SINK=7002 MTU= SHELL=0 LL=1
for w in $(cat /proc/cmdline); do
    case "$w" in
        lm.ip4=*) IP4=${w#lm.ip4=} ;;
        lm.gw4=*) GW4=${w#lm.gw4=} ;;
        lm.ip6=*) IP6=${w#lm.ip6=} ;;
        lm.gw6=*) GW6=${w#lm.gw6=} ;;
        lm.tcp=*) TCP=${w#lm.tcp=} ;;
        lm.rate=*) RATE=${w#lm.rate=} ;;
        lm.echo=*) ECHO=${w#lm.echo=} ;;
        lm.sink=*) SINK=${w#lm.sink=} ;;
        lm.mtu=*) MTU=${w#lm.mtu=} ;;
        lm.shell=*) SHELL=${w#lm.shell=} ;;
        lm.ll=*) LL=${w#lm.ll=} ;;
    esac
done

# IPv6 before the NIC exists, so eth0 inherits it from "default": no DAD (the EID is ours; a
# migrated guest never reruns it anyway), no router solicitations, no SLAAC.
for k in all default; do
    sysctl -q -w net.ipv6.conf.$k.accept_dad=0 net.ipv6.conf.$k.dad_transmits=0 \
        net.ipv6.conf.$k.router_solicitations=0 net.ipv6.conf.$k.accept_ra=0 \
        net.ipv6.conf.$k.autoconf=0 >/dev/null 2>&1
    [ "$LL" = 0 ] && sysctl -q -w net.ipv6.conf.$k.addr_gen_mode=1 >/dev/null 2>&1
done

# virtio modules, dependencies first (order written by build-guest.sh)
while read -r m; do
    [ -z "$m" ] && continue
    insmod "/lib/modules/$m.ko" || echo "lm-guest: insmod $m failed"
done < /etc/lm-modules

ip link set lo up
IF=
i=0
while [ $i -lt 100 ]; do
    for d in /sys/class/net/*; do
        n=${d##*/}
        [ "$n" != lo ] && IF=$n && break
    done
    [ -n "$IF" ] && break
    i=$((i + 1))
    usleep 20000
done
if [ -z "$IF" ]; then
    echo "lm-guest: no network interface"
else
    [ "$IF" != eth0 ] && ip link set "$IF" name eth0 && IF=eth0
    [ -n "$MTU" ] && ip link set eth0 mtu "$MTU"
    ip link set eth0 up
    if [ -n "$IP4" ]; then
        ip addr add "$IP4" dev eth0
        if [ -n "$GW4" ]; then
            case "$IP4" in */*) [ "${IP4#*/}" = 32 ] && ip route add "$GW4" dev eth0 ;; *) ip route add "$GW4" dev eth0 ;; esac
            ip route add default via "$GW4" dev eth0
        fi
    fi
    if [ -n "$IP6" ]; then
        ip -6 addr add "$IP6" dev eth0
        if [ -n "$GW6" ]; then
            case "$IP6" in */*) [ "${IP6#*/}" = 128 ] && ip -6 route add "$GW6" dev eth0 ;; *) ip -6 route add "$GW6" dev eth0 ;; esac
            ip -6 route add default via "$GW6" dev eth0
        fi
    fi
fi

# responders (restarted if they die)
(
    while :; do
        /bin/lm-guest-agent --tcp "$TCP" --rate "$RATE" --echo "$ECHO" --sink "$SINK"
        echo "lm-guest: agent exited ($?), restarting"
        sleep 1
    done
) &

MAC=$(cat /sys/class/net/eth0/address 2>/dev/null)
echo "LM-GUEST-READY uptime=$(cut -d' ' -f1 /proc/uptime) if=$IF mac=$MAC ip4=$IP4 ip6=$IP6 tcp=$TCP echo=$ECHO sink=$SINK"

if [ "$SHELL" = 1 ]; then
    while :; do /bin/sh; done
fi
while :; do sleep 3600; done
