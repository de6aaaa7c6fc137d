"""The one place that reads the environment (and, when configured, Vault).

Everything else receives a :class:`Config`; nothing else calls ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Secrets that may come from Vault (KV v2) instead of the environment.
VAULT_KEYS = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "JWT_SECRET",
    "CHECKOUT_TOKEN_SECRET",
    "DATABASE_URL",
    "REDIS_URL",
    "MAIL_URL",
    "METRICS_TOKEN",
    "SHOP_WEBHOOK_SECRETS",
)


# Stripe's limits (test mode 25, live mode 100 requests per second) minus a margin for
# clock skew between our window and Stripe's: the default fleet budget per mode.
STRIPE_BUDGETS = {"test": 23, "live": 92}

# PostgreSQL connections a web or worker process keeps (DATABASE_POOL_SIZE): one per
# worker thread (the Procfile's 16). Every new connection is a server process to fork
# and warm up — milliseconds of CPU that each message or request used to pay.
POOLED_CONNECTIONS = 16

LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


@dataclass(frozen=True)
class Config:
    """Typed settings for the web, worker and clock processes."""

    port: int = 5000
    database_url: str = f"sqlite:///{ROOT / 'var' / 'checkout.db'}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Connections per process to REDIS_URL; callers beyond it wait for a free one.
    redis_max_connections: int = 200
    # A primary with replicas behind Sentinel (REDIS_SENTINELS, host:port each): every
    # client asks the sentinels for the current primary of REDIS_SENTINEL_MASTER, so a
    # failover needs no restart. REDIS_URL then only lends its database number and password.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = "mymaster"
    # Replicas that must hold an admitted submission before its 202 (WAIT in the same round
    # trip as the admission; REDIS_MIN_REPLICAS_ACK, default 1 with sentinels, else 0), and
    # how long the submit waits for them (REDIS_REPLICA_ACK_TIMEOUT_MS) before answering 503.
    redis_min_replicas_ack: int = 0
    redis_replica_ack_timeout_ms: int = 500
    # PostgreSQL connections kept open per web or worker process (DATABASE_POOL_SIZE);
    # 0: a new connection per request or message.
    database_pool_size: int = POOLED_CONNECTIONS
    # The pooled connections run models.statements' shapes as server-side prepared
    # statements (DATABASE_PREPARED_STATEMENTS, default on). Turn it off behind a pooler
    # that shares server sessions between clients (PgBouncer in transaction mode).
    database_prepared_statements: bool = True
    stripe_secret_key: str = "sk_test_emulator"
    stripe_publishable_key: str = "pk_test_emulator"
    stripe_webhook_secrets: tuple[str, ...] = ("whsec_emulator",)
    stripe_api_base: str | None = None
    stripe_js_url: str = "https://js.stripe.com/v3/"
    jwt_secret: str = "dev-only-jwt-secret-change-me-in-production"
    # Checkout tokens are derived from the order id with the first secret (HMAC-SHA256),
    # so GET /api/checkout/lookup can answer one; the others are still recognised while a
    # rotation runs (CHECKOUT_TOKEN_SECRET, comma-separated, newest first).
    checkout_token_secrets: tuple[str, ...] = ("dev-only-checkout-token-secret-change-me",)
    # When set, a JWT must carry this `iss` / an `aud` naming this audience.
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    hold_ttl_seconds: int = 900
    store_currency: str = "usd"
    frontend_origins: tuple[str, ...] = ()
    ratelimit_enabled: bool = True
    ratelimit_checkout: str = "30/minute"
    ratelimit_lookup: str = "10/minute"
    # Order tracking by number + e-mail, per client IP: guessing is slow.
    ratelimit_track: str = "10/minute"
    # A buyer's payment retries (POST /api/checkout/<id>/confirm): per client IP, and per
    # order (one attempt is in flight at a time anyway; this bounds the refused ones).
    ratelimit_confirm: str = "20/minute"
    ratelimit_confirm_order: str = "5/minute"
    # Console sign-in attempts (POST /admin/login) per client IP; the per-account lockout
    # (five wrong in 15 minutes) is apart from it.
    ratelimit_admin_login: str = "20/minute"
    # Bearer token for GET /metrics; unset, only loopback clients may read it.
    metrics_token: str | None = None
    # Proxies in front of the web process (Heroku's router: 1). Their X-Forwarded-For
    # entries are trusted for the client IP that rate limits count against.
    trusted_proxy_hops: int = 0
    mail_url: str | None = None
    mail_from: str = "orders@example.com"
    max_content_length: int = 64 * 1024
    webhook_tolerance_seconds: int = 300
    idempotency_ttl_seconds: int = 24 * 3600
    # The fleet's Stripe calls per second; None: from the key's mode (STRIPE_BUDGETS).
    stripe_requests_per_second: int | None = None
    # Stripe's search is eventually consistent: an intent is searchable within about a
    # minute of its creation (docs.stripe.com/search), so an expiry that must look for an
    # order's unsaved intent waits this long after stopping creation (90: 30 s of margin).
    stripe_search_delay_seconds: int = 90
    # Long-polls in flight (I11), across the fleet: per order, per credential (checkout
    # token or user), per client IP; beyond a cap, 429.
    longpoll_max_per_order: int = 10
    longpoll_max_per_credential: int = 10
    longpoll_max_per_ip: int = 100
    # Wave 2: ``automatic`` takes the money at confirmation; ``manual`` authorises at
    # checkout (order AUTHORIZED) and captures at fulfilment start or by an admin.
    capture_method: str = "automatic"
    # Wave 3: which payment UIs the shop offers: the Payment Element (``elements``),
    # Stripe's hosted Checkout page (``hosted``) or ``both``.
    checkout_ui: str = "both"
    # Wave 3: who computes the tax: our rate table (``table``) or Stripe Tax (``stripe``:
    # a calculation per quote and order, a tax transaction once paid, reversed on refund).
    tax_provider: str = "table"
    # Who is told when an authorisation is about to lapse uncaptured (the clock's warning)
    # and of disputes (evidence to review before Stripe's deadline).
    operator_email: str = "operator@example.com"
    # The shop's public base URL: server-side confirmation passes Stripe
    # ``<public_url>/order/<orderId>`` as the ``return_url`` (redirect-based methods).
    public_url: str = "http://127.0.0.1:5000"
    # The shop's own backend, told of every order change (shop webhooks): endpoint URLs,
    # and one signing secret per URL in the same order, or a single one for all of them.
    shop_webhook_urls: tuple[str, ...] = ()
    shop_webhook_secrets: tuple[str, ...] = ()
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def limiter_storage_uri(self) -> str:
        """flask-limiter's storage: REDIS_URL, or the same primary through the sentinels."""
        if not self.redis_sentinels:
            return self.redis_url
        hosts = ",".join(f"{host}:{port}" for host, port in self.redis_sentinels)
        return f"redis+sentinel://{hosts}/{self.redis_sentinel_master}"

    @property
    def stripe_live_mode(self) -> bool:
        """Whether the secret key is a live-mode key (``sk_live_`` / ``rk_live_``)."""
        return self.stripe_secret_key.startswith(LIVE_KEY_PREFIXES)

    @property
    def stripe_budget(self) -> int:
        """Stripe calls per second for the whole fleet: the override, else the mode's."""
        if self.stripe_requests_per_second:
            return self.stripe_requests_per_second
        return STRIPE_BUDGETS["live" if self.stripe_live_mode else "test"]

    @property
    def shop_webhook_endpoints(self) -> tuple[tuple[str, str], ...]:
        """``(url, secret)`` per shop webhook endpoint; ValueError when secrets do not pair."""
        urls, secrets = self.shop_webhook_urls, self.shop_webhook_secrets
        if len(secrets) == 1:
            secrets = secrets * len(urls)
        if len(secrets) != len(urls):
            raise ValueError(
                "SHOP_WEBHOOK_SECRETS needs one secret per SHOP_WEBHOOK_URLS entry, or one for all"
            )
        return tuple(zip(urls, secrets, strict=True))

    def with_overrides(self, **changes: Any) -> Config:
        """Return a copy with some fields changed (tests and the demo use this)."""
        return replace(self, **changes)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(value: str) -> bool:
    return value.strip().lower() not in {"0", "false", "no", "off", ""}


