"""Packet helpers for the pcap tests: byte-level IP edits, expected-packet builders, diffs.

Expected packets are built independently of the router: checksums are recomputed here from the
bytes, TTL edits are done on the bytes, so a router bug in incremental checksum updates shows up.
"""

import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from lmpkt import LM, bind_lm_port

# ---------------------------------------------------------------------------------------------
# Checksums and byte edits


def csum(data):
    if len(data) % 2:
        data = bytes(data) + b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), bytes(data)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4_fix_checksum(b):
    """b: bytearray starting with an IPv4 header; recomputes the header checksum in place."""
    ihl = (b[0] & 0xF) * 4
    b[10:12] = b"\0\0"
    b[10:12] = struct.pack("!H", csum(bytes(b[:ihl])))
    return b


def dec_ttl(l3):
    """The IP packet with TTL / hop limit minus one (IPv4 header checksum recomputed from scratch)."""
    b = bytearray(l3)
    if b[0] >> 4 == 4:
        b[8] -= 1
        ipv4_fix_checksum(b)
    else:
        b[7] -= 1
    return bytes(b)


def set_ecn(l3, ecn):
    b = bytearray(l3)
    if b[0] >> 4 == 4:
        b[1] = (b[1] & 0xFC) | ecn
        ipv4_fix_checksum(b)
    else:
        w = struct.unpack("!I", bytes(b[:4]))[0]
        w = (w & ~(0x3 << 20)) | (ecn << 20)
        b[:4] = struct.pack("!I", w)
    return bytes(b)


def ip_tc(l3):
    b = bytes(l3)
    if b[0] >> 4 == 4:
        return b[1]
    return (struct.unpack("!I", b[:4])[0] >> 20) & 0xFF


def ipv4_df(l3):
    return bool(bytes(l3)[6] & 0x40)


def pseudo6(src, dst, length, nh):
    import socket
    return socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!IxxxB", length, nh)


def icmp6_checksum(src, dst, icmp):
    return csum(pseudo6(src, dst, len(icmp), 58) + bytes(icmp))


# ---------------------------------------------------------------------------------------------
# Frames


def l2(dst, src, l3, vlan=None):
    """Ethernet (+ 802.1Q) frame around raw or scapy L3; ethertype from the IP version."""
    l3b = bytes(l3)
    if isinstance(l3, ARP):
        et = 0x0806
    elif l3b and l3b[0] >> 4 == 6:
        et = 0x86DD
    else:
        et = 0x0800
    if vlan is None:
        return bytes(Ether(dst=dst, src=src, type=et) / Raw(l3b))
    return bytes(Ether(dst=dst, src=src, type=0x8100) / Dot1Q(vlan=vlan, type=et) / Raw(l3b))


def lm_frame(inner, *, outer_src, outer_dst, tenant, mo, epoch=1, eth_dst, eth_src, sport=50000, dport=4341,
             version=1, flags=0, lm_type=0, next_proto=None, tos=0, udp_len=None, udp_chksum=0,
             ip_flags="DF", extra_after_lm=b""):
    """An LM packet as a peer AR would send it (outer family from outer_src)."""
    inner_b = bytes(inner)
    if next_proto is None:
        next_proto = 4 if inner_b and inner_b[0] >> 4 == 4 else 41
    lm = LM(version=version, flags=flags, type=lm_type, next_proto=next_proto, tenant=tenant, mo_id=mo, epoch=epoch)
    payload = bytes(lm) + inner_b + extra_after_lm
    udp = UDP(sport=sport, dport=dport, len=udp_len, chksum=udp_chksum) / Raw(payload)
    if ":" in outer_src:
        ip = IPv6(src=outer_src, dst=outer_dst, tc=tos, hlim=60, nh=17)
    else:
        ip = IP(src=outer_src, dst=outer_dst, tos=tos, ttl=60, flags=ip_flags, id=0, proto=17)
    return bytes(Ether(dst=eth_dst, src=eth_src) / ip / udp)


