"""Run ``wrk`` (C, event-driven: it outruns a Python server on the same box) and read its
summary: requests per second, latency percentiles, non-2xx answers and socket errors."""

from __future__ import annotations

import dataclasses
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}

# A POST with a fresh Idempotency-Key per request (wrk's Lua, one counter per thread).
POST_SCRIPT = """
local counter = 0
local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
function init(args)
  counter = 0
end
request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format("wrk-%s-%d-%d", RUN, tid, counter)
  return wrk.format("POST", PATH, headers, BODY)
end
"""


@dataclass(frozen=True)
class Result:
    """One wrk run's summary."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    cpu_seconds: float = 0.0  # wrk's own user + system time

    def row(self, name: str) -> str:
        """A table row: name, req/s, p50, p99, requests, non-2xx."""
        return (
            f"{name:<44}{self.rps:>10,.0f}{self.p50_ms:>9.1f}{self.p99_ms:>9.1f}"
            f"{self.requests:>10,}{self.non_2xx + self.errors:>8,}"
        )


def require() -> str:
    """The wrk binary, or a clear error saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does this)")
    return path


def run(
    url: str,
    *,
    connections: int = 50,
    seconds: int = 8,
    threads: int = 2,
    post_json: str | None = None,
    run_id: str = "r",
) -> Result:
    """Load ``url`` for ``seconds`` with ``connections`` keep-alive connections."""
    argv = [require(), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    with tempfile.TemporaryDirectory() as tmp:
        if post_json is not None:
            path = re.sub(r"^https?://[^/]+", "", url)
            script = Path(tmp) / "post.lua"
            quoted = post_json.replace("\\", "\\\\").replace('"', '\\"')
            script.write_text(
                f'RUN = "{run_id}"\nPATH = "{path}"\nBODY = "{quoted}"\n' + POST_SCRIPT
            )
            argv += ["-s", str(script)]
        argv.append(url)
        before = _children_cpu()
        output = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    return dataclasses.replace(parse(output), cpu_seconds=_children_cpu() - before)


def _children_cpu() -> float:
    # The CPU of children waited for: between two reads, only wrk was.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse(output: str) -> Result:
    """The figures of wrk's text summary."""
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", output))
    requests = int(_search(r"(\d+) requests in", output))
    non_2xx = int(_search(r"Non-2xx or 3xx responses:\s+(\d+)", output, "0"))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return Result(
        rps=rps,
        p50_ms=_latency(output, "50%"),
        p99_ms=_latency(output, "99%"),
        requests=requests,
        non_2xx=non_2xx,
        errors=errors,
    )


def _latency(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    if match is None:
        raise ValueError(f"wrk output without the {percentile} latency:\n{output}")
    return float(match.group(1)) * UNITS[match.group(2)]


def _search(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is None:
            raise ValueError(f"wrk output without {pattern!r}:\n{text}")
        return default
    return match.group(1)
