"""The cost bench's counters, loaded into the stack's own processes only.

``devstack.perf.cost`` puts this directory first on the ``PYTHONPATH`` of the web, the
worker and the clock it starts (with ``COST_PROBE=1`` and a shared
``PROMETHEUS_MULTIPROC_DIR``), so Python imports this module at start-up: it counts the
SQL statements, transactions and Redis round trips of the process
(``devstack.perf.counting`` says what each is) in Prometheus counters labelled by role,
which the bench reads from that directory. Production never loads this file.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def _chain_system_sitecustomize() -> None:
    # This module shadows the interpreter's own sitecustomize (Debian installs one): run
    # that one too, so the stack starts as it would without the probe.
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        folder = os.path.abspath(entry or ".")
        candidate = os.path.join(folder, "sitecustomize.py")
        if folder != here and os.path.exists(candidate):
            with open(candidate, encoding="utf-8") as source:
                exec(compile(source.read(), candidate, "exec"), {"__name__": "_sitecustomize"})
            return


def _argv() -> str:
    # sys.argv is not set yet when site imports this module: the kernel's copy is.
    try:
        with open("/proc/self/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _role(argv: str) -> str:
    for role, pattern in (("clock", "tasks.clock"), ("worker", "dramatiq"), ("web", "gunicorn")):
        if pattern in argv:
            return role
    return "other"


def _patch_first(argv: str) -> None:
    # The hooks import peewee and redis-py; a class defined before gevent patches the
    # standard library keeps the real thread-local (peewee's connection state: every
    # greenlet of the process would share one connection). ``dramatiq-gevent`` patches
    # first thing anyway: here it is done before, as the same call.
    if "dramatiq-gevent" in argv:
        from gevent import monkey

        monkey.patch_all()


def _counting() -> Any:
    # devstack/perf/counting.py of the bench's own checkout, by path: the stack may run
    # from another checkout (``--app-root``, an older one without that module), whose
    # ``devstack`` package comes first on its sys.path.
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "counting.py")
    spec = importlib.util.spec_from_file_location("_cost_counting", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def install() -> None:
    """Count, from here on, into the multiprocess Prometheus files."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") or not os.environ.get("COST_PROBE"):
        return
    argv = _argv()
    _patch_first(argv)
    from prometheus_client import Counter

    counting = _counting()

    role = _role(argv)
    trips = Counter("cost_redis_round_trips_total", "Redis round trips", ["role", "client"])
    counting.install(
        statement=Counter("cost_sql_statements_total", "SQL statements", ["role"]).labels(role).inc,
        transaction=Counter("cost_sql_transactions_total", "Transactions", ["role"])
        .labels(role)
        .inc,
        round_trip=trips.labels(role, "app").inc,
        broker_round_trip=trips.labels(role, "broker").inc,
    )


_chain_system_sitecustomize()
install()
