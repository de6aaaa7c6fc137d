"""The Redis Lua scripts and the one wrapper that runs them.

Each ``*.lua`` file here documents its KEYS, ARGV and return values in its header.
Scripts whose header says ``-- uses: stock.lua`` (or another of :data:`LIBRARIES`) get
those shared helpers prepended, so every operation stays one atomic call. Scripts are
registered once per process (redis-py ``Script``: EVALSHA, falling back to SCRIPT LOAD
on the first call against a server) and :func:`raise_for_refusal` turns refusal replies
into domain errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from app.errors import IdempotencyKeyReused, InvalidRequest, OutOfStock

HERE = Path(__file__).resolve().parent
# Helper files, prepended to the scripts that name them; never run on their own.
LIBRARIES = ("stock.lua", "reservation.lua", "counters.lua")
NAMES = (
    "hold",
    "confirm",
    "release",
    "extend",
    "catalog",
    "restock",
    "rebuild",
    "admit",
    "publish",
    "stripe_budget",
    "waiters",
    "rehold",
    "unclaim",
    "reclaim",
    "unredeem",
    "reredeem",
    "promo_rebuild",
)
USES = re.compile(r"^-- uses: (.+)$", re.MULTILINE)


def libraries(text: str) -> list[str]:
    """The helper files a script's header names in ``-- uses: a.lua, b.lua`` lines."""
    used = [part.strip() for line in USES.findall(text) for part in line.split(",")]
    unknown = [name for name in used if name not in LIBRARIES]
    if unknown:
        raise KeyError(f"unknown Lua library: {', '.join(unknown)}")
    return used


def source(name: str) -> str:
    """The full text sent to Redis for script ``name`` (helpers prepended when used)."""
    text = (HERE / f"{name}.lua").read_text(encoding="utf-8")
    helpers = [(HERE / lib).read_text(encoding="utf-8") for lib in libraries(text)]
    return "\n".join([*helpers, text])


@cache
def script(name: str) -> Script:
    """The registered script ``name``, shared by every client in this process."""
    if name not in NAMES:
        raise KeyError(name)
    # Bytes, so the SHA needs no client encoder; the client is passed on each call.
    return Script(None, source(name).encode("utf-8"))  # type: ignore[arg-type]


def run(redis: Redis, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run script ``name`` on ``redis`` (one EVALSHA once the server knows it)."""
    return script(name)(keys=list(keys), args=list(args), client=redis)


def run_replicated(
    redis: Redis,
    name: str,
    keys: Sequence[str],
    args: Sequence[Any],
    *,
    replicas: int,
    timeout_ms: int,
) -> tuple[Any, int]:
    """Run script ``name`` and ``WAIT replicas timeout_ms`` in ONE round trip: its reply,
    and how many replicas acknowledged every write made so far on this connection."""
    reply, (acked,) = run_beside(redis, name, keys, args, ("WAIT", replicas, timeout_ms))
    return reply, int(acked)


def run_beside(
    redis: Redis, name: str, keys: Sequence[str], args: Sequence[Any], *commands: Sequence[Any]
) -> tuple[Any, list[Any]]:
    """Run script ``name``, then each of ``commands``, in ONE round trip (a pipeline, not a
    transaction): the script's reply and the commands' replies."""
    registered = script(name)
    for _attempt in range(2):
        with redis.pipeline(transaction=False) as pipe:
            pipe.evalsha(registered.sha, len(keys), *keys, *args)
            for command in commands:
                pipe.execute_command(*command)
            try:
                reply, *replies = pipe.execute()
            except NoScriptError:
                # A new (or just promoted) server: the script ran nowhere; load it, go again.
                registered.sha = redis.script_load(registered.script)
                continue
        return reply, replies
    raise NoScriptError(f"script {name} could not be loaded")


def preload(redis: Redis) -> None:
    """Load every script into the server so the first request pays no SCRIPT LOAD."""
    for name in NAMES:
        script(name).sha = redis.script_load(script(name).script)


def text(value: Any) -> str:
    """A reply element as ``str`` whether the client decodes responses or not."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def raise_for_refusal(reply: Sequence[Any], items: Sequence[tuple[str, int]]) -> None:
    """Raise the domain error for a refusal reply; return quietly for any other reply.

    ``items`` are the lines as submitted, so unknown SKUs are reported on every
    ``items.N.sku`` that names them.
    """
    code = text(reply[0])
    if code == "UNKNOWN":
        unknown = {text(sku) for sku in reply[1:]}
        fields = {
            f"items.{i}.sku": ["Unknown SKU."] for i, (sku, _) in enumerate(items) if sku in unknown
        }
        raise InvalidRequest("Some items are not sold here.", fields=fields)
    if code == "SHORT":
        rest = list(reply[1:])
        short = [
            {"sku": text(rest[i]), "requested": int(rest[i + 1]), "available": int(rest[i + 2])}
            for i in range(0, len(rest), 3)
        ]
        raise OutOfStock(short)
    if code == "MISMATCH":
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body."
        )
