"""TRex STL profile, scenario "encap": plain UDP from the local MOs to the remote MOs, sent into
the router's access port; the router encapsulates it toward the peer AR.

    single router (setup A):   start -f trex/encap.py -p 0 -m 10mpps -t family=v6,size=78,eids=4096,dist=zipf
    router pair (setup B):     start -f trex/encap.py -p 0 1 -m 1mpps -t latency_pps=1000
                               (port 0 -> ar1 -> ar2 -> port 1, and back: the whole tunnel, with latency)

Direction 0 (even ports) sends to the remote MOs; direction 1 (odd ports) sends the way back, to
the local MOs, which only the router pair carries. Tunables (old TRex: -t k=v,...; new: -t --k v):

    family      v4 | v6                         inner family (the outer one is the config's)
    size        64..1518 | imix                 frame size with FCS; IPv6 starts at 78
    eids        number of destination MOs       v4: at most 250 (documentation space)
    dist        uniform | zipf | hot            see lm_stl.py; zipf_s = exponent
    hot, hot_pct                                dist=hot: MOs 0..hot-1 get hot_pct % of the packets
    pps         packets/s of the profile        before -m
    latency_pps one more fixed stream with TRex latency stats (router pair only: it must come out plain)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_stl  # noqa: E402


class STLS1(object):
    def get_streams(self, direction=0, port_id=0, family="v4", size="64", eids=250, dist="uniform", zipf_s=1.0,
                    hot=32, hot_pct=50.0, pps=1e6, latency_pps=0, **kwargs):
        opts = lm_stl.options(locals(), kwargs)
        if direction % 2 == 0:
            return lm_stl.encap_streams(opts)
        return lm_stl.return_streams(opts)


def register():
    return STLS1()
