"""The fakes implement the same Protocols as the real adapters (warehouse's habit)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from app.config import Config
from app.gateways.mail import ConsoleMailer, Mailer, Message, SMTPMailer, mailer_from_url
from app.gateways.payments import PaymentGateway, StripeGateway
from tests.fakes import FakeGateway, ListMailer


def public_signature(obj: Any, name: str) -> inspect.Signature:
    return inspect.signature(getattr(obj, name))


class TestPaymentGatewayConformance:
    @pytest.mark.parametrize("cls", [StripeGateway, FakeGateway])
    def test_has_every_protocol_method_with_the_same_signature(self, cls: type) -> None:
        members = [n for n in dir(PaymentGateway) if not n.startswith("_")]
        assert members
        for name in members:
            expected = inspect.signature(getattr(PaymentGateway, name))
            assert public_signature(cls, name).parameters.keys() == expected.parameters.keys(), name

    def test_instances_satisfy_the_runtime_protocol(self) -> None:
        assert isinstance(StripeGateway(api_key="sk_test_x"), PaymentGateway)
        assert isinstance(FakeGateway(), PaymentGateway)


class TestMailers:
    def test_every_mailer_satisfies_the_protocol(self) -> None:
        for mailer in (ListMailer(), ConsoleMailer(), SMTPMailer("localhost", 25)):
            assert isinstance(mailer, Mailer)

    def test_mail_url_selects_smtp_else_console(self) -> None:
        smtp = mailer_from_url(Config(mail_url="smtp://user:pw@mail.local:2525"))
        assert isinstance(smtp, SMTPMailer)
        assert (smtp.host, smtp.port, smtp.username) == ("mail.local", 2525, "user")
        assert isinstance(mailer_from_url(Config(mail_url=None)), ConsoleMailer)

    def test_list_mailer_records_and_can_fail(self) -> None:
        mailer = ListMailer()
        mailer.failures = 1
        with pytest.raises(ConnectionError):
            mailer.send(Message(to="a@example.com", subject="s", text="t"))
        mailer.send(Message(to="a@example.com", subject="s", text="t"))
        assert [m.to for m in mailer.sent] == ["a@example.com"]
