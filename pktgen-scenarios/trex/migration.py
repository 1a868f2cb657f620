"""TRex STL profile for the migration storm: traffic concentrated on a hot set of MOs (MOs
0..hot-1, the ones ../migration-storm.sh moves) while the storm runs.

    single router (setup A):  start -f trex/migration.py -p 0 1 -m 2mpps
        port 1: decap traffic to the local MOs, hot_pct % of it to the hot set: held while an MO
                is leaving (migrate-begin), released when it is back (attach)
        port 0: encap traffic (uniform) as background
    router pair (setup B):    start -f trex/migration.py -p 0 1 -m 1mpps -t setup=pair,latency_pps=1000
        port 1: into ar2, toward the local MOs (hot set included): tunneled to ar1 while the MO is
                there, delivered by ar2 itself once it moved there (it comes back out of port 1)
        port 0: into ar1, toward the remote MOs (background)

Then, in another shell: ../migration-storm.sh (see README.md). Tunables: setup (single | pair),
family, outer (single: of the decap traffic), size, eids, hot, hot_pct, pps, latency_pps (pair).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_stl  # noqa: E402


class STLS1(object):
    def get_streams(self, direction=0, port_id=0, setup="single", family="v4", outer="v4", size="64", eids=250,
                    hot=32, hot_pct=50.0, pps=1e6, latency_pps=0, **kwargs):
        opts = lm_stl.options(locals(), kwargs)
        if opts["setup"] not in ("single", "pair"):
            raise ValueError("setup is single or pair, not %r" % opts["setup"])
        hot_traffic = dict(opts, dist="hot")
        background = dict(opts, dist="uniform", latency_pps=opts["latency_pps"] if opts["setup"] == "pair" else 0)
        if direction % 2 == 0:
            return lm_stl.encap_streams(background)
        if opts["setup"] == "pair":
            return lm_stl.return_streams(hot_traffic)
        hot_traffic["inner"] = opts["family"]
        return lm_stl.decap_streams(hot_traffic)


def register():
    return STLS1()
