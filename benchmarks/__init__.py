"""tierd's benchmarks: tierd against raw Pykka and raw pyzmq, in one run, as ratios."""
