"""Stand-in for TRex's trex_stl_lib (test/scenarios/check_scenarios.py): see api.py."""
