"""The addressing plan of the LM Router traffic scenarios, and the packets that follow from it.

One module holds every address, MAC and MO identifier the scenarios use, so the pcaps
(make_pcaps.py), the router configurations (make_configs.py), the TRex profiles (trex/) and the
migration storm (migration-storm.sh, whose mo() mirrors local_mo_id(), local_mac() and mo_eids())
cannot drift apart (test/scenarios/check_scenarios.py compares them).
README.md has the same plan as tables.

Only documentation addresses (RFC 5737, RFC 3849). IPv4 therefore has room for 250 MOs per role
(one /24 each); IPv6 for 2^24.

    role          IPv4                         IPv6                            MO id        MAC
    local MO i    192.0.2.(1+i), i < 250       2001:db8:1::/64, host 0x100+i   0x100000+i   02:01:00 + i (24 bits)
    remote MO i   203.0.113.(1+i), i < 250     2001:db8:3::/64, host 0x100+i   0x200000+i   02:02:00 + i
    miss EID j    198.51.100.(129+j), j < 126  2001:db8:4::/64, host 0x100+j   (nobody publishes them)
    core network  198.51.100.0/25              2001:db8:100::/64

"Local" MOs are attached to the router under test (DUT, or ar1 of the router pair), behind its
access port; "remote" MOs are attached to the peer AR (emulated by the traffic generator in the
single-router setup, ar2 in the pair). Miss EIDs are inside a mobile prefix but nobody publishes
them: every packet to one is a cache miss.

Also here: the LM header and flow hash of docs/protocol.md (sections 3 and 4), frame sizes and
IMIX, the EID distributions, scapy packet builders and a byte-exact pcap writer.

Python 3.6 compatible (TRex's Python imports this module through trex/lm_stl.py).
"""

import bisect
import ipaddress
import struct

# ---- Constants of the plan ---------------------------------------------------------------------

TENANT = 1                          # tenant of the access ports and of every MO
UDP_PORT = 4341                     # router.udp_port (protocol.md section 3)
EPOCH = 0                           # epoch the emulated peer AR sends (a static mapping's default)

GATEWAY_MAC = "02:00:5e:00:00:01"   # anycast gateway MAC: destination of everything sent to an access port
GATEWAY_V4 = "192.0.2.254"
GATEWAY_V6 = "2001:db8:1::1"

DUT_CORE_MAC = "02:00:00:00:01:01"  # core port MAC of the single router (configured, ports[].mac)
GEN_CORE_MAC = "02:00:00:00:00:fe"  # the generator's core-side port = the router's core next hop
NEXT_HOP_V4 = "198.51.100.126"
NEXT_HOP_V6 = "2001:db8:100::fe"

# Locators (outer addresses) on the core network 198.51.100.0/25, 2001:db8:100::/64.
LOCATORS = {
    "dut": ("198.51.100.1", "2001:db8:100::1"),   # the single router, and ar1 of the pair
    "peer": ("198.51.100.2", "2001:db8:100::2"),  # the peer AR the generator plays (single router)
    "ar2": ("198.51.100.3", "2001:db8:100::3"),   # the second router of the pair
}
CORE_V4 = "198.51.100.0/25"
CORE_V6 = "2001:db8:100::/64"

LOCAL_V4_NET, LOCAL_V6_NET = "192.0.2.0/24", "2001:db8:1::/64"
REMOTE_V4_NET, REMOTE_V6_NET = "203.0.113.0/24", "2001:db8:3::/64"
MISS_V4_NET, MISS_V6_NET = "198.51.100.128/25", "2001:db8:4::/64"
MOBILE_PREFIXES = [LOCAL_V4_NET, REMOTE_V4_NET, MISS_V4_NET, LOCAL_V6_NET, REMOTE_V6_NET, MISS_V6_NET]
PEER_PREFIXES = [CORE_V4, CORE_V6]

V4_MAX = {"local": 250, "remote": 250, "miss": 126}   # what the documentation /24s hold
V6_HOST_BASE = 0x100                                   # IPv6 host part of index 0 (::100)
V6_MAX = 1 << 24                                       # plenty; MACs and MO ids have 24 bits of index

LOCAL_MO_BASE = 0x100000
REMOTE_MO_BASE = 0x200000

