"""The chaos suite's stack: the real processes on servers of the suite's own.

Everything binds 127.0.0.1 and runs under one :class:`devstack.supervisor.Supervisor`:

- a private ``redis-server`` (its own port, ``appendonly yes``, a temp dir),
- a private PostgreSQL cluster (``initdb`` / ``pg_ctl`` from the Debian package, its own
  port and socket dir in a temp dir; as the ``postgres`` user when the suite runs as root,
  since postgres refuses to run as root),
- the Stripe emulator and the mail catcher (``devstack.demo.start_backing_services``),
- two web dynos (gunicorn as the Procfile runs it, one gevent worker each, sharing the
  port with ``--reuse-port`` as two dynos behind a router would),
- two worker dynos (``dramatiq tasks.worker``) and the clock (``python -m tasks.clock``).

:meth:`ChaosStack.crash` is ``kill -9`` of one dyno's processes (its process group: the
process the suite started and its forks, by pid), :meth:`ChaosStack.revive` starts it
again as a process manager would. Only processes the suite started are ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import redis as redis_lib
import requests

from devstack import demo
from devstack.serving import free_port
from devstack.supervisor import Child, Supervisor

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PY = sys.executable
JWT_SECRET = "chaos-jwt-secret-at-least-32-bytes-long!"
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)

# What each app process prints once it serves (a revived dyno is waited for).
READY_TEXT = {
    "web": "Booting worker with pid",
    "worker": demo.WORKER_READY,
    "clock": "clock started",
}


def missing_binaries() -> str | None:
    """Why the suite cannot run here (None: it can)."""
    if not shutil.which("redis-server"):
        return "redis-server not installed"
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        return "PostgreSQL server binaries (initdb, pg_ctl) not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user (postgres refuses root)"
    return None


class Progress:
    """Progress lines on the terminal while the suite runs (pytest's capture aside)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._write(f"[chaos {time.monotonic() - self._t0:6.1f}s] {line}")


# --- private servers ------------------------------------------------------------------


class PrivateRedis:
    """``redis-server`` on a port and a directory of its own, AOF on (``everysec``)."""

    def __init__(self, sup: Supervisor, workdir: Path) -> None:
        self.sup = sup
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--bind", HOST, "--port", str(self.port), "--dir", str(self.dir)]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        argv += ["--protected-mode", "yes", "--maxclients", "2000", "--loglevel", "warning"]
        self.child = self.sup.start("redis", argv, {})
        _wait(lambda: _pingable(self.url), "the private Redis", 30)

    def crash(self) -> None:
        """``kill -9`` the server (acknowledged writes are in the AOF: written before the
        reply; ``everysec`` only defers the fsync, which a process crash does not need)."""
        if self.child is not None:
            kill_child(self.sup, self.child)

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url, decode_responses=True)


