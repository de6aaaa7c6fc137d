"""tests/conftest.claim_redis_db: a real-Redis run takes a db index of its own and never
flushes one holding keys the suite did not write."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from tests.conftest import REDIS_DB_LOCK, claim_redis_db, release_redis_db

BASE = "redis://127.0.0.1:6379/0"


@pytest.fixture
def server() -> Any:
    """One fake Redis server with its 16 db indexes."""
    fake = fakeredis.FakeServer()

    def connect(url: str) -> Any:
        index = int(url.rsplit("/", 1)[1] or 0)
        return fakeredis.FakeRedis(server=fake, db=index, decode_responses=True)

    return connect


def db(connect: Any, index: int) -> Any:
    return connect(f"redis://127.0.0.1:6379/{index}")


class TestClaimRedisDb:
    def test_a_database_with_someone_elses_keys_is_never_flushed(self, server: Any) -> None:
        db(server, 1).set("their:data", "precious")
        url, *_ = claim_redis_db(BASE, server)
        assert url.endswith("/2")
        assert db(server, 1).get("their:data") == "precious"

    def test_two_runs_never_share_a_database(self, server: Any) -> None:
        first, *_ = claim_redis_db(BASE, server)
        second, *_ = claim_redis_db(BASE, server)
        assert first != second

    def test_the_urls_own_index_is_never_claimed(self, server: Any) -> None:
        url, *_ = claim_redis_db("redis://127.0.0.1:6379/1", server)
        assert not url.endswith("/1")

    def test_a_database_a_crashed_run_left_behind_is_claimed_again(self, server: Any) -> None:
        url, admin, _token = claim_redis_db(BASE, server)
        server(url).set("{shop}:avail", "left by a crashed run")
        admin.delete(REDIS_DB_LOCK.format(url.rsplit("/", 1)[1]))  # its lock lapsed
        again, *_ = claim_redis_db(BASE, server)
        assert again == url and server(url).dbsize() == 0

    def test_released_it_is_empty_and_no_longer_the_suites(self, server: Any) -> None:
        url, admin, token = claim_redis_db(BASE, server)
        server(url).set("{shop}:avail", "x")
        release_redis_db(url, admin, token, server)
        assert server(url).dbsize() == 0
        server(url).set("their:data", "now someone else's")
        again, *_ = claim_redis_db(BASE, server)
        assert again != url and server(url).get("their:data") == "now someone else's"
