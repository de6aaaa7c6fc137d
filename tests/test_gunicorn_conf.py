"""gunicorn.conf.py with a real gunicorn on 127.0.0.1: the answers gunicorn writes itself,
before any application code runs (bad framing, an over-long request line, too many
headers), keep the JSON error contract, and no response names the server; a whole answer
leaves in one send, the same bytes."""

from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The smallest WSGI app: gunicorn's own answers are under test, not the service's.
APP = """
def app(environ, start_response):
    environ["wsgi.input"].read()  # a chunked body is parsed as it is read
    body = b'{"ok": true}'
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not start")


@pytest.fixture(scope="module", params=["sync", "gevent"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """A gunicorn with the project's gunicorn.conf.py, one worker of each kind we run."""
    directory = tmp_path_factory.mktemp("gunicorn")
    (directory / "tiny_app.py").write_text(APP)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{directory}{os.pathsep}{ROOT}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--worker-class", request.param, "tiny_app:app",
        ],
        cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer: status, headers (lower-case names), body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def error_code(headers: dict[str, str], body: bytes) -> str:
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    document = json.loads(body)
    assert set(document) == {"error"} and document["error"]["message"]
    return str(document["error"]["code"])


class TestGunicornOwnAnswers:
    def test_an_over_long_request_line_is_414_json(self, server: int) -> None:
        status, headers, body = exchange(server, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n")
        assert status == 414
        assert error_code(headers, body) == "uri_too_long"
        assert "server" not in headers

    def test_too_many_headers_is_431_json(self, server: int) -> None:
        fields = b"".join(b"X-F%d: v\r\n" % n for n in range(150))
        status, headers, body = exchange(
            server, b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"
        )
        assert status == 431
        assert error_code(headers, body) == "header_fields_too_large"
        assert "server" not in headers

    @pytest.mark.parametrize(
        "raw",
        [
            b"GARBAGE\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: v\r\n\r\n",
        ],
    )
    def test_bad_framing_is_400_json_and_echoes_nothing(self, server: int, raw: bytes) -> None:
        status, headers, body = exchange(server, raw)
        assert status == 400
        assert error_code(headers, body) == "bad_request"
        assert b"GARBAGE" not in body and b"Bad Header" not in body and b"<html" not in body
        assert "server" not in headers

    def test_a_card_number_in_the_request_line_is_not_echoed(self, server: int) -> None:
        _, _, body = exchange(server, b"4111111111111111 / HTTP/1.1\r\n\r\n")
        assert b"4111" not in body

    def test_application_answers_name_no_server(self, server: int) -> None:
        status, headers, body = exchange(
            server, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        assert status == 200 and json.loads(body) == {"ok": True}
        assert "server" not in headers
        assert headers["date"].endswith(" GMT") and headers["connection"] == "close"

    def test_keep_alive_answers_arrive_whole(self, server: int) -> None:
        request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        closing = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server), timeout=10) as conn:
            conn.sendall(request + closing)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        answers = data.split(b"HTTP/1.1 200 OK\r\n")[1:]
        # The sync worker closes after each answer; the gevent worker keeps the connection.
        assert len(answers) == (1 if b"Connection: close" in answers[0] else 2)
        assert all(answer.endswith(b'\r\n\r\n{"ok": true}') for answer in answers)


