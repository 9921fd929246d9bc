"""ASGI middleware in front of every route: DNS-rebinding and browser checks, the token, then the body limit.

All run before FastAPI parses anything, so a foreign, unauthenticated or oversized request costs no body
reading and no JSON decoding.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from noisebrush.core.engine.requests import excerpt
from noisebrush.core.server.auth import ascii_number, bearer_ok, host_ok, split_host

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


UNAUTHORIZED = "missing or wrong token: send Authorization: Bearer <token>"


async def _answer(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Refuse (403) a Host that is not this server, or an Origin other than this server's own pages;
    refuse (401) a request without the token, unless its path is in `public`, before reading its body;
    refuse (413) a body over `max_body` bytes, whether announced by Content-Length or streamed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: set[str],
        port: int,
        any_ip: bool,
        max_body: int,
        token: str,
        public: frozenset[str] = frozenset(),
    ) -> None:
        self.app, self.hosts, self.port, self.any_ip, self.max_body = app, hosts, port, any_ip, max_body
        self.token, self.public = token, public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host")
        if not host_ok(host, self.hosts, self.port, self.any_ip):
            await _answer(
                send,
                403,
                f"Host {excerpt(host or '')!r} is not this server's address (DNS rebinding protection)",
            )
            return
        origin = headers.get("origin")
        if origin is not None and not self._own_origin(origin, host or ""):
            await _answer(send, 403, "requests from web pages (with an Origin header) are refused")
            return
        if scope["path"] not in self.public and not bearer_ok(headers.get("authorization"), self.token):
            await _answer(send, 401, UNAUTHORIZED, [(b"www-authenticate", b"Bearer")])
            return
        length = headers.get("content-length")
        if length is not None:
            if not ascii_number(length):
                await _answer(send, 400, "Content-Length must be a number")
                return
            if int(length) > self.max_body:
                await _answer(send, 413, self._too_big())
                return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body, ok = await self._read(receive)
            if not ok:
                await _answer(send, 413, self._too_big())
                return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, receive, send)

    def _too_big(self) -> str:
        return f"request body too large; this server accepts at most {self.max_body} bytes"

    def _own_origin(self, origin: str, host: str) -> bool:
        scheme, _, rest = origin.partition("://")
        return scheme == "http" and rest.lower() == host.lower() and split_host(rest)[0] in self.hosts

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", False
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
