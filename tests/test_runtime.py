"""The real runtime's wiring (app/runtime.py)."""

from __future__ import annotations

from typing import Any

from app.config import load_config
from app.gateways.payments import StripeGateway
from app.runtime import WEB_STRIPE_WAIT_SECONDS, WORKER_STRIPE_WAIT_SECONDS, build_runtime
from tests.fakes import RecordingJobs


class TestStripeBudgetWait:
    """The web asks Stripe only for a buyer's saved cards (issue 18): it waits briefly for
    the fleet's budget and answers 503, where a worker waits its turn."""

    def test_the_web_waits_briefly_a_worker_its_turn(self) -> None:
        config = load_config({}, dotenv=False)
        web = build_runtime(config, stripe_wait=WEB_STRIPE_WAIT_SECONDS).gateway
        worker = build_runtime(config, jobs=RecordingJobs()).gateway
        assert isinstance(web, StripeGateway) and isinstance(worker, StripeGateway)
        assert web.budget is not None and worker.budget is not None
        assert web.budget.max_wait == WEB_STRIPE_WAIT_SECONDS < WORKER_STRIPE_WAIT_SECONDS
        assert worker.budget.max_wait == WORKER_STRIPE_WAIT_SECONDS

    def test_the_web_app_builds_its_runtime_with_the_short_wait(self, monkeypatch: Any) -> None:
        import app as app_package

        seen: dict[str, Any] = {}
        real = app_package.build_runtime

        def spy(config: Any, jobs: Any = None, **kwargs: Any) -> Any:
            seen.update(kwargs)
            return real(config, jobs, **kwargs)

        monkeypatch.setattr(app_package, "build_runtime", spy)
        try:
            app_package.create_app(load_config({}, dotenv=False))
        finally:
            from app.runtime import uninstall

            uninstall()
        assert seen["stripe_wait"] == WEB_STRIPE_WAIT_SECONDS
