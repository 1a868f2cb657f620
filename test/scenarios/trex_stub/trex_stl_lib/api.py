"""A stand-in for the part of TRex's stateless API the LM Router profiles use.

TRex is not installed where the tests run. This module lets test/scenarios/check_scenarios.py
load the profiles the way TRex's console does and run get_streams() for real: the classes keep
their arguments and check them the way trex_stl_lib does (flow variable sizes, operations and
ranges, rates, instruction references), so a profile that TRex would refuse fails here too.
The check then runs the field-engine program itself (check_scenarios.run_vm) and parses the
packets it produces.

Signatures follow trex_stl_lib/trex_stl_packet_builder_scapy.py and trex_stl_streams.py.
"""

from scapy.packet import Packet

STLStreamDstMAC_CFG_FILE = 0
STLStreamDstMAC_PKT = 1
STLStreamDstMAC_ARP = 2

_VAR_SIZES = (1, 2, 4, 8)
_VAR_OPS = ("inc", "dec", "random")


class STLError(Exception):
    pass


def _int(name, v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise STLError("%s must be an int, got %r" % (name, v))
    return v


class STLVmFlowVar(object):
    def __init__(self, name, init_value=None, min_value=0, max_value=255, size=4, step=1, op="inc"):
        if not isinstance(name, str):
            raise STLError("flow var name must be a string")
        if size not in _VAR_SIZES:
            raise STLError("flow var %s: invalid size %r" % (name, size))
        if op not in _VAR_OPS:
            raise STLError("flow var %s: invalid op %r" % (name, op))
        for k, v in (("min_value", min_value), ("max_value", max_value), ("step", step)):
            _int("flow var %s: %s" % (name, k), v)
        if min_value > max_value:
            raise STLError("flow var %s: max %d is lower than min %d" % (name, max_value, min_value))
        if max_value >= 1 << (8 * size) or min_value < 0:
            raise STLError("flow var %s: %d..%d does not fit %d byte(s)" % (name, min_value, max_value, size))
        if init_value is None:
            init_value = max_value if op == "dec" else min_value
        self.name, self.size, self.op, self.step = name, size, op, step
        self.min_value, self.max_value, self.init_value = min_value, max_value, _int("init_value", init_value)


class STLVmWrFlowVar(object):
    def __init__(self, fv_name, pkt_offset, offset_fixup=0, add_val=0, is_big=True):
        if not isinstance(fv_name, str):
            raise STLError("fv_name must be a string")
        if not isinstance(pkt_offset, (int, str)):
            raise STLError("pkt_offset must be an int or a field name")
        self.fv_name, self.pkt_offset = fv_name, pkt_offset
        self.offset_fixup, self.add_val, self.is_big = _int("offset_fixup", offset_fixup), _int("add_val", add_val), is_big


class STLVmFixIpv4(object):
    def __init__(self, offset):
        if not isinstance(offset, (int, str)):
            raise STLError("STLVmFixIpv4: offset must be an int or a layer name")
        self.offset = offset


class STLScVmRaw(object):
    def __init__(self, list_of_commands=None, cache_size=None):
        self.commands = list(list_of_commands or [])


class STLPktBuilder(object):
    def __init__(self, pkt=None, pkt_buffer=None, vm=None, path_relative_to_profile=False):
        if (pkt is None) == (pkt_buffer is None):
            raise STLError("STLPktBuilder takes pkt or pkt_buffer")
        if pkt is not None and not isinstance(pkt, Packet):
            raise STLError("STLPktBuilder: pkt must be a scapy packet")
        self.pkt = bytes(pkt) if pkt is not None else bytes(pkt_buffer)
        if isinstance(vm, list):
            vm = STLScVmRaw(vm)
        if vm is not None and not isinstance(vm, STLScVmRaw):
            raise STLError("STLPktBuilder: vm must be an STLScVmRaw or a list")
        self.vm = vm
        self._compile()

    def _compile(self):
        """What TRex checks when it compiles the program: names and offsets."""
        if self.vm is None:
            return
        seen = {}
        for c in self.vm.commands:
            if isinstance(c, STLVmFlowVar):
                if c.name in seen:
                    raise STLError("flow var %s defined twice" % c.name)
                seen[c.name] = c
            elif isinstance(c, STLVmWrFlowVar):
                if c.fv_name not in seen:
                    raise STLError("write of undefined flow var %s" % c.fv_name)
                if not isinstance(c.pkt_offset, int):
                    raise STLError("the stand-in only follows numeric offsets (%r)" % (c.pkt_offset,))
                end = c.pkt_offset + c.offset_fixup + seen[c.fv_name].size
                if c.pkt_offset + c.offset_fixup < 0 or end > len(self.pkt):
                    raise STLError("write of %s at %d..%d is outside the %d-byte packet"
                                   % (c.fv_name, c.pkt_offset, end, len(self.pkt)))
            elif isinstance(c, STLVmFixIpv4):
                if not isinstance(c.offset, int) or c.offset + 20 > len(self.pkt) or self.pkt[c.offset] >> 4 != 4:
                    raise STLError("STLVmFixIpv4 at %r: no IPv4 header there" % (c.offset,))
            else:
                raise STLError("unknown instruction %r" % (c,))


class STLTXCont(object):
    def __init__(self, bps_L1=None, bps_L2=None, pps=None, percentage=None):
        given = [x for x in (bps_L1, bps_L2, pps, percentage) if x is not None]
        if len(given) > 1:
            raise STLError("STLTXCont takes one rate")
        if pps is None and not given:
            pps = 1
        if given and given[0] <= 0:
            raise STLError("STLTXCont: the rate must be positive, got %r" % given[0])
        self.pps, self.bps_L1, self.bps_L2, self.percentage = pps, bps_L1, bps_L2, percentage


class STLFlowStats(object):
    def __init__(self, pg_id):
        self.pg_id = _int("pg_id", pg_id)


class STLFlowLatencyStats(STLFlowStats):
    pass


class STLStream(object):
    def __init__(self, name=None, packet=None, mode=None, enabled=True, self_start=True, isg=0.0,
                 flow_stats=None, next=None, stream_id=None, action_count=0, random_seed=0,
                 mac_src_override_by_pkt=None, mac_dst_override_mode=None, dummy_stream=False,
                 start_paused=False, core_id=-1):
        if not isinstance(packet, STLPktBuilder):
            raise STLError("STLStream: packet must be an STLPktBuilder")
        if mode is None:
            mode = STLTXCont(pps=1)
        if not isinstance(mode, STLTXCont):
            raise STLError("the stand-in knows only continuous streams")
        if flow_stats is not None and not isinstance(flow_stats, STLFlowStats):
            raise STLError("flow_stats must be STLFlowStats or STLFlowLatencyStats")
        if mac_dst_override_mode not in (None, STLStreamDstMAC_CFG_FILE, STLStreamDstMAC_PKT, STLStreamDstMAC_ARP):
            raise STLError("bad mac_dst_override_mode %r" % (mac_dst_override_mode,))
        self.name, self.packet, self.mode, self.flow_stats = name, packet, mode, flow_stats
        self.mac_dst_override_mode = mac_dst_override_mode


class STLProfile(object):
    def __init__(self, streams=None):
        self.streams = list(streams or [])

    def get_streams(self):
        return self.streams
