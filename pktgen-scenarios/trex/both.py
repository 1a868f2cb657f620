"""TRex STL profile, scenario "both ways" on the single router: port 0 sends the encap traffic
(plain, to the remote MOs, into the access port), port 1 the decap traffic (LM from the peer AR,
to the local MOs, into the core port), at the same rate.

    start -f trex/both.py -p 0 1 -m 5mpps -t family=v4,outer=v4,size=imix

Tunables: family (inner, both directions), outer (of the decap direction; the encap direction's
outer family is the config's), size, eids, dist, zipf_s, hot, hot_pct, pps (per port): see
encap.py and decap.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_stl  # noqa: E402


class STLS1(object):
    def get_streams(self, direction=0, port_id=0, family="v4", outer="v4", size="64", eids=250, dist="uniform",
                    zipf_s=1.0, hot=32, hot_pct=50.0, pps=1e6, **kwargs):
        opts = lm_stl.options(locals(), kwargs)
        if direction % 2 == 0:
            return lm_stl.encap_streams(opts)
        opts["inner"] = opts["family"]
        return lm_stl.decap_streams(opts)


def register():
    return STLS1()
