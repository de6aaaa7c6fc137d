"""Where a run's CPU went: seconds per role of the stack, from ``/proc`` (Linux).

A snapshot reads every process's user + system time and the machine's busy time; the
difference of two snapshots says how much each role used in between — the web, the
worker, the clock, the emulator, Redis, PostgreSQL and this process (the load generator) — and how
much of the machine was busy. Processes that started and ended in between (an unpooled
connection's PostgreSQL backend) show only in the machine's total: the gap between the
two is their share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")

# A process's role from its command line; the first pattern that matches wins.
ROLES = (
    ("clock", "tasks.clock"),
    ("mail catcher", "devstack.mailcatcher"),
    ("worker", "dramatiq"),
    ("web", "gunicorn"),
    ("emulator", "stripe_emulator"),
    ("Redis", "redis-server"),
    ("PostgreSQL", "postgres"),
)


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds per pid (user + system), each pid's role, the machine's busy seconds,
    and the system (kernel) part of each pid's seconds."""

    per_pid: dict[int, float]
    roles: dict[int, str]
    busy: float
    system: dict[int, float] = field(default_factory=dict)


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def _role(pid: int, cmdline: str) -> str:
    if pid == os.getpid():
        return "load generator"
    for role, pattern in ROLES:
        if pattern in cmdline:
            return role
    return "other"


def snapshot() -> Snapshot:
    """Every process's CPU seconds now (empty where ``/proc`` is missing)."""
    ticks = _ticks() if PROC.exists() else 1.0
    per_pid: dict[int, float] = {}
    system: dict[int, float] = {}
    roles: dict[int, str] = {}
    for entry in PROC.glob("[0-9]*") if PROC.exists() else ():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended while we looked
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        per_pid[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        system[pid] = int(fields[12]) / ticks
        roles[pid] = _role(pid, cmdline)
    return Snapshot(per_pid, roles, _machine_busy(ticks), system)


def _machine_busy(ticks: float) -> float:
    """Busy CPU seconds of all cores since boot, from /proc/stat's first line."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    values = [int(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / ticks


def cores() -> int:
    """The cores this machine has."""
    return os.cpu_count() or 1


def used(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per role between two snapshots, plus ``machine busy``."""
    spent: dict[str, float] = {}
    for pid, seconds in after.per_pid.items():
        delta = seconds - before.per_pid.get(pid, 0.0)
        if delta > 0:
            role = after.roles[pid]
            spent[role] = spent.get(role, 0.0) + delta
    spent["machine busy"] = after.busy - before.busy
    return spent


def describe(spent: dict[str, float], wall: float, per: int, unit: str) -> list[str]:
    """Lines: each role's CPU seconds, cores and milliseconds per ``unit``."""
    lines = []
    for role, seconds in sorted(spent.items(), key=lambda kv: (kv[0] == "machine busy", -kv[1])):
        cores = seconds / wall if wall else 0.0
        each = 1000 * seconds / per if per else 0.0
        lines.append(f"  {role:<16}{seconds:>8.1f} s{cores:>8.2f} cores{each:>8.1f} ms/{unit}")
    return lines
