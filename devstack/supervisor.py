"""A small foreground process supervisor for the demo stack.

It starts named child processes, prefixes each line they print with the child's name,
stops all of them on Ctrl-C (SIGINT) or SIGTERM, and — when a child dies on its own —
reports it, stops the others and exits non-zero. One-shot setup steps (migrations,
seeding) run to completion first with the same prefixing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TextIO

# Grace period between SIGTERM and SIGKILL when stopping a child.
STOP_TIMEOUT = 10.0

# Lines of each child's output kept for readiness checks and failure messages.
RECENT_LINES = 200

_COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93")


@dataclass
class Child:
    """One supervised process: its name, command line and environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    pump: threading.Thread | None = None
    # When set, the child writes its output straight to this file (a log drain), unread.
    output: str | None = None
    # When set, written to the child's standard input, which is then closed (a secret that
    # must not appear on a command line or in the environment).
    stdin: str | None = None
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_LINES), repr=False)

    def tail(self, lines: int = 40) -> str:
        """Its last ``lines`` lines of output (for failure messages)."""
        return "\n".join(list(self.recent)[-lines:])

    def said(self, text: str) -> bool:
        """True once one of its recent output lines contains ``text``."""
        return any(text in line for line in list(self.recent))


class ChildFailed(RuntimeError):
    """Raised when a setup step exits non-zero or a server dies unexpectedly."""


class Supervisor:
    """Runs children in the foreground and keeps their output readable."""

    def __init__(self, *, cwd: str | None = None, out: TextIO | None = None) -> None:
        self.cwd = cwd
        self.out = out or sys.stdout
        self.children: list[Child] = []
        self._write_lock = threading.Lock()
        self._stopping = threading.Event()
        self._width = 8

    # --- output ----------------------------------------------------------------------

    def log(self, name: str, line: str) -> None:
        """Print ``line`` prefixed with ``name`` (coloured when the output is a terminal)."""
        self._width = max(self._width, len(name))
        prefix = f"{name:<{self._width}} | "
        if self.out.isatty():
            colour = _COLOURS[sum(map(ord, name)) % len(_COLOURS)]
            prefix = f"\033[{colour}m{prefix}\033[0m"
        with self._write_lock:
            self.out.write(prefix + line.rstrip("\n") + "\n")
            self.out.flush()

    def _pump(self, child: Child, stream: IO[str]) -> None:
        with stream:  # closed at EOF: the child has exited
            for line in stream:
                child.recent.append(line.rstrip("\n"))
                self.log(child.name, line)

    # --- processes -------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        env = {**os.environ, **child.env, "PYTHONUNBUFFERED": "1"}
        # Closed below once the child has its own copy of the descriptor.
        drain = open(child.output, "a") if child.output else None  # noqa: SIM115
        # A session of its own: the terminal's Ctrl-C reaches only the supervisor, which
        # then stops the children in order instead of all of them dying at once.
        child.process = subprocess.Popen(
            list(child.argv),
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL if child.stdin is None else subprocess.PIPE,
            stdout=drain or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        if child.stdin is not None:
            assert child.process.stdin is not None
            child.process.stdin.write(child.stdin)
            child.process.stdin.close()
        if drain is not None:
            drain.close()  # the child holds its own descriptor
            return
        assert child.process.stdout is not None
        child.pump = threading.Thread(
            target=self._pump, args=(child, child.process.stdout), daemon=True
        )
        child.pump.start()

    def run_step(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, stdin: str | None = None
    ) -> None:
        """Run a one-shot command to completion (``stdin`` written to its standard input);
        ChildFailed when it exits non-zero."""
        child = Child(name, argv, env, stdin=stdin)
        self._spawn(child)
        assert child.process is not None and child.pump is not None
        code = child.process.wait()
        child.pump.join(timeout=5)
        if code != 0:
            raise ChildFailed(f"{name} exited with code {code}")

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], *, output: str | None = None
    ) -> Child:
        """Start a long-running child; ``output``: its output goes to that file, unread
        (a load test's server, whose lines a reader thread could not keep up with)."""
        child = Child(name, argv, env, output=output)
        self._spawn(child)
        self.children.append(child)
        return child

    def check(self) -> None:
        """ChildFailed if any long-running child has exited."""
        for child in self.children:
            assert child.process is not None
            code = child.process.poll()
            if code is not None:
                raise ChildFailed(f"{child.name} exited unexpectedly with code {code}")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Poll ``ready`` until true, failing fast if a child dies meanwhile."""
        deadline = time.monotonic() + timeout
        while not ready():
            self.check()
            if self._stopping.is_set():
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                raise ChildFailed(f"timed out waiting for {what}")
            time.sleep(0.1)

    def watch(self) -> None:
        """Block until a stop is requested (returns) or a child dies (ChildFailed)."""
        while not self._stopping.is_set():
            self.check()
            self._stopping.wait(0.2)

    def request_stop(self, *_args: object) -> None:
        """Signal handler: ask ``watch`` to return."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        """Route SIGINT and SIGTERM to :meth:`request_stop`."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    def stop_child(self, child: Child) -> None:
        """Stop one long-running child (TERM, then KILL after the grace) and forget it."""
        self._stop(child, STOP_TIMEOUT)
        if child.pump is not None:
            child.pump.join(timeout=2)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        """Stop every child, newest first, each once the one started after it has exited.

        The app (web, worker, clock) thus stops before the Redis it listens to, so a clean
        Ctrl-C logs no "lost its subscription; reconnecting". All share one grace period.
        """
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in reversed(self.children):
            self._stop(child, max(1.0, deadline - time.monotonic()))
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=2)

    def _stop(self, child: Child, grace: float) -> None:
        """SIGTERM to the child itself, SIGKILL to its whole group after ``grace`` seconds.

        TERM goes to the leader only: gunicorn and dramatiq pass it on to their own workers,
        and a dramatiq worker that gets a second TERM (one from the group, one from its
        parent) exits at once with "Killing worker process".
        """
        if child.process is None or child.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.process.pid, signal.SIGTERM)
        try:
            child.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.log("demo", f"{child.name} did not stop in time; killing it")
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Signal the child's whole process group (gunicorn and dramatiq fork workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
