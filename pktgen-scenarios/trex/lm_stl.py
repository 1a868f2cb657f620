"""TRex stateless stream builders for the LM Router scenarios (the profiles in this folder).

The packets come from ../lmplan.py, the addressing plan the pcaps and router configurations use.
Each stream is one template packet plus a field-engine program that walks a range of
destination EIDs round robin (flow variables with op "inc"). Everything that depends on the
destination moves in lockstep with it:

- decap: the LM header's MO Identifier follows the inner destination (a second "inc" variable
  over the same span), so every packet names the MO that owns its destination EID;
- the UDP checksum stays valid without hardware help: a "dec" variable over the same span is
  written into the first 4 bytes of the UDP payload, so destination + that word is constant and
  so is the ones' complement sum the checksum covers (IPv4 header checksums are fixed with
  STLVmFixIpv4).

Distributions are streams too: uniform = one stream; zipf = one stream per power-of-two rank
range (1, 2, 4, ... MOs) at the Zipf share of that range; hot = hot set and the rest. IMIX =
one stream per size at 7:4:1. The rates of a profile's streams add up to the `pps` tunable;
scale the whole profile with TRex's -m (e.g. start -f encap.py -m 10mpps).

What differs from a real ingress AR (the pcaps are byte exact, see make_pcaps.py): the outer UDP
source port walks 49152.. instead of being the flow hash, and the outer IPv6 flow label is the
first packet's.

Python 3.6 compatible (TRex's interpreter); scapy is TRex's own.
"""

import argparse
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lmplan  # noqa: E402

try:  # newer TRex layout
    from trex.stl.api import (STLFlowLatencyStats, STLPktBuilder, STLScVmRaw, STLStream, STLStreamDstMAC_PKT,
                              STLTXCont, STLVmFixIpv4, STLVmFlowVar, STLVmWrFlowVar)
except ImportError:  # older TRex, and test/scenarios' stand-in
    from trex_stl_lib.api import (STLFlowLatencyStats, STLPktBuilder, STLScVmRaw, STLStream, STLStreamDstMAC_PKT,
                                  STLTXCont, STLVmFixIpv4, STLVmFlowVar, STLVmWrFlowVar)

LATENCY_MIN_SIZE = 128      # TRex writes its 16-byte latency trailer at the end of the payload

# ---- Tunables -----------------------------------------------------------------------------------
#
# Profiles declare their tunables as get_streams() keyword arguments with defaults (TRex lists
# them with `profile -f X.py`, and old TRex passes -t key=value,... as those keywords). Newer
# TRex passes `-t --key value ...` as a list in kwargs['tunables']: options() parses it with the
# same names.

_TYPES = {
    "family": str, "inner": str, "outer": str, "size": str, "eids": int, "dist": str, "zipf_s": float,
    "hot": int, "hot_pct": float, "pps": float, "latency_pps": float, "misses": int, "hit_pct": float,
    "setup": str,
}


def options(values, kwargs):
    """The profile's tunables from get_streams()'s locals() and **kwargs, checked and typed."""
    opts = dict((k, v) for k, v in values.items() if k in _TYPES)
    argv = kwargs.get("tunables")
    if isinstance(argv, (list, tuple)) and argv:
        ap = argparse.ArgumentParser(prog="LM Router TRex profile")
        for k in sorted(opts):
            ap.add_argument("--" + k, default=opts[k])
        opts.update(vars(ap.parse_args([str(a) for a in argv])))
    unknown = sorted(k for k in kwargs if k not in ("tunables", "direction", "port_id"))
    if unknown:
        raise ValueError("unknown tunable(s) %s; this profile takes %s" % (", ".join(unknown), ", ".join(sorted(opts))))
    for k in list(opts):
        opts[k] = _TYPES[k](opts[k])
    for k in ("family", "inner", "outer"):
        if k in opts:
            opts[k] = {"4": "v4", "6": "v6", "ipv4": "v4", "ipv6": "v6"}.get(opts[k].lower(), opts[k].lower())
            if opts[k] not in ("v4", "v6"):
                raise ValueError("%s must be v4 or v6, not %r" % (k, opts[k]))
    if "size" in opts:
        s = opts["size"].lower().rstrip("b")
        opts["size"] = "imix" if s == "imix" else int(s)
    for k in ("hot_pct", "hit_pct"):
        if k in opts and not 0 <= opts[k] <= 100:
            raise ValueError("%s is a percentage (0..100), not %s" % (k, opts[k]))
    if opts.get("pps", 1) <= 0:
        raise ValueError("pps must be positive")
    return opts


