"""app/keys.py: every key the service writes carries the ``{shop}`` hash tag."""

from __future__ import annotations

from app import keys


class TestKeys:
    def test_every_constant_key_shares_the_hash_tag(self) -> None:
        names = [n for n in vars(keys) if n.isupper() and isinstance(getattr(keys, n), str)]
        assert names
        assert all(getattr(keys, n).startswith("{shop}:") for n in names)

    def test_keys_built_from_ids(self) -> None:
        assert keys.reservation("r1") == "{shop}:res:r1"
        assert keys.idempotency("h") == "{shop}:idem:h"
        assert keys.refund_claim("h") == "{shop}:idem:refund:h"
        assert keys.checkout("o1") == "{shop}:co:o1"
        assert keys.checkout_channel("o1") == "{shop}:co:o1:changed"
        assert keys.event_seen("evt_1") == "{shop}:evt:evt_1"
        assert keys.order_lock("o1") == "{shop}:lock:order:o1"
        assert keys.shop_hook_lock("ab12") == "{shop}:lock:shophook:ab12"
        assert keys.clock_claim("pending", "o1") == "{shop}:clock:pending:o1"
