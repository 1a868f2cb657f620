#!/usr/bin/python3
"""LM Router forwarding demo: two access routers back to back, played with pcap files.

cn (192.0.2.10, 2001:db8:1::10) sits behind AR1, the MO (192.0.2.20, 2001:db8:1::20) behind AR2:
same prefix, different sites. cn sends a sequence-numbered UDP stream to the MO over IPv4 and
IPv6; AR1 encapsulates (4in4 and 6in6), the WAN hands AR1's core output to AR2, AR2 decapsulates
and delivers to the MO, whose replies take the way back. The report shows what each host sent
and received, each router's counters, and a verdict.

(The network-namespace test bed with live hosts and the live-migration demo replace this once
they land; this demo needs nothing but the router binary and scapy.)
"""
import argparse, json, os, re, signal, subprocess, sys, tempfile, time

from scapy.all import Ether, IP, IPv6, UDP, Raw, ARP, rdpcap, wrpcap, PcapWriter  # noqa: E402

GW_MAC = "02:00:5e:00:00:01"
CN_MAC, MO_MAC = "02:00:00:00:00:10", "02:00:00:00:00:20"
AR1_CORE, AR2_CORE = "02:00:00:00:0c:01", "02:00:00:00:0c:02"
CN4, CN6, MO4, MO6 = "192.0.2.10", "2001:db8:1::10", "192.0.2.20", "2001:db8:1::20"
N = 200  # packets per family and direction

CONFIG = """
router: {{ name: {name}, workers: 1 }}
locators: {{ v4: {loc4}, v6: {loc6} }}
gateway: {{ ipv4: 192.0.2.1, ipv6: 2001:db8:1::1, mac: {gw} }}
ports:
  - {{ name: access0, device: net_pcap0, role: access, tenant: 1 }}
  - {{ name: core0, device: net_pcap1, role: core, mac: {core_mac} }}
core:
  next_hop: {{ ipv4: {peer4}, ipv6: {peer6}, mac: {peer_mac} }}
mobile_prefixes: [192.0.2.0/24, 2001:db8:1::/64]
peer_prefixes: [198.51.100.0/24, 2001:db8:100::/48]
static_attachments:
  - {{ tenant: 1, mo_id: {self_mo}, eids: [{self4}, {self6}], mac: {self_mac}, port: access0 }}
static_mappings:
  - {{ tenant: 1, eid: {other4}, mo_id: {other_mo}, locator: {peer4}, epoch: 1 }}
  - {{ tenant: 1, eid: {other6}, mo_id: {other_mo}, locator: {peer6}, epoch: 1 }}
"""


def config(name, me, peer):
    return CONFIG.format(name=name, gw=GW_MAC, **me, peer4=peer["loc4"], peer6=peer["loc6"], peer_mac=peer["core_mac"],
                         other_mo=peer["self_mo"], other4=peer["self4"], other6=peer["self6"])


AR1 = dict(loc4="198.51.100.1", loc6="2001:db8:100::1", core_mac=AR1_CORE, self_mo="0x10", self4=CN4, self6=CN6, self_mac=CN_MAC)
AR2 = dict(loc4="198.51.100.2", loc6="2001:db8:100::2", core_mac=AR2_CORE, self_mo="0x20", self4=MO4, self6=MO6, self_mac=MO_MAC)


def stream(src_mac, s4, d4, s6, d6, tag):
    pkts = [Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=src_mac, psrc=s4, pdst="192.0.2.1")]
    for i in range(N):
        pkts.append(Ether(src=src_mac, dst=GW_MAC) / IP(src=s4, dst=d4) / UDP(sport=5000, dport=6000) / Raw(f"{tag}4 {i:06d}".encode()))
        pkts.append(Ether(src=src_mac, dst=GW_MAC) / IPv6(src=s6, dst=d6) / UDP(sport=5000, dport=6000) / Raw(f"{tag}6 {i:06d}".encode()))
    return pkts


def write(path, pkts):
    w = PcapWriter(path, linktype=1, sync=True)
    for p in pkts:
        w.write(p)
    w.close()