class RecordingSocket:
    """A socket that keeps each ``sendall``."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


class Request:
    version = (1, 1)

    def __init__(self, method: str = "GET") -> None:
        self.method = method

    def should_close(self) -> bool:
        return False


class TestOneSendPerWholeAnswer:
    """``write_with_head``: the head and a whole body in one send, byte for byte what
    gunicorn's own write sends in two; anything else is gunicorn's own write."""

    @pytest.fixture
    def conf(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        from gunicorn import util
        from gunicorn.http import wsgi

        monkeypatch.setattr(util, "http_date", lambda *_: "Mon, 07 Dec 2026 08:00:00 GMT")
        monkeypatch.setattr(wsgi.Response, "write", wsgi.Response.write)  # restored after
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    @staticmethod
    def answer(
        headers: list[tuple[str, str]],
        chunks: list[bytes],
        method: str = "GET",
        status: str = "200 OK",
    ) -> list[bytes]:
        from gunicorn.http import wsgi

        sock = RecordingSocket()
        response = wsgi.Response(Request(method), sock, object())
        write = response.start_response(status, headers)
        for chunk in chunks:
            write(chunk)
        response.close()
        return sock.sends

    JSON = [("Content-Type", "application/json"), ("Content-Length", "12")]

    def test_a_whole_body_goes_with_the_head(self, conf: dict[str, Any]) -> None:
        before = self.answer(self.JSON, [b'{"ok": true}'])
        conf["install_single_send"]()
        after = self.answer(self.JSON, [b'{"ok": true}'])
        assert len(before) == 2
        assert after == [b"".join(before)]
        assert after[0].endswith(b'Content-Length: 12\r\n\r\n{"ok": true}')

    @pytest.mark.parametrize(
        ("headers", "chunks", "method", "status"),
        [
            ([("Content-Type", "text/plain")], [b"a", b"b"], "GET", "200 OK"),  # chunked
            ([("Content-Length", "2")], [b"a", b"b"], "GET", "200 OK"),  # in two chunks
            ([("Content-Length", "12")], [b'{"ok": true}'], "HEAD", "200 OK"),
            ([], [b""], "GET", "204 No Content"),
        ],
    )
    def test_any_other_answer_is_gunicorns_own(
        self,
        conf: dict[str, Any],
        headers: list[tuple[str, str]],
        chunks: list[bytes],
        method: str,
        status: str,
    ) -> None:
        before = self.answer(headers, chunks, method, status)
        conf["install_single_send"]()
        assert self.answer(headers, chunks, method, status) == before

    def test_a_subclass_frames_its_own_answer(self, conf: dict[str, Any]) -> None:
        from gunicorn.http import wsgi

        class Framed(wsgi.Response):  # as HTTP/2's response overrides the two writes
            def send_headers(self) -> None:
                self.headers_sent = True
                self.sock.sendall(b"HEAD")

            def _emit_body(self, data: bytes) -> None:
                self.sock.sendall(b"BODY:" + data)

        conf["install_single_send"]()
        sock = RecordingSocket()
        response = Framed(Request(), sock, object())
        response.start_response("200 OK", self.JSON)(b'{"ok": true}')
        assert sock.sends == [b"HEAD", b'BODY:{"ok": true}']

    def test_installed_once(self, conf: dict[str, Any]) -> None:
        from gunicorn.http import wsgi

        conf["install_single_send"]()
        installed = wsgi.Response.write
        conf["install_single_send"]()
        assert wsgi.Response.write is installed


class Answer:
    """What gunicorn's ``default_headers`` reads of a response."""

    def __init__(
        self,
        version: tuple[int, int] = (1, 1),
        status: str = "200 OK",
        *,
        chunked: bool = False,
        upgrade: bool = False,
        closes: bool = False,
    ) -> None:
        self.req = Request()
        self.req.version = version
        self.status = status
        self.chunked = chunked
        self.upgrade = upgrade
        self.closes = closes
        self.version = "gunicorn"

    def should_close(self) -> bool:
        return self.closes


class TestHeadLines:
    """``head_lines``: gunicorn's status line, Date, Connection and Transfer-Encoding,
    without the Server line, the date formatted once a second."""

    @pytest.fixture
    def conf(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        from gunicorn import util

        monkeypatch.setattr(util, "http_date", lambda *_: "Mon, 07 Dec 2026 08:00:00 GMT")
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    @staticmethod
    def gunicorns() -> Any:
        from gunicorn.http import wsgi

        current = wsgi.Response.default_headers  # another test may have installed ours
        return getattr(current, "original", current)

    @pytest.mark.parametrize(
        "answer",
        [
            Answer(),
            Answer(closes=True),
            Answer(chunked=True),
            Answer((1, 0), "404 NOT FOUND", closes=True),
            Answer(status="101 Switching Protocols", upgrade=True),
            Answer(status="204 NO CONTENT", chunked=True, closes=True),
        ],
    )
    def test_gunicorns_lines_less_the_server_line(
        self, conf: dict[str, Any], answer: Answer
    ) -> None:
        original = self.gunicorns()
        expected = [line for line in original(answer) if not line.startswith("Server:")]
        assert len(expected) == len(original(answer)) - 1
        assert conf["head_lines"](original)(answer) == expected

    def test_the_date_is_formatted_once_a_second(
        self, conf: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from gunicorn import util

        formatted: list[float] = []
        monkeypatch.setattr(util, "http_date", lambda when: formatted.append(when) or str(when))
        date = conf["HttpDate"]()
        for now, expected in [(1000.2, "1000"), (1000.9, "1000"), (1001.0, "1001")]:
            monkeypatch.setattr(time, "time", lambda now=now: now)
            assert date() == expected
        assert formatted == [1000, 1001]


class TestFrozenSettings:
    def test_every_setting_reads_as_before_without_gunicorns_lookup(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from gunicorn.config import Config

        cfg = Config()
        cfg.set("keepalive", 7)
        cfg.set("certfile", "/etc/ssl/cert.pem")
        values = {name: getattr(cfg, name) for name in cfg.settings}
        runpy.run_path(str(ROOT / "gunicorn.conf.py"))["freeze_settings"](cfg)

        def no_lookup(self: Any, name: str) -> Any:
            raise AssertionError(f"{name} read through Config.__getattr__")

        monkeypatch.setattr(Config, "__getattr__", no_lookup)
        assert {name: getattr(cfg, name) for name in cfg.settings} == values
        assert cfg.keepalive == 7
        assert cfg.is_ssl  # a property of Config, from the frozen certfile