# ---------------------------------------------------------------------------------------------
# Expected-packet builders: functions of the actual frame -> (expected bytes, problems)


def exp_encap(inner_l3, *, nh_mac, core_mac, loc_src, loc_dst, tenant, mo, epoch, df_policy="copy",
              udp_port=4341, udp_csum_v6=False, lm_flags=0, inner_after=None):
    """Expected LM encapsulation of inner_l3 (as received on the access port).

    Open fields, checked then copied from the actual packet: UDP source port (49152..65535, i.e.
    0xC000 | 14-bit hash), IPv6 flow label (low 14 bits = those of the source port: one flow hash),
    IPv4 ID when DF is clear."""
    inner_b = bytes(inner_l3)
    out_inner = bytes(inner_after) if inner_after is not None else dec_ttl(inner_b)
    in4 = inner_b[0] >> 4 == 4
    tc = ip_tc(inner_b)
    out6 = ":" in loc_dst
    inner_df = ipv4_df(inner_b) if in4 else True
    df = df_policy == "set" or (df_policy == "copy" and inner_df)
    bind_lm_port(udp_port)

    def build(actual):
        probs = []
        a = Ether(actual)
        if UDP not in a:
            raise ValueError("no UDP header")
        sport = a[UDP].sport
        if not 49152 <= sport <= 65535:
            probs.append(f"UDP source port {sport} is outside 49152..65535")
        if out6:
            if IPv6 not in a:
                raise ValueError("outer is not IPv6")
            fl = a[IPv6].fl
            if (fl & 0x3FFF) != (sport & 0x3FFF):
                probs.append(f"flow label 0x{fl:05x} and UDP source port {sport} (0x{sport:04x}) do not come "
                             "from the same flow hash (low 14 bits differ)")
            ip = IPv6(version=6, tc=tc, fl=fl, nh=17, hlim=64, src=loc_src, dst=loc_dst)
        else:
            if IP not in a:
                raise ValueError("outer is not IPv4")
            ipid = 0 if df else a[IP].id
            ip = IP(version=4, ihl=5, tos=tc, id=ipid, flags="DF" if df else 0, frag=0, ttl=64, proto=17,
                    src=loc_src, dst=loc_dst)
        udp = UDP(sport=sport, dport=udp_port, chksum=None if (out6 and udp_csum_v6) else 0)
        lm = LM(version=1, flags=lm_flags, type=0, next_proto=4 if in4 else 41, reserved0=0, tenant=tenant,
                reserved1=0, mo_id=mo, epoch=epoch)
        exp = Ether(dst=nh_mac, src=core_mac) / ip / udp / lm / Raw(out_inner)
        return bytes(exp), probs

    return build


# ICMP error header fields the standards leave open, as docs/protocol.md section 5 fixes them.
ICMP4_ERR_HDR = {"tos": 0xC0, "id": 0, "flags": 0, "ttl": 64}
ICMP6_ERR_HDR = {"tc": 0, "fl": 0, "hlim": 64}