# How many MOs the committed router configurations know (the pcaps and profiles stay inside).
CONFIG_LOCAL_MOS = 1024       # attached to the DUT / ar1; the first 250 are dual-stack, the rest IPv6 only
CONFIG_REMOTE_MOS = 4096      # mapped to the peer AR / attached to ar2; the first 250 dual-stack

# Inner UDP of the generated traffic.
DST_PORT = 9                  # discard
SRC_PORT_BASE = 1024          # + destination index: one flow per destination EID


def _v4(net, host):
    return str(ipaddress.IPv4Network(net).network_address + host)


def _v6(net, host):
    return str(ipaddress.IPv6Network(net).network_address + host)


def _check(role, fam, i):
    limit = V4_MAX[role] if fam == "v4" else V6_MAX
    if not 0 <= i < limit:
        raise ValueError("%s %s index %d outside 0..%d (documentation ranges)" % (role, fam, i, limit - 1))


def eid(role, fam, i):
    """The address of MO / miss EID number i of a role ('local', 'remote', 'miss') and family."""
    _check(role, fam, i)
    v4net = {"local": LOCAL_V4_NET, "remote": REMOTE_V4_NET, "miss": MISS_V4_NET}[role]
    v6net = {"local": LOCAL_V6_NET, "remote": REMOTE_V6_NET, "miss": MISS_V6_NET}[role]
    return _v4(v4net, 1 + i) if fam == "v4" else _v6(v6net, V6_HOST_BASE + i)


def eid_index(role, fam, addr):
    """Inverse of eid(): the index of an address, or None when it is not one of the role's EIDs."""
    try:
        if fam == "v4":
            net = ipaddress.IPv4Network({"local": LOCAL_V4_NET, "remote": REMOTE_V4_NET, "miss": MISS_V4_NET}[role])
            a = ipaddress.IPv4Address(addr)
            i = int(a) - int(net.network_address) - 1
        else:
            net = ipaddress.IPv6Network({"local": LOCAL_V6_NET, "remote": REMOTE_V6_NET, "miss": MISS_V6_NET}[role])
            a = ipaddress.IPv6Address(addr)
            i = int(a) - int(net.network_address) - V6_HOST_BASE
    except ValueError:
        return None
    if a not in net:
        return None
    limit = V4_MAX[role] if fam == "v4" else V6_MAX
    return i if 0 <= i < limit else None


def local_mo_id(i):
    return LOCAL_MO_BASE + i


def remote_mo_id(i):
    return REMOTE_MO_BASE + i