class PrivatePostgres:
    """A cluster of the suite's own: ``initdb`` into a temp dir, ``pg_ctl`` on its own port.

    Runs as ``postgres`` when the suite runs as root (the directory is handed to it).
    """

    def __init__(self) -> None:
        assert PG_BIN is not None
        self.bin = PG_BIN
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/checkout"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        subprocess.run(
            [*self.as_user, *argv], check=True, timeout=timeout, capture_output=True, cwd=self.dir
        )

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.start()
        self._run(
            str(self.bin / "createdb"),
            "-h",
            HOST,
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "checkout",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c max_connections=300"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>``; ``immediate`` is a crash (WAL recovery at the next start)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the stack ------------------------------------------------------------------------


@dataclass
class ChaosStack:
    """The running stack, its URLs, and the process manager's two moves: crash, revive."""

    sup: Supervisor
    plan: demo.Plan
    env: dict[str, str]
    redis_server: PrivateRedis
    postgres: PrivatePostgres
    progress: Progress
    dynos: dict[str, Child] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def web(self) -> str:
        return self.plan.web_url.rstrip("/")

    @property
    def emulator(self) -> str:
        return self.plan.emulator_url

    @property
    def mail(self) -> str:
        return self.plan.mail_web_url.rstrip("/")

    @property
    def webhook_secret(self) -> str:
        return self.plan.webhook_secret

    @property
    def admin_token(self) -> str:
        claims = {"sub": "chaos-admin", "role": "admin", "exp": int(time.time()) + 3600}
        return jwt.encode(claims, JWT_SECRET, algorithm="HS256")

    def stripe(self, retries: int = 0) -> Any:
        """The official SDK pointed at the emulator (what the buyer's Stripe.js does)."""
        import stripe

        return stripe.StripeClient(
            "sk_test_chaos", base_addresses={"api": self.emulator}, max_network_retries=retries
        )

    def redis(self) -> redis_lib.Redis:
        return self.redis_server.client()

    # dynos ----------------------------------------------------------------------------

    def start_dyno(self, name: str) -> Child:
        child = self.sup.start(name, self.commands[name], self.env)
        self.dynos[name] = child
        role = name.rstrip("0123456789")
        _wait(lambda: child.said(READY_TEXT[role]), f"{name} to start", 120)
        return child

    def crash(self, name: str) -> None:
        """``kill -9`` of one dyno (its processes, by the pid the suite started)."""
        kill_child(self.sup, self.dynos[name])

    def revive(self, name: str) -> None:
        """Start a crashed dyno again, as a process manager would."""
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.start_dyno(name)

    def ensure_running(self) -> None:
        """Revive any dyno that died on its own (a process manager's job too)."""
        for name, child in list(self.dynos.items()):
            if child.process is not None and child.process.poll() is not None:
                self.progress(f"{name} had exited (code {child.process.returncode}); restarting")
                self.sup.children = [c for c in self.sup.children if c is not child]
                self.revive(name)

    def rebuild_inventory(self) -> str:
        """``flask --app wsgi inventory rebuild``, as the runbook says."""
        done = subprocess.run(
            [PY, "-m", "flask", "--app", "wsgi", "inventory", "rebuild"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    def put_product(self, sku: str, stock: int, price: int = 1500) -> None:
        body = {
            "name": sku,
            "description": "chaos",
            "price": {"amount": price, "currency": "usd"},
            "stockOnHand": stock,
        }
        for _ in range(30):
            try:
                response = self.session.put(
                    f"{self.web}/api/admin/products/{sku}",
                    json=body,
                    timeout=10,
                    headers={"Authorization": f"Bearer {self.admin_token}"},
                )
                if response.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise AssertionError(f"could not create {sku}")

    def emulator_control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        if body is None:
            response = self.session.get(f"{self.emulator}/_emulator/{path}", timeout=30)
        else:
            response = self.session.post(f"{self.emulator}/_emulator/{path}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        self.sup.stop_all()
        self.postgres.remove()
        with contextlib.suppress(Exception):
            self.sup.out.close()


def kill_child(sup: Supervisor, child: Child) -> None:
    """SIGKILL the process group of a child the suite started (its pid is the group id),
    reap it, and forget it."""
    assert child.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signal.SIGKILL)
    child.process.wait(timeout=30)
    if child.pump is not None:
        child.pump.join(timeout=5)
    sup.children = [c for c in sup.children if c is not child]


def start_chaos_stack(
    workdir: Path,
    progress: Progress,
    *,
    hold_ttl: int,
    search_delay: int,
    redis_server: Callable[[Supervisor, Path], Any] = PrivateRedis,
    env: dict[str, str] | None = None,
    dynos: int = 2,
) -> ChaosStack:
    """Private Redis and PostgreSQL, emulator and mail, ``dynos`` web and worker dynos each,
    and the clock. ``redis_server`` builds the Redis (the failover suite's is replicated,
    behind sentinels), ``env`` adds to the app processes' environment."""
    sup = Supervisor(cwd=str(ROOT), out=(workdir / "stack.log").open("w"))
    redis = redis_server(sup, workdir)
    postgres = PrivatePostgres()
    try:
        redis.start()
        progress(f"private redis-server (AOF) on :{redis.port}")
        postgres.init()
        progress(f"private PostgreSQL cluster on :{postgres.port} ({postgres.dir})")
        plan = demo.Plan(
            ports=demo.choose_ports({}, free=True),
            var_dir=workdir,
            redis_url=redis.url,
            database_url=postgres.url,
            real_stripe=False,
        )
        app_env = plan.app_env()
        app_env.update(
            JWT_SECRET=JWT_SECRET,
            HOLD_TTL_SECONDS=str(hold_ttl),
            STRIPE_SEARCH_DELAY_SECONDS=str(search_delay),
            RATELIMIT_ENABLED="false",
            # The fleet's budget above the emulator's 25/s (as when Stripe's test-mode limit
            # is lower than configured): real 429s, the budget's AIMD and the retries.
            STRIPE_REQUESTS_PER_SECOND="40",
            **(env or {}),
        )
        stack = ChaosStack(sup, plan, app_env, redis, postgres, progress)
        demo.start_backing_services(sup, plan)
        demo.prepare_data(sup, app_env, seed=False)
        bind = f"{HOST}:{plan.ports['web']}"
        for n in range(1, dynos + 1):
            stack.commands[f"web{n}"] = [*demo.web_command(bind, workers=1), "--reuse-port"]
        for n in range(1, dynos + 1):
            stack.commands[f"worker{n}"] = demo.worker_command(processes=1)
        stack.commands["clock"] = [PY, "-m", "tasks.clock"]
        for name in stack.commands:
            stack.start_dyno(name)
        _wait(lambda: demo.http_ok(f"{stack.web}/readyz"), "the web dynos", 60)
        progress(f"stack up: web {stack.web}, emulator {stack.emulator}, log {workdir}")
        return stack
    except BaseException:
        sup.stop_all()
        postgres.remove()
        raise


# --- small helpers --------------------------------------------------------------------


def _wait(ready: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _pingable(url: str) -> bool:
    try:
        client = redis_lib.Redis.from_url(url, socket_timeout=1)
        ok = bool(client.ping())
        client.close()
        return ok
    except redis_lib.RedisError:
        return False