def run_router(router, workdir, name, cfg, acc_in, core_in):
    cfg_path = os.path.join(workdir, f"{name}.yaml")
    with open(cfg_path, "w") as f:
        f.write(cfg)
    acc_out, core_out = os.path.join(workdir, f"{name}-access-out.pcap"), os.path.join(workdir, f"{name}-core-out.pcap")
    cmd = [router, "--no-huge", "--no-pci", "-m", "128", "--no-shconf", "--no-telemetry", "-l", "0-1", "--log-level=lib.eal:error",
           "--vdev", f"net_pcap0,rx_pcap={acc_in},tx_pcap={acc_out}",
           "--vdev", f"net_pcap1,rx_pcap={core_in},tx_pcap={core_out}", "--", "--config", cfg_path]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise SystemExit(f"demo: {name} did not stop on SIGTERM\n{err}")
    if p.returncode != 0:
        raise SystemExit(f"demo: {name} failed (exit {p.returncode})\n{err}")
    m = re.search(r"final counters: (\{.*\})", err)
    counters = json.loads(m.group(1)) if m else {}
    return rdpcap(acc_out), rdpcap(core_out), counters


def received(pkts, dst_mac, tag):
    seqs = {"4": set(), "6": set()}
    for p in pkts:
        if p[Ether].dst == dst_mac and p.haslayer(UDP) and p.haslayer(Raw):
            m = re.match(rf"{tag}([46]) (\d+)", p[Raw].load.decode(errors="replace"))
            if m:
                seqs[m.group(1)].add(int(m.group(2)))
    return seqs


def show(name, c):
    keys = ["access0_rx", "access0_tx", "core0_rx", "core0_tx", "encap", "decap", "arp_reply", "cache_hit", "cache_miss"]
    drops = {k[5:]: v for k, v in c.items() if k.startswith("drop_") and v}
    print(f"  {name}: " + ", ".join(f"{k}={c.get(k, 0)}" for k in keys) + f", drops={drops or 0}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--router", default=os.path.join(os.path.dirname(__file__), "..", "build", "lm-router"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lm-demo-") as d:
        empty = os.path.join(d, "empty.pcap")
        write(empty, [])
        cn_tx, mo_tx = os.path.join(d, "cn-tx.pcap"), os.path.join(d, "mo-tx.pcap")
        write(cn_tx, stream(CN_MAC, CN4, MO4, CN6, MO6, "cn"))
        write(mo_tx, stream(MO_MAC, MO4, CN4, MO6, CN6, "mo"))
        print("LM Router demo: cn behind AR1, MO behind AR2, static mappings, pcap-played WAN")
        # cn -> AR1 (encap) -> WAN -> AR2 (decap) -> MO; the MO's replies go back the same way.
        acc1, wan12, c1 = run_router(a.router, d, "ar1", config("ar1", AR1, AR2), cn_tx, empty)
        wan12_path = os.path.join(d, "wan-1to2.pcap")
        write(wan12_path, wan12)
        acc2, wan21, c2 = run_router(a.router, d, "ar2", config("ar2", AR2, AR1), mo_tx, wan12_path)
        wan21_path = os.path.join(d, "wan-2to1.pcap")
        write(wan21_path, wan21)
        acc1b, _, c1b = run_router(a.router, d, "ar1", config("ar1", AR1, AR2), empty, wan21_path)

        at_mo, at_cn = received(acc2, MO_MAC, "cn"), received(acc1b, CN_MAC, "mo")
        lm_frames = [p for p in wan12 + wan21 if p.haslayer(UDP) and p[UDP].dport == 4341]
        print(f"\n  cn sent {N} IPv4 + {N} IPv6 datagrams; the MO received {len(at_mo['4'])} + {len(at_mo['6'])}")
        print(f"  MO sent {N} IPv4 + {N} IPv6 datagrams; cn received {len(at_cn['4'])} + {len(at_cn['6'])}")
        print(f"  WAN carried {len(lm_frames)} LM-encapsulated frames (UDP 4341), e.g.:")
        for p in lm_frames[:1] + lm_frames[N + 1:N + 2]:
            raw = bytes(p[UDP].payload)
            print(f"    {p.summary()}  tenant={int.from_bytes(raw[4:7], 'big')} mo_id={int.from_bytes(raw[8:16], 'big'):#x} "
                  f"epoch={int.from_bytes(raw[16:24], 'big')}")
        print("\n  router counters:")
        show("AR1 (cn->MO)", c1)
        show("AR2 (both)  ", c2)
        show("AR1 (MO->cn)", c1b)
        ok = all(len(s) == N for s in list(at_mo.values()) + list(at_cn.values()))
        print(f"\nVERDICT: {'PASS' if ok else 'FAIL'}: {'every datagram arrived, both ways, IPv4 and IPv6' if ok else 'datagrams were lost'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