def _sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` as pairs; ValueError naming REDIS_SENTINELS when malformed."""
    pairs = []
    for part in _split(value):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS entries must be host:port, not {part!r}")
        pairs.append((host, int(port)))
    return tuple(pairs)


def _vault_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """Read secrets from Vault KV v2 when VAULT_ADDR and a token or AppRole are set."""
    addr = env.get("VAULT_ADDR")
    if not addr:
        return {}
    import hvac  # imported lazily: only deployments with Vault need it

    client = hvac.Client(url=addr, token=env.get("VAULT_TOKEN"))
    if not env.get("VAULT_TOKEN") and env.get("VAULT_ROLE_ID"):
        client.auth.approle.login(
            role_id=env["VAULT_ROLE_ID"], secret_id=env.get("VAULT_SECRET_ID", "")
        )
    path = env.get("VAULT_PATH", "checkout")
    mount, _, sub = path.partition("/")
    if sub:
        secret = client.secrets.kv.v2.read_secret_version(
            path=sub, mount_point=mount, raise_on_deleted_version=True
        )
    else:
        secret = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    data = secret["data"]["data"]
    return {key: str(data[key]) for key in VAULT_KEYS if key in data}


class ConfigError(ValueError):
    """Raised when a process may not start with its configuration (it names the variable)."""


# Without these, anyone could mint admin JWTs, derive checkout tokens or sign webhooks.
REQUIRED_SECRETS = ("JWT_SECRET", "CHECKOUT_TOKEN_SECRET", "STRIPE_WEBHOOK_SECRET")
# Set by `make demo` (devstack/demo.py, which every test stack starts through): the
# public defaults above are then allowed, in test mode only.
DEV_SECRETS_FLAG = "ALLOW_DEV_SECRETS"
# A secret shorter than this, or starting with one of these words, is a test secret.
MIN_LIVE_SECRET_LENGTH = 32
TEST_SECRET_WORDS = (
    "test", "dev", "demo", "example", "emulator", "e2e", "chaos", "bench", "browser",
    "local", "changeme", "change-me", "secret", "password",
)  # fmt: skip


def _test_looking(secret: str) -> bool:
    """Whether a secret looks like one from a test, a demo or this repository."""
    body = secret.removeprefix("whsec_")
    defaults = (Config.jwt_secret, *Config.checkout_token_secrets, *Config.stripe_webhook_secrets)
    return (
        secret in defaults
        or len(body) < MIN_LIVE_SECRET_LENGTH
        or body.lower().startswith(TEST_SECRET_WORDS)
        or "change-me" in body.lower()
    )


def check_secrets(env: Mapping[str, str], live: bool) -> None:
    """ConfigError naming the first required secret that is missing (unless the dev flag
    allows the defaults in test mode) or, with a live Stripe key, that looks like a test's."""
    dev = _bool(env.get(DEV_SECRETS_FLAG, "")) and not live
    for name in REQUIRED_SECRETS:
        values = _split(env.get(name, ""))
        if not values:
            if dev:
                continue
            raise ConfigError(
                f"{name} is not set: this process will not run on the repository's public "
                f"default (set it, or {DEV_SECRETS_FLAG}=1 for a local test-mode run)"
            )
        if live and any(_test_looking(value) for value in values):
            raise ConfigError(
                f"{name} looks like a test secret, with a live Stripe key: use a random "
                f"secret of at least {MIN_LIVE_SECRET_LENGTH} characters"
            )


CAPTURE_METHODS = ("automatic", "manual")
CHECKOUT_UIS = ("elements", "hosted", "both")
TAX_PROVIDERS = ("table", "stripe")


def _capture_method(value: str | None) -> str:
    method = (value or "automatic").strip().lower()
    if method not in CAPTURE_METHODS:
        raise ValueError(f"CAPTURE_METHOD must be automatic or manual, not {value!r}")
    return method


def _checkout_ui(value: str | None) -> str:
    ui = (value or "both").strip().lower()
    if ui not in CHECKOUT_UIS:
        raise ValueError(f"CHECKOUT_UI must be elements, hosted or both, not {value!r}")
    return ui


def _tax_provider(value: str | None) -> str:
    provider = (value or "table").strip().lower()
    if provider not in TAX_PROVIDERS:
        raise ConfigError(f"TAX_PROVIDER must be table or stripe, not {value!r}")
    return provider


def load_config(
    env: Mapping[str, str] | None = None, *, dotenv: bool = True, require_secrets: bool = False
) -> Config:
    """Build the configuration from the environment, `.env` (local only) and Vault.

    With ``require_secrets`` (the web, worker and clock entry points) a missing or, with
    a live key, test-looking secret raises ConfigError (see :func:`check_secrets`).
    """
    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(ROOT / ".env", override=False)
        env = os.environ
    merged = {**env, **_vault_secrets(env)}
    defaults = Config()
    if require_secrets:
        key = merged.get("STRIPE_SECRET_KEY") or defaults.stripe_secret_key
        check_secrets(merged, live=key.startswith(LIVE_KEY_PREFIXES))
    get = merged.get
    port = int(get("PORT", defaults.port))
    sentinels = _sentinels(get("REDIS_SENTINELS", ""))
    config = Config(
        port=port,
        database_url=get("DATABASE_URL") or defaults.database_url,
        redis_url=get("REDIS_URL") or defaults.redis_url,
        redis_max_connections=int(get("REDIS_MAX_CONNECTIONS", defaults.redis_max_connections)),
        redis_sentinels=sentinels,
        redis_sentinel_master=get("REDIS_SENTINEL_MASTER") or defaults.redis_sentinel_master,
        redis_min_replicas_ack=int(get("REDIS_MIN_REPLICAS_ACK") or (1 if sentinels else 0)),
        redis_replica_ack_timeout_ms=int(
            get("REDIS_REPLICA_ACK_TIMEOUT_MS", defaults.redis_replica_ack_timeout_ms)
        ),
        database_pool_size=int(get("DATABASE_POOL_SIZE", defaults.database_pool_size)),
        database_prepared_statements=_bool(get("DATABASE_PREPARED_STATEMENTS", "true")),
        stripe_secret_key=get("STRIPE_SECRET_KEY") or defaults.stripe_secret_key,
        stripe_publishable_key=get("STRIPE_PUBLISHABLE_KEY") or defaults.stripe_publishable_key,
        stripe_webhook_secrets=_split(get("STRIPE_WEBHOOK_SECRET", ""))
        or defaults.stripe_webhook_secrets,
        stripe_api_base=get("STRIPE_API_BASE") or None,
        stripe_js_url=get("STRIPE_JS_URL") or defaults.stripe_js_url,
        jwt_secret=get("JWT_SECRET") or defaults.jwt_secret,
        checkout_token_secrets=_split(get("CHECKOUT_TOKEN_SECRET", ""))
        or defaults.checkout_token_secrets,
        jwt_issuer=get("JWT_ISSUER") or None,
        jwt_audience=get("JWT_AUDIENCE") or None,
        hold_ttl_seconds=int(get("HOLD_TTL_SECONDS", defaults.hold_ttl_seconds)),
        store_currency=(get("STORE_CURRENCY") or defaults.store_currency).lower(),
        frontend_origins=_split(get("FRONTEND_ORIGINS", "")),
        ratelimit_enabled=_bool(get("RATELIMIT_ENABLED", "true")),
        ratelimit_checkout=get("RATELIMIT_CHECKOUT") or defaults.ratelimit_checkout,
        ratelimit_lookup=get("RATELIMIT_LOOKUP") or defaults.ratelimit_lookup,
        ratelimit_track=get("RATELIMIT_TRACK") or defaults.ratelimit_track,
        ratelimit_confirm=get("RATELIMIT_CONFIRM") or defaults.ratelimit_confirm,
        ratelimit_confirm_order=get("RATELIMIT_CONFIRM_ORDER") or defaults.ratelimit_confirm_order,
        ratelimit_admin_login=get("RATELIMIT_ADMIN_LOGIN") or defaults.ratelimit_admin_login,
        metrics_token=get("METRICS_TOKEN") or None,
        trusted_proxy_hops=int(get("TRUSTED_PROXY_HOPS", defaults.trusted_proxy_hops)),
        mail_url=get("MAIL_URL") or None,
        stripe_requests_per_second=int(get("STRIPE_REQUESTS_PER_SECOND") or 0) or None,
        stripe_search_delay_seconds=int(
            get("STRIPE_SEARCH_DELAY_SECONDS", defaults.stripe_search_delay_seconds)
        ),
        mail_from=get("MAIL_FROM") or defaults.mail_from,
        longpoll_max_per_order=int(get("LONGPOLL_MAX_PER_ORDER", defaults.longpoll_max_per_order)),
        longpoll_max_per_credential=int(
            get("LONGPOLL_MAX_PER_CREDENTIAL", defaults.longpoll_max_per_credential)
        ),
        longpoll_max_per_ip=int(get("LONGPOLL_MAX_PER_IP", defaults.longpoll_max_per_ip)),
        capture_method=_capture_method(get("CAPTURE_METHOD")),
        checkout_ui=_checkout_ui(get("CHECKOUT_UI")),
        tax_provider=_tax_provider(get("TAX_PROVIDER")),
        operator_email=get("OPERATOR_EMAIL") or defaults.operator_email,
        public_url=(get("PUBLIC_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
        shop_webhook_urls=_split(get("SHOP_WEBHOOK_URLS", "")),
        shop_webhook_secrets=_split(get("SHOP_WEBHOOK_SECRETS", "")),
    )
    config.shop_webhook_endpoints  # noqa: B018 -- fail at start-up, not at the first delivery
    return config
