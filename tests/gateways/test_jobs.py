"""app/gateways/jobs.py: the queue depths the console's dashboard shows, read where
Dramatiq's own Redis broker keeps its messages (its scripts run on fakeredis), and the
message a script queues in the broker's stead."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import fakeredis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from app.gateways.jobs import DramatiqJobs, queue_depths
from models.db import utcnow


def test_queue_depths_count_waiting_and_delayed_messages() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    broker = RedisBroker(client=client, maintenance_chance=0)
    jobs = DramatiqJobs(broker)
    assert queue_depths(client) == {"default": 0, "holds": 0, "shop_webhooks": 0}
    jobs.create_payment_intent("order-1")
    jobs.send_receipt(7)
    jobs.expire_hold("order-1", at=utcnow() + timedelta(minutes=15))  # a delayed message
    jobs.deliver_shop_webhook(3)
    assert queue_depths(client) == {"default": 2, "holds": 1, "shop_webhooks": 1}


class TestScriptedMessage:
    """The message admit.lua writes is the one the broker's enqueue writes, at its keys."""

    def test_it_is_what_the_brokers_enqueue_writes(self) -> None:
        client = fakeredis.FakeRedis()
        broker = RedisBroker(client=client, maintenance_chance=0)
        jobs = DramatiqJobs(broker)
        jobs.create_payment_intent("order-1")
        [(enqueued_id, enqueued)] = client.hgetall("dramatiq:default.msgs").items()
        assert client.lrange("dramatiq:default", 0, -1) == [enqueued_id]
        scripted = jobs.scripted_create_payment_intent("order-1")
        assert scripted is not None
        assert (scripted.messages_key, scripted.queue_key) == (
            "dramatiq:default.msgs",
            "dramatiq:default",
        )

        def fields(data: bytes) -> dict[str, Any]:
            decoded = Message.decode(data).asdict()
            ids = decoded.pop("message_id"), decoded.pop("options").pop("redis_message_id")
            assert all(ids)
            decoded.pop("message_timestamp")
            return decoded

        assert fields(scripted.data) == fields(enqueued)
        assert Message.decode(scripted.data).options == {"redis_message_id": scripted.message_id}
        assert scripted.message_id != enqueued_id.decode()  # each enqueue its own id

    def test_a_delayed_one_queued_on_a_pipeline_is_what_a_delayed_enqueue_writes(self) -> None:
        """The hold's expiry, queued with the order lock's release: on the delay queue,
        with the same ``eta``, ready for the worker's delay-queue consumer."""
        client = fakeredis.FakeRedis()
        broker = RedisBroker(client=client, maintenance_chance=0)
        jobs = DramatiqJobs(broker)
        at = utcnow() + timedelta(minutes=15)
        jobs.expire_hold("order-1", at=at)
        [(enqueued_id, enqueued)] = client.hgetall("dramatiq:holds.DQ.msgs").items()
        client.delete("dramatiq:holds.DQ.msgs", "dramatiq:holds.DQ")
        scripted = jobs.scripted_expire_hold("order-1", at)
        assert scripted is not None
        pipe = client.pipeline(transaction=False)
        scripted.queue(pipe)
        pipe.execute()
        [(queued_id, queued)] = client.hgetall("dramatiq:holds.DQ.msgs").items()
        assert client.lrange("dramatiq:holds.DQ", 0, -1) == [queued_id]
        assert queued_id.decode() == scripted.message_id != enqueued_id.decode()
        ours, theirs = Message.decode(queued).asdict(), Message.decode(enqueued).asdict()
        assert abs(ours["options"].pop("eta") - theirs["options"].pop("eta")) < 5_000
        for decoded in (ours, theirs):
            for name in ("message_id", "message_timestamp"):
                decoded.pop(name)
            decoded["options"].pop("redis_message_id")
        assert ours == theirs
        assert ours["queue_name"] == "holds.DQ"
        [(fetched_id, _data)] = [
            (m.options["redis_message_id"], m)
            for m in (Message.decode(d) for d in broker.do_fetch("holds.DQ", 10))
        ]
        assert fetched_id == scripted.message_id

    def test_none_on_a_broker_that_is_not_redis(self) -> None:
        assert DramatiqJobs(StubBroker()).scripted_create_payment_intent("order-1") is None
        assert DramatiqJobs(StubBroker()).scripted_expire_hold("order-1", utcnow()) is None
