"""The shop webhook suite on PostgreSQL: its upserts, row locks and keyset reads."""

from __future__ import annotations

import pytest

from tests.services.test_shop_webhooks import (  # noqa: F401 -- the same tests, another database
    TestDelivery,
    TestOneEventPerChange,
    TestResend,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url
