"""Flask's session, kept server-side in Redis for the console (``/admin`` only).

The cookie carries a random id only: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when
the request came over https, path ``/admin`` (the API never receives it). Requests
outside ``/admin`` get Flask's null session and never touch Redis. A request marked
passive (a live fragment polled by htmx) does not restart the 30-minute idle clock: a
page left open is not an operator at work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response, g, request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from app.context import current_runtime
from app.services import operator_sessions

COOKIE_NAME = "console_session"
COOKIE_PATH = "/admin"
STATIC_PATH = "/admin/static/"
PASSIVE_FLAG = "console_passive"


class ConsoleSession(CallbackDict[str, Any], SessionMixin):
    """A session dict that knows its id and whether it must be rotated or ended."""

    def __init__(self, data: dict[str, Any] | None, sid: str | None) -> None:
        def on_update(session: ConsoleSession) -> None:
            session.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.modified = False
        self.destroyed = False
        self.replaced: str | None = None

    def rotate(self) -> None:
        """Give this session a new id (at sign-in: a planted id is worth nothing)."""
        if self.sid is not None:
            self.replaced = self.sid
        self.sid = None
        self.modified = True

    def destroy(self) -> None:
        """End this session: deleted from Redis, the cookie removed."""
        self.destroyed = True
        self.clear()


class RedisSessionInterface(SessionInterface):
    """Console sessions in Redis (app.services.operator_sessions decides expiry)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # tests move time by replacing it

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        """The console session of this request; Flask's null session elsewhere."""
        if not request.path.startswith(COOKIE_PATH) or request.path.startswith(STATIC_PATH):
            return self.make_null_session(app)
        sid = request.cookies.get(COOKIE_NAME)
        if sid:
            data = operator_sessions.load(current_runtime().redis, sid, self.clock())
            if data is not None:
                return ConsoleSession(data, sid)
        return ConsoleSession(None, None)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Store the session (and set the cookie when its id is new), or end it."""
        if not isinstance(session, ConsoleSession):
            return
        redis = current_runtime().redis
        if session.replaced is not None:
            operator_sessions.destroy(redis, session.replaced)
        if session.destroyed:
            if session.sid is not None:
                operator_sessions.destroy(redis, session.sid)
            response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
            return
        fresh = session.sid is None
        if fresh and not session:
            return  # nothing worth keeping (a page that needed no token)
        touch = not g.get(PASSIVE_FLAG, False)
        if not (fresh or touch or session.modified):
            return
        if session.sid is None:
            session.sid = operator_sessions.new_session_id()
        operator_sessions.save(redis, session.sid, dict(session), self.clock(), touch=touch)
        if fresh:
            response.set_cookie(
                COOKIE_NAME,
                session.sid,
                path=COOKIE_PATH,
                httponly=True,
                samesite="Strict",
                secure=request.is_secure,
            )