def _sizes(size, fam):
    """[(frame size with FCS, share of packets)]."""
    lmplan.check_size(size, fam)
    return lmplan.imix_weights(fam) if size == "imix" else [(size, 1.0)]


def _check_count(role, fam, n, configured):
    if not 1 <= n <= lmplan.family_max(role, fam):
        raise ValueError("%d %s %s EIDs: the plan has 1..%d (IPv4 documentation ranges hold 250 per role)"
                         % (n, role, fam, lmplan.family_max(role, fam)))
    if configured is not None and n > configured:
        sys.stderr.write("lm_stl: warning: %d %s %s MOs, the configurations know %d (make_configs.py)\n"
                         % (n, role, fam, configured))


# ---- Field engine helpers -----------------------------------------------------------------------


def _addr_word(addr):
    """The value of the last 32 bits of an address (all of an IPv4 address)."""
    import ipaddress
    return int(ipaddress.ip_address(addr)) & 0xFFFFFFFF


def _program(prefix, fields, fixes):
    """Field-engine program. fields: [(name, first value, last value, packet offset, op, size)]:
    one flow variable each, all stepping once per packet ("inc" first..last, "dec" last..first),
    so variables over spans of the same length stay in lockstep. fixes: IPv4 header offsets
    whose checksum is recomputed after the writes."""
    instr = [STLVmFlowVar(name=prefix + name, min_value=first, max_value=last, size=size, step=1, op=op)
             for name, first, last, off, op, size in fields]
    instr += [STLVmWrFlowVar(fv_name=prefix + name, pkt_offset=off) for name, first, last, off, op, size in fields]
    instr += [STLVmFixIpv4(offset=off) for off in fixes]
    return STLScVmRaw(instr)


def _stream(name, pkt, vm, pps, latency_pg=None):
    kw = {}
    if latency_pg is not None:
        kw["flow_stats"] = STLFlowLatencyStats(pg_id=latency_pg)
    return STLStream(name=name, packet=STLPktBuilder(pkt=pkt, vm=vm) if vm else STLPktBuilder(pkt=pkt),
                     mode=STLTXCont(pps=pps), mac_dst_override_mode=STLStreamDstMAC_PKT, **kw)


# ---- Plain traffic into an access port -----------------------------------------------------------

SRC_INDEX = 0     # every plain stream comes from the first MO of the other side


def plain_streams(dst_role, fam, size, buckets, pps, tag, latency_pps=0, latency_pg=None):
    """Plain UDP to dst_role EIDs ('remote': the router encapsulates it; 'local': return traffic
    into ar2; 'miss'), one stream per (bucket, size). buckets: [(first, last, share)]."""
    src_role = {"remote": "local", "local": "remote", "miss": "local"}[dst_role]
    src = lmplan.eid(src_role, fam, SRC_INDEX)
    smac = lmplan.mo_mac(src_role, SRC_INDEX)
    l3 = 20 if fam == "v4" else 40
    dst_off = 14 + 16 if fam == "v4" else 14 + 24 + 12
    pay_off = 14 + l3 + 8
    out = []
    for b, (lo, hi, share) in enumerate(buckets):
        for fsize, sshare in _sizes(size, fam):
            pkt = lmplan.plain_frame(fam, src, lmplan.eid(dst_role, fam, lo), fsize, src_mac=smac,
                                     head=struct.pack("!I", hi - lo))
            first = _addr_word(lmplan.eid(dst_role, fam, lo))
            vm = None if hi == lo else _program("%s%d_%d_" % (tag, b, fsize), [
                ("dst", first, first + hi - lo, dst_off, "inc", 4),
                ("csum", 0, hi - lo, pay_off, "dec", 4)],
                [14] if fam == "v4" else [])
            out.append(_stream("%s-%s-%dB-%d..%d" % (tag, fam, fsize, lo, hi), pkt, vm, pps * share * sshare))
    if latency_pps > 0:
        # One more stream, fixed, to the first destination: TRex timestamps it and reads the
        # latency where it comes out (plain again only in the router pair: ar1 -> ar2).
        fsize = max([LATENCY_MIN_SIZE] + [s for s, _ in _sizes(size, fam)])
        pkt = lmplan.plain_frame(fam, src, lmplan.eid(dst_role, fam, buckets[0][0]), fsize, src_mac=smac)
        out.append(_stream("%s-latency" % tag, pkt, None, latency_pps, latency_pg))
    return out