def local_mac(i):
    if not 0 <= i < (1 << 24):
        raise ValueError("MO index %d has no MAC" % i)
    return "02:01:00:%02x:%02x:%02x" % ((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)


def remote_mac(i):
    """MAC of remote MO i: only seen in the pair setup, where ar2's access port is its link."""
    if not 0 <= i < (1 << 24):
        raise ValueError("MO index %d has no MAC" % i)
    return "02:02:00:%02x:%02x:%02x" % ((i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)


def mo_mac(role, i):
    return local_mac(i) if role == "local" else remote_mac(i)


def mo_id(role, i):
    return local_mo_id(i) if role == "local" else remote_mo_id(i)


def mo_eids(role, i):
    """Every EID of MO i: IPv4 (if i < 250) and IPv6, in that order."""
    out = [eid(role, "v4", i)] if i < V4_MAX[role] else []
    return out + [eid(role, "v6", i)]


def family_max(role, fam):
    return V4_MAX[role] if fam == "v4" else V6_MAX


# ---- Frame sizes --------------------------------------------------------------------------------
#
# A size is the Ethernet frame on the access link, FCS included (RFC 2544 convention): "64B" is
# a 60-byte frame in a pcap. Decap pcaps use the same label for the inner frame the router
# delivers; their frames on the core link are longer by the outer headers (protocol.md section
# 1: +52 bytes with outer IPv4, +72 with outer IPv6). IPv6 with UDP cannot fit 64 bytes
# (14 + 40 + 8 = 62 before FCS): its smallest size here is 78B (RFC 5180).

FCS = 4
ETH = 14
IMIX_PATTERN = ("S", "M", "S", "M", "S", "S", "M", "S", "S", "M", "S", "L")   # simple IMIX 7:4:1
IMIX_SIZES = {"S": {"v4": 64, "v6": 78}, "M": {"v4": 594, "v6": 594}, "L": {"v4": 1518, "v6": 1518}}
MIN_SIZE = {"v4": 64, "v6": 78}
MAX_SIZE = 1518                     # IP 1500: the access MTU of the configurations


def imix_size(k, fam):
    """Frame size (FCS included) of packet k of an IMIX stream."""
    return IMIX_SIZES[IMIX_PATTERN[k % len(IMIX_PATTERN)]][fam]


def imix_weights(fam):
    """[(frame size, share of packets)] of the simple IMIX: 7 x small, 4 x 594, 1 x 1518."""
    counts = {}
    for c in IMIX_PATTERN:
        counts[IMIX_SIZES[c][fam]] = counts.get(IMIX_SIZES[c][fam], 0) + 1
    return [(s, counts[s] / float(len(IMIX_PATTERN))) for s in sorted(counts)]


def check_size(size, fam):
    if size == "imix":
        return
    if not MIN_SIZE[fam] <= size <= MAX_SIZE:
        raise ValueError("frame size %d outside %d..%d for %s" % (size, MIN_SIZE[fam], MAX_SIZE, fam))


# ---- Distributions ------------------------------------------------------------------------------

ZIPF_S = 1.0


def zipf_weights(n, s=ZIPF_S):
    """Probability of rank r (0-based) = (1 / (r + 1)^s) / H. Rank r is EID / MO index r."""
    w = [1.0 / (r + 1) ** s for r in range(n)]
    total = sum(w)
    return [x / total for x in w]


def zipf_sampler(n, rng, s=ZIPF_S):
    """A function returning Zipf-distributed indices in 0..n-1, drawn from rng.random() only
    (its sequence is the same on every Python version for a given seed)."""
    cum, acc = [], 0.0
    for x in zipf_weights(n, s):
        acc += x
        cum.append(acc)

    def draw():
        return min(bisect.bisect_right(cum, rng.random() * acc), n - 1)
    return draw


def zipf_buckets(n, s=ZIPF_S):
    """The Zipf distribution cut into power-of-two rank ranges [1, 2, 4, 8, ...]:
    [(first index, last index, share of packets)]. Inside a range the generator goes round
    robin, so the head of the distribution is exact and the tail is within a factor 2."""
    w = zipf_weights(n, s)
    out, lo, width = [], 0, 1
    while lo < n:
        hi = min(n, lo + width) - 1
        out.append((lo, hi, sum(w[lo:hi + 1])))
        lo, width = hi + 1, width * 2
    return out


def hot_buckets(n, hot, hot_share):
    """A hot set: indices [0, hot) get hot_share of the packets, the rest the remainder."""
    if not 0 < hot <= n:
        raise ValueError("hot set of %d MOs does not fit %d" % (hot, n))
    if hot == n:
        return [(0, n - 1, 1.0)]
    return [(0, hot - 1, hot_share), (hot, n - 1, 1.0 - hot_share)]


def distribution_buckets(n, dist, zipf_s=ZIPF_S, hot=32, hot_share=0.5):
    if dist == "uniform":
        return [(0, n - 1, 1.0)]
    if dist == "zipf":
        return zipf_buckets(n, zipf_s)
    if dist == "hot":
        return hot_buckets(n, hot, hot_share)
    raise ValueError("distribution must be uniform, zipf or hot, not %r" % dist)


# ---- LM wire format (docs/protocol.md) ----------------------------------------------------------

LM_VERSION = 1
LM_HEADER_LEN = 24
NEXT_PROTO = {"v4": 4, "v6": 41}
OUTER_OVERHEAD = {"v4": 20 + 8 + LM_HEADER_LEN, "v6": 40 + 8 + LM_HEADER_LEN}   # 52 / 72


def lm_header(mo_id, tenant=TENANT, epoch=EPOCH, next_proto=4, flags=0, lm_type=0):
    """The 24-byte LM header (protocol.md section 4)."""
    return struct.pack("!BBBB", (LM_VERSION << 4) | flags, lm_type, next_proto, 0) + \
        struct.pack("!I", tenant << 8)[:4] + struct.pack("!QQ", mo_id, epoch)


def _crc32c_table():
    t = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = _crc32c_table()


def crc32c(data, seed):
    """DPDK's rte_hash_crc: CRC-32C (reflected 0x82F63B78), register = seed, no inversion."""
    c = seed & 0xFFFFFFFF
    for b in bytearray(data):
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c


def flow_hash(inner):
    """pkt::flow_hash of protocol.md section 3 over the bytes of an inner IPv4/IPv6 packet."""
    inner = bytes(inner)
    if inner[0] >> 4 == 4:
        ihl = (inner[0] & 0xF) * 4
        proto, addrs = inner[9], inner[12:20]
        frag_ok = (struct.unpack("!H", inner[6:8])[0] & 0x1FFF) == 0
        l4, v6 = inner[ihl:ihl + 4], False
    else:
        proto, addrs, frag_ok = inner[6], inner[8:40], True
        l4, v6 = inner[40:44], True
    h = crc32c(addrs, proto)
    if proto in (6, 17, 132) and frag_ok and len(l4) == 4:
        h = crc32c(l4, h)
    elif v6:
        h = crc32c(b"\0" + bytes([inner[1] & 0x0F]) + inner[2:4], h)
    return h ^ (h >> 16)


def encap_source_port(h):
    return 49152 | (h & 0x3FFF)


# ---- Packets (scapy) ----------------------------------------------------------------------------


def _scapy():
    # Imported on first use, so make_configs.py and the shell-side tools need no scapy.
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    return Ether, IP, IPv6, UDP, Raw


def ip_udp(fam, src, dst, ip_len, ttl=64, sport=SRC_PORT_BASE, dport=DST_PORT, head=b""):
    """An IPv4 (DF, ID 0) or IPv6 UDP packet of ip_len bytes whose payload is head then zeros;
    checksums computed."""
    _, IP, IPv6, UDP, Raw = _scapy()
    pay = ip_len - (20 if fam == "v4" else 40) - 8
    if pay < len(head):
        raise ValueError("an IP length of %d cannot hold %s + UDP + %d bytes" % (ip_len, fam, len(head)))
    payload = head + bytes(pay - len(head))
    l3 = IP(src=src, dst=dst, ttl=ttl, flags="DF", id=0) if fam == "v4" else IPv6(src=src, dst=dst, hlim=ttl)
    return l3 / UDP(sport=sport, dport=dport) / Raw(payload)


def plain_frame(fam, src, dst, frame_size, src_mac, dst_mac=GATEWAY_MAC, **kw):
    """An untagged Ethernet frame (frame_size includes the FCS) as a host on an access link sends it."""
    Ether = _scapy()[0]
    return Ether(src=src_mac, dst=dst_mac) / ip_udp(fam, src, dst, frame_size - FCS - ETH, **kw)


def lm_frame(outer, inner, mo_id, src_loc, dst_loc, src_mac=GEN_CORE_MAC, dst_mac=DUT_CORE_MAC,
             tenant=TENANT, epoch=EPOCH):
    """The frame an ingress AR sends for an inner IP packet (scapy IP/IPv6, TTL already
    decremented): protocol.md sections 1-4, byte for byte (DF copied, UDP checksum 0, source
    port and IPv6 flow label from the flow hash)."""
    Ether, IP, IPv6, UDP, Raw = _scapy()
    ib = bytes(inner)
    ifam = "v4" if ib[0] >> 4 == 4 else "v6"
    tos = ib[1] if ifam == "v4" else ((struct.unpack("!I", ib[:4])[0] >> 20) & 0xFF)
    df = ifam == "v6" or bool(ib[6] & 0x40)
    h = flow_hash(ib)
    if outer == "v4":
        l3 = IP(src=src_loc, dst=dst_loc, tos=tos, id=0, flags="DF" if df else 0, ttl=64, proto=17)
    else:
        l3 = IPv6(src=src_loc, dst=dst_loc, tc=tos, fl=h & 0xFFFFF, hlim=64, nh=17)
    lm = lm_header(mo_id, tenant, epoch, NEXT_PROTO[ifam])
    return Ether(src=src_mac, dst=dst_mac) / l3 / UDP(sport=encap_source_port(h), dport=UDP_PORT, chksum=0) / \
        Raw(lm + ib)


# ---- pcap ---------------------------------------------------------------------------------------

PCAP_EPOCH = 1704067200    # 2024-01-01 00:00:00 UTC: first packet; then one packet per microsecond


def write_pcap(path, frames):
    """Classic pcap (microsecond timestamps, Ethernet), written byte by byte so the file depends
    only on the frames: packet k is stamped PCAP_EPOCH + k microseconds (1 Mpps when replayed
    at capture speed)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for k, fr in enumerate(frames):
            b = bytes(fr)
            f.write(struct.pack("<IIII", PCAP_EPOCH + k // 1000000, k % 1000000, len(b), len(b)))
            f.write(b)
