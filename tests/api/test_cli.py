"""Flask CLI commands: migrate, products upsert, inventory rebuild, seed-demo, stripe-events."""

from __future__ import annotations

from typing import Any


def run(app: Any, *args: str) -> Any:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result


class TestCommands:
    def test_migrate_is_idempotent(self, app: Any) -> None:
        assert "up to date" in run(app, "migrate").output

    def test_products_upsert(self, app: Any, runtime: Any) -> None:
        run(app, "products", "upsert", "CLI-1", "--name", "Cli", "--price", "999", "--stock", "4")
        assert runtime.redis.hget("{shop}:avail", "CLI-1") == "4"

    def test_seed_demo(self, app: Any, runtime: Any) -> None:
        output = run(app, "seed-demo").output
        assert "MUG-LOGO" in output
        assert runtime.redis.hget("{shop}:avail", "MUG-LOGO") == "40"

    def test_seed_demo_pictures_are_served_by_the_app(self, app: Any, runtime: Any) -> None:
        run(app, "seed-demo")
        client = app.test_client()
        for product in client.get("/api/products").get_json():
            url = product["imageUrl"]
            assert url.startswith(f"{runtime.config.public_url}/static/web/catalog/"), url
            picture = client.get(url.removeprefix(runtime.config.public_url))
            assert (picture.status_code, picture.mimetype) == (200, "image/svg+xml"), url

    def test_inventory_rebuild_after_redis_loss(self, app: Any, runtime: Any) -> None:
        run(app, "seed-demo")
        runtime.redis.flushall()
        output = run(app, "inventory", "rebuild").output
        assert runtime.redis.hget("{shop}:avail", "MUG-LOGO") == "40"
        # Words for the demo's log, not a Python repr (RebuildReport(skus=6, …)).
        assert output == (
            "rebuilt 6 SKUs (Redis-only holds kept: 0, reservation records restored: 0, "
            "held records settled from the database: 0)\n"
            "rebuilt 0 promotion codes' terms and redemptions\n"
        )

    def test_inventory_rebuild_restores_the_promotion_codes(self, app: Any, runtime: Any) -> None:
        from app.services import promotions

        promotions.upsert(
            runtime.redis,
            promotions.PromotionInput("TEN", 10, None, "usd", None, None, None, 5, None, True),
        )
        runtime.redis.flushall()
        assert "rebuilt 1 promotion codes" in run(app, "inventory", "rebuild").output
        assert runtime.redis.hget("{shop}:promo:TEN", "max") == "5"


class TestStripeEvents:
    """The event types a shop enables at Stripe's webhook endpoint."""

    def test_one_type_a_line_each_with_a_handler(self, app: Any) -> None:
        from app.services.webhooks import HANDLERS

        lines = run(app, "stripe-events").output.splitlines()
        assert lines == sorted(HANDLERS)
        assert "payment_intent.succeeded" in lines
        # A paid order's other two events: nothing reads them, Stripe need not send them.
        assert "payment_intent.created" not in lines and "charge.succeeded" not in lines

    def test_comma_separated_for_stripe_listen(self, app: Any) -> None:
        one_line = run(app, "stripe-events", "--comma").output
        assert one_line == ",".join(run(app, "stripe-events").output.split()) + "\n"


class TestBuyersErase:
    def test_erases_and_reports(self, app: Any, runtime: Any) -> None:
        from app.services.checkout import create_order_from_submission
        from models import Order
        from tests.fakes import admit_checkout, stock

        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 1)], user_id="u-cli")
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None
        output = run(app, "buyers", "erase", "u-cli").output
        assert "1 order(s) redacted; Stripe customer deleted" in output
        assert Order.get_by_id(order.id).email.endswith("@redacted.invalid")
        assert "0 order(s) redacted" in run(app, "buyers", "erase", "u-cli").output

    def test_a_stripe_failure_exits_non_zero(self, app: Any, runtime: Any, gateway: Any) -> None:
        from app.errors import PaymentProviderError
        from app.services import customers

        customers.ensure_customer("u-down", gateway)
        gateway.fail_next("delete_customer", PaymentProviderError("down", retryable=True))
        result = app.test_cli_runner().invoke(args=["buyers", "erase", "u-down"])
        assert result.exit_code != 0
        assert "run it again" in result.output
