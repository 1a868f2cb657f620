"""Scapy layer for the LM encapsulation header (docs/protocol.md, common/lm_wire.hpp).

    from lmpkt import LM
    pkt = Ether()/IP()/UDP(sport=49153, dport=4341)/LM(tenant=1, mo_id=42, epoch=1)/IP()/ICMP()

24 bytes, all multi-byte fields big endian:
  byte 0      version (high nibble, 1) | flags (low nibble; 0x1 = forwarded)
  byte 1      type (0 data, 1 refresh hint)
  byte 2      next protocol (4 IPv4, 41 IPv6; 0 for control types)
  byte 3      reserved, 0
  bytes 4-6   24-bit tenant id
  byte 7      reserved, 0
  bytes 8-15  MO id (u64)
  bytes 16-23 epoch (u64)

The layer is bound to UDP destination port 4341 (the default; call bind_lm_port() for another).
When next_proto is left unset it is filled in from the payload (IP -> 4, IPv6 -> 41).
"""

from scapy.fields import BitField, ByteEnumField, ByteField, LongField, ThreeBytesField
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Raw, bind_layers

LM_PORT = 4341
LM_LEN = 24
LM_VERSION = 1
LM_TYPE_DATA = 0
LM_TYPE_REFRESH_HINT = 1
LM_NEXT_IPV4 = 4
LM_NEXT_IPV6 = 41
LM_FLAG_FORWARDED = 0x1


class LM(Packet):
    name = "LM"
    fields_desc = [
        BitField("version", LM_VERSION, 4),
        BitField("flags", 0, 4),
        ByteEnumField("type", LM_TYPE_DATA, {LM_TYPE_DATA: "data", LM_TYPE_REFRESH_HINT: "refresh_hint"}),
        ByteEnumField("next_proto", None, {LM_NEXT_IPV4: "IPv4", LM_NEXT_IPV6: "IPv6"}),
        ByteField("reserved0", 0),
        ThreeBytesField("tenant", 0),
        ByteField("reserved1", 0),
        LongField("mo_id", 0),
        LongField("epoch", 0),
    ]

    def post_build(self, p, pay):
        if self.next_proto is None:
            nxt = 0
            if isinstance(self.payload, IP):
                nxt = LM_NEXT_IPV4
            elif isinstance(self.payload, IPv6):
                nxt = LM_NEXT_IPV6
            p = p[:2] + bytes([nxt]) + p[3:]
        return p + pay

    def guess_payload_class(self, payload):
        if self.type == LM_TYPE_DATA:
            if self.next_proto == LM_NEXT_IPV4:
                return IP
            if self.next_proto == LM_NEXT_IPV6:
                return IPv6
        return Raw

    def mysummary(self):
        return self.sprintf("LM v%LM.version% %LM.type% tenant=%LM.tenant% mo=%LM.mo_id% epoch=%LM.epoch%")


_bound_ports = set()


def bind_lm_port(port):
    """Decode UDP datagrams to `port` as LM (4341 is bound on import)."""
    if port in _bound_ports:
        return
    bind_layers(UDP, LM, dport=port)
    _bound_ports.add(port)


bind_lm_port(LM_PORT)