def exp_icmp_error(orig_l3, *, dst_mac, src_mac, src_ip, icmp_type, icmp_code, param=0, vlan=None):
    """Expected ICMP / ICMPv6 error about orig_l3 (as it was received).

    Quote: as much of the original as fits 576 bytes (IPv4, RFC 1812 4.3.2.3) or 1280 bytes
    (IPv6, RFC 4443 2.4(c)). Header fields the RFCs leave open are those of docs/protocol.md
    section 5 (ICMP4_ERR_HDR / ICMP6_ERR_HDR)."""
    orig = bytes(orig_l3)
    v4 = orig[0] >> 4 == 4
    quote = orig[:min(len(orig), 576 - 28 if v4 else 1280 - 48)]
    if v4:
        import socket
        orig_src = socket.inet_ntop(socket.AF_INET, orig[12:16])
    else:
        import socket
        orig_src = socket.inet_ntop(socket.AF_INET6, orig[8:24])

    def build(actual):
        probs = []
        a = Ether(actual)
        if v4:
            if IP not in a:
                raise ValueError("not IPv4")
            h = ICMP4_ERR_HDR
            body = bytearray(bytes([icmp_type, icmp_code, 0, 0]) + struct.pack("!I", param) + quote)
            body[2:4] = struct.pack("!H", csum(bytes(body)))
            ip = IP(version=4, ihl=5, tos=h["tos"], id=h["id"], flags=h["flags"], frag=0, ttl=h["ttl"], proto=1,
                    src=src_ip, dst=orig_src)
            l3 = ip / Raw(bytes(body))
        else:
            if IPv6 not in a:
                raise ValueError("not IPv6")
            h = ICMP6_ERR_HDR
            body = bytearray(bytes([icmp_type, icmp_code, 0, 0]) + struct.pack("!I", param) + quote)
            body[2:4] = struct.pack("!H", icmp6_checksum(src_ip, orig_src, bytes(body)))
            l3 = IPv6(version=6, tc=h["tc"], fl=h["fl"], nh=58, hlim=h["hlim"], src=src_ip, dst=orig_src) / Raw(bytes(body))
        return l2(dst_mac, src_mac, l3, vlan=vlan), probs

    return build


def exp_padded(frame, max_len=60):
    """The frame, allowing Ethernet padding with zero bytes up to max_len."""
    fb = bytes(frame)

    def build(actual):
        if len(actual) > len(fb) and len(actual) <= max_len and actual[:len(fb)] == fb and not any(actual[len(fb):]):
            return actual, []
        return fb, []

    return build


# ---------------------------------------------------------------------------------------------
# Diffs


def _fields(layer):
    out = []
    for f in layer.fields_desc:
        try:
            v = layer.getfieldval(f.name)
        except Exception:
            v = None
        out.append((f.name, v))
    return out


def _fmt(v):
    if isinstance(v, int):
        return f"{v} (0x{v:x})"
    if isinstance(v, bytes):
        return v[:24].hex() + ("..." if len(v) > 24 else "") + f" [{len(v)} bytes]"
    return repr(v)


def describe_diff(exp, act, indent=""):
    """Field-by-field differences between two frames (decoded with scapy), plus the first byte offset."""
    lines = []
    try:
        e, a = Ether(exp), Ether(act)
        le, la = e, a
        depth = 0
        while le is not None and la is not None and depth < 12:
            if type(le).__name__ == "NoPayload" and type(la).__name__ == "NoPayload":
                break
            if type(le) is not type(la):
                lines.append(f"{indent}layer {depth}: expected {type(le).__name__}, got {type(la).__name__}")
                break
            name = type(le).__name__
            if isinstance(le, Raw) or name in ("Padding",):
                le_b, la_b = bytes(le.load), bytes(la.load)
                if le_b != la_b:
                    off = next((i for i in range(min(len(le_b), len(la_b))) if le_b[i] != la_b[i]),
                               min(len(le_b), len(la_b)))
                    lines.append(f"{indent}{name}: expected {len(le_b)} bytes, got {len(la_b)}; first difference at "
                                 f"payload offset {off}: expected {le_b[off:off + 8].hex()} got {la_b[off:off + 8].hex()}")
                break
            for (fn, ve), (_, va) in zip(_fields(le), _fields(la)):
                if ve != va:
                    lines.append(f"{indent}{name}.{fn}: expected {_fmt(ve)}, got {_fmt(va)}")
            le, la = le.payload, la.payload
            depth += 1
    except Exception as ex:
        lines.append(f"{indent}(decode failed: {ex})")
    n = min(len(exp), len(act))
    off = next((i for i in range(n) if exp[i] != act[i]), n)
    lines.append(f"{indent}frame: expected {len(exp)} bytes, got {len(act)}; first differing byte at offset {off}"
                 f" (expected {exp[off:off + 8].hex() or '-'}, got {act[off:off + 8].hex() or '-'})")
    return "\n".join(lines)


def describe_short(fr):
    try:
        return Ether(fr).summary() + f" [{len(fr)} bytes]"
    except Exception:
        return fr[:64].hex()
