"""``make bench``: the service's figures, measured with load generators that are not the
bottleneck (``wrk`` for every HTTP figure), each as a ratio against a baseline measured
in the same run. ``python -m devstack.perf`` prints the table; docs/performance.md keeps
it with the machine, the commands and where the time goes."""
