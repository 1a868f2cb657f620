"""TRex STL profile, scenario "miss storm": plain UDP into the access port toward EIDs inside a
mobile prefix that nobody publishes (198.51.100.128/25, 2001:db8:4::/64). Every packet misses
the worker's cache and asks the control lcore; without a DHT the answer is "no mapping"
(drop `unresolved`), with one a DHT lookup (then `dht.negative_ttl_ms` of negative caching).

    start -f trex/miss.py -p 0 -m 2mpps -t family=v6,misses=65536,hit_pct=50
    start -f trex/miss.py -p 0 1 ...    port 1 adds decap traffic (uniform, to `eids` MOs): does
                                        the storm on the control lcore slow the hit path?

Tunables:
    family, size              as in encap.py
    misses                    distinct miss EIDs (v4: at most 126)
    hit_pct                   % of port 0's packets that go to `eids` remote MOs (cache hits)
    eids                      hit destinations (port 0) and decap destinations (port 1)
    pps                       packets/s per port, before -m
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_stl  # noqa: E402


class STLS1(object):
    def get_streams(self, direction=0, port_id=0, family="v4", size="64", misses=126, hit_pct=0.0, eids=250,
                    pps=1e6, **kwargs):
        opts = lm_stl.options(locals(), kwargs)
        if direction % 2 == 0:
            return lm_stl.miss_streams(opts)
        opts.update(inner=opts["family"], outer=opts["family"], dist="uniform")
        return lm_stl.decap_streams(opts)


def register():
    return STLS1()
