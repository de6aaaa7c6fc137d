"""The Lua scripts themselves: documented headers, Lua 5.1, registered once."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app import lua
from models.statuses import ReservationStatus


@pytest.mark.parametrize("name", lua.NAMES)
class TestScriptFiles:
    def test_header_lists_keys_argv_and_returns(self, name: str) -> None:
        header = (lua.HERE / f"{name}.lua").read_text().split("\n\n")[0]
        assert "KEYS[1]" in header
        assert "ARGV[" in header
        assert "Returns" in header

    def test_compiles_on_both_servers(self, name: str, any_redis: Any) -> None:
        assert any_redis.script_load(lua.source(name)) == lua.script(name).sha

    def test_keys_share_the_shop_hash_tag(self, name: str) -> None:
        text = (lua.HERE / f"{name}.lua").read_text()
        key_lines = [line for line in text.splitlines() if line.startswith("-- KEYS[")]
        assert key_lines
        # The one exception: admit.lua queues the worker's message in Dramatiq's own keys
        # (its namespace, not ours: docs/architecture.md, "Redis keys").
        ours = [line for line in key_lines if not (name == "admit" and " dramatiq:" in line)]
        assert len(key_lines) - len(ours) == (2 if name == "admit" else 0)
        assert all("{shop}:" in line for line in ours)


class TestRegistry:
    def test_library_is_prepended_only_where_used(self) -> None:
        assert "local function check_lines" in lua.source("hold")
        assert "local function check_lines" in lua.source("admit")
        assert "local function check_lines" not in lua.source("confirm")

    @pytest.mark.parametrize("name", ["confirm", "extend", "release"])
    def test_status_guard_is_prepended_where_used(self, name: str) -> None:
        assert "local function not_held" in lua.source(name)
        assert "local function check_lines" not in lua.source(name)

    def test_guard_is_not_prepended_elsewhere(self) -> None:
        assert "local function not_held" not in lua.source("hold")
        assert "local function not_held" not in lua.source("stripe_budget")

    def test_scripts_spell_the_reservation_statuses(self) -> None:
        pattern = re.compile(r"'status', '(\w+)'|status ~= '(\w+)'")
        texts = [path.read_text() for path in lua.HERE.glob("*.lua")]
        spelled = {word for text in texts for m in pattern.findall(text) for word in m if word}
        assert spelled and spelled <= set(ReservationStatus)

    # fakeredis only: SCRIPT FLUSH on the shared real server would disturb other runs.
    def test_runs_without_a_prior_script_load(self, redis: Any) -> None:
        redis.script_flush()
        redis.hset("{shop}:avail", "A", 1)
        names = ["{shop}:avail", "{shop}:avail:inactive", "{shop}:price"]
        assert lua.run(redis, "catalog", names, ["A", 2, "", ""]) == ["OK", 3]

    def test_runs_beside_other_commands_without_a_prior_script_load(self, redis: Any) -> None:
        redis.script_flush()
        redis.hset("{shop}:avail", "A", 1)
        names = ["{shop}:avail", "{shop}:avail:inactive", "{shop}:price"]
        reply, replies = lua.run_beside(
            redis, "catalog", names, ["A", 2, "", ""], ("HGET", "{shop}:avail", "A"), ("PING",)
        )
        assert (reply, replies) == (["OK", 3], ["3", True])

    def test_preload_loads_every_script(self, redis: Any) -> None:
        redis.script_flush()
        lua.preload(redis)
        shas = [lua.script(name).sha for name in lua.NAMES]
        assert all(redis.script_exists(*shas))

    def test_unknown_script_name(self) -> None:
        with pytest.raises(KeyError):
            lua.script("nope")


class TestUnclaim:
    def test_gives_back_only_the_callers_claim(self, any_redis: Any) -> None:
        key = "{shop}:confirming:o-1"
        any_redis.set(key, "ctoken_new", ex=60)
        assert lua.run(any_redis, "unclaim", [key], ["ctoken_old"]) == 0
        assert any_redis.get(key) in ("ctoken_new", b"ctoken_new")
        assert lua.run(any_redis, "unclaim", [key], ["ctoken_new"]) == 1
        assert any_redis.get(key) is None
        assert lua.run(any_redis, "unclaim", [key], ["ctoken_new"]) == 0


class TestReclaim:
    """reclaim.lua: a failed refund's restocked units off sale again, once per marker."""

    NAMES = ["{shop}:avail", "{shop}:avail:inactive", "{shop}:reclaim:o-1:7"]

    def test_takes_what_is_free_and_answers_a_retry_alike(self, any_redis: Any) -> None:
        any_redis.hset("{shop}:avail", mapping={"A": 5, "B": 1})
        any_redis.hset("{shop}:avail:inactive", "C", 2)
        first = lua.run(any_redis, "reclaim", self.NAMES, [60, "A", 2, "B", 3, "C", 1])
        assert [str(x) for x in first] == ["A", "2", "B", "1", "C", "1"]
        assert any_redis.hgetall("{shop}:avail") in ({"A": "3", "B": "0"}, {b"A": b"3", b"B": b"0"})
        assert int(any_redis.hget("{shop}:avail:inactive", "C")) == 1
        again = lua.run(any_redis, "reclaim", self.NAMES, [60, "A", 2, "B", 3, "C", 1])
        assert sorted(str(x) for x in again) == sorted(str(x) for x in first)
        assert int(any_redis.hget("{shop}:avail", "A")) == 3
        assert 0 < any_redis.ttl(self.NAMES[2]) <= 60

    def test_never_drives_a_counter_below_zero(self, any_redis: Any) -> None:
        any_redis.hset("{shop}:avail", "A", 0)
        assert [str(x) for x in lua.run(any_redis, "reclaim", self.NAMES, [60, "A", 2])] == [
            "A",
            "0",
        ]
        assert int(any_redis.hget("{shop}:avail", "A")) == 0
