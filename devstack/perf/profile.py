"""Where a web worker's time goes: py-spy samples one gunicorn worker under load, and the
samples are folded into the functions that ran (self time) and the ones they ran under."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^:]+)(?::\d+)?\)$")


def workers_of(master_pid: int) -> list[int]:
    """The child processes of a gunicorn master (its workers)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def record(pid: int, seconds: int, output: Path) -> bool:
    """Sample ``pid`` for ``seconds`` into ``output`` (collapsed stacks); False without py-spy."""
    spy = shutil.which("py-spy") or str(Path(__file__).resolve().parents[2] / ".venv/bin/py-spy")
    if not Path(spy).exists():
        return False
    argv = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
            "--format", "raw", "--output", str(output), "--nonblocking"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    return done.returncode == 0 and output.exists()


def summarize(collapsed: Path, top: int = 15) -> list[tuple[str, float, float]]:
    """``(function, self %, inclusive %)`` of the busiest functions, idle waiting left out."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_name(frame) for frame in stack.split(";")]
        if _idle(frames[-1]):
            continue
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for name in set(frames):
            under[name] += samples
    if not total:
        return []
    return [
        (name, 100 * samples / total, 100 * under[name] / total)
        for name, samples in own.most_common(top)
    ]


def hot_paths(collapsed: Path, names: list[str]) -> dict[str, float]:
    """Inclusive share of busy samples under each of ``names`` (substring of a frame)."""
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_name(frame) for frame in stack.split(";")]
        if _idle(frames[-1]):
            continue
        total += int(count)
        for name in names:
            if any(name in frame for frame in frames):
                under[name] += int(count)
    return {name: 100 * under[name] / total if total else 0.0 for name in names}


def _name(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match.group("file").split("site-packages/")[-1].split("/work/main/")[-1]
    return f"{match.group('function')} ({file})"


def _idle(frame: str) -> bool:
    # The gevent hub waiting for sockets is idle time, not work.
    return any(word in frame for word in ("epoll", "select", "poll (", "wait (", "switch ("))
