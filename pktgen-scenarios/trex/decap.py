"""TRex STL profile, scenario "decap": LM-encapsulated UDP from the peer AR (198.51.100.2 /
2001:db8:100::2, played by the generator) to the local MOs, sent into the router's core port;
the router decapsulates it and delivers it on its access port.

    start -f trex/decap.py -p 1 -m 10mpps -t outer=v6,inner=v4,size=64,eids=250

The LM header is the one of docs/protocol.md (version 1, data, tenant 1, the MO id of the inner
destination, epoch 0); the inner packet is what the peer AR forwards (TTL 63). Tunables:

    outer, inner  v4 | v6                       4in4, 4in6, 6in4, 6in6
    size          64..1518 | imix               inner frame size with FCS (what the router
                                                delivers); on the core link +52 (outer v4) or +72 (v6)
    eids          number of destination MOs     v4 inner: at most 250
    dist          uniform | zipf | hot          see lm_stl.py
    hot, hot_pct, zipf_s, pps                   as in encap.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_stl  # noqa: E402


class STLS1(object):
    def get_streams(self, direction=0, port_id=0, outer="v4", inner="v4", size="64", eids=250, dist="uniform",
                    zipf_s=1.0, hot=32, hot_pct=50.0, pps=1e6, **kwargs):
        return lm_stl.decap_streams(lm_stl.options(locals(), kwargs))


def register():
    return STLS1()