# ---- LM traffic into a core port -----------------------------------------------------------------


def lm_streams(outer, inner, size, buckets, pps, tag):
    """LM-encapsulated UDP from the peer AR to the local MOs (the router decapsulates it), one
    stream per (bucket, size). The inner packet is as the peer AR sends it (TTL 63)."""
    peer, dut = lmplan.LOCATORS["peer"], lmplan.LOCATORS["dut"]
    o = 0 if outer == "v4" else 1
    src = lmplan.eid("remote", inner, SRC_INDEX)
    udp_off = 14 + (20 if outer == "v4" else 40)
    lm_off = udp_off + 8
    in_off = lm_off + lmplan.LM_HEADER_LEN
    ihl = 20 if inner == "v4" else 40
    dst_off = in_off + (16 if inner == "v4" else 24 + 12)
    pay_off = in_off + ihl + 8
    out = []
    for b, (lo, hi, share) in enumerate(buckets):
        for fsize, sshare in _sizes(size, inner):
            dst = lmplan.eid("local", inner, lo)
            ip = lmplan.ip_udp(inner, src, dst, fsize - lmplan.FCS - lmplan.ETH, ttl=63,
                               head=struct.pack("!I", hi - lo))
            pkt = lmplan.lm_frame(outer, ip, lmplan.local_mo_id(lo), peer[o], dut[o])
            if hi == lo:
                vm = None
            else:
                span = hi - lo
                prefix = "%s%d_%d_" % (tag, b, fsize)
                sport_span = min(span, 0x3FFF)   # the outer source port only spreads RSS: 49152.. on its own span
                vm = _program(prefix, [
                    ("dst", _addr_word(dst), _addr_word(dst) + span, dst_off, "inc", 4),
                    ("mo", lmplan.local_mo_id(lo), lmplan.local_mo_id(hi), lm_off + 12, "inc", 4),
                    ("csum", 0, span, pay_off, "dec", 4),
                    ("sport", 49152, 49152 + sport_span, udp_off, "inc", 2)],
                    [in_off] if inner == "v4" else [])
            out.append(_stream("%s-%sin%s-%dB-%d..%d" % (tag, inner[1], outer[1], fsize, lo, hi), pkt, vm,
                               pps * share * sshare))
    return out


def buckets_of(opts, n):
    return lmplan.distribution_buckets(n, opts["dist"], opts.get("zipf_s", lmplan.ZIPF_S), opts.get("hot", 32),
                                       opts.get("hot_pct", 50.0) / 100.0)


def encap_streams(opts, tag="encap"):
    fam = opts["family"]
    _check_count("remote", fam, opts["eids"], lmplan.CONFIG_REMOTE_MOS if fam == "v6" else None)
    return plain_streams("remote", fam, opts["size"], buckets_of(opts, opts["eids"]), opts["pps"], tag,
                         opts.get("latency_pps", 0), 0x10)


def return_streams(opts, tag="return"):
    fam = opts["family"]
    _check_count("local", fam, opts["eids"], lmplan.CONFIG_LOCAL_MOS if fam == "v6" else None)
    return plain_streams("local", fam, opts["size"], buckets_of(opts, opts["eids"]), opts["pps"], tag,
                         opts.get("latency_pps", 0), 0x11)


def decap_streams(opts, tag="decap"):
    inner = opts.get("inner", opts.get("family"))
    _check_count("local", inner, opts["eids"], lmplan.CONFIG_LOCAL_MOS if inner == "v6" else None)
    return lm_streams(opts["outer"], inner, opts["size"], buckets_of(opts, opts["eids"]), opts["pps"], tag)


def miss_streams(opts, tag="miss"):
    """Plain UDP to `misses` EIDs nobody publishes, and hit_pct % of the packets to `eids` remote
    MOs the router knows (so the hits' throughput under the storm can be read)."""
    fam, hit = opts["family"], opts["hit_pct"] / 100.0
    _check_count("miss", fam, opts["misses"], None)
    out = []
    if hit < 1:
        out += plain_streams("miss", fam, opts["size"], [(0, opts["misses"] - 1, 1.0)], opts["pps"] * (1 - hit), tag)
    if hit > 0:
        _check_count("remote", fam, opts["eids"], lmplan.CONFIG_REMOTE_MOS if fam == "v6" else None)
        out += plain_streams("remote", fam, opts["size"], [(0, opts["eids"] - 1, 1.0)], opts["pps"] * hit,
                             tag + "-hit")
    return out
