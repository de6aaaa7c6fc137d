"""gunicorn.conf.py with a real gunicorn on 127.0.0.1: the answers gunicorn writes itself,
before any application code runs (bad framing, an over-long request line, too many
headers), keep the JSON error contract, and no response names the server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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
