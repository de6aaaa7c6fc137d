"""Captures and restocks on PostgreSQL: the order row lock serialises them there."""

from __future__ import annotations

import pytest

from tests.services.test_authorizations import TestOneCaptureInFlight  # noqa: F401
from tests.services.test_holds import TestRestockCap  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url
