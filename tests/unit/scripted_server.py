"""A tiny stdlib HTTP server that plays back scripted replies, for gateway tests (127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes sent as-is; None -> a generic object
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    action: Literal["respond", "drop", "hang"] = "respond"


def error(status: int, code: str | None = None, message: str = "boom", **extra: Any) -> Reply:
    """A Stripe-shaped error reply; `headers=` may be passed in extra."""
    headers = extra.pop("headers", {})
    err = {"type": extra.pop("type", "api_error"), "message": message, **extra}
    if code:
        err["code"] = code
    return Reply(status, {"error": err}, headers)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    started: float
    finished: float = 0.0


class ScriptedServer:
    """Replies from the script queue first, then from `handler`, else a generic 200 object."""

    def __init__(self, handler: Callable[[Recorded], Reply] | None = None) -> None:
        self.handler = handler
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_reply(self, rec: Recorded) -> Reply:
        with self._lock:
            self._requests.append(rec)
            if self._script:
                return self._script.popleft()
        if self.handler:
            return self.handler(rec)
        return Reply(200, {"id": "obj_1", "object": "thing"})


def _make_handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def setup(self) -> None:
            super().setup()
            # headers and body go out in separate writes; avoid Nagle/delayed-ACK stalls of ~40ms
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            parts = urlsplit(self.path)
            rec = Recorded(
                method=self.command.lower(),
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                form=parse_qs(raw, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                started=time.monotonic(),
            )
            reply = server._next_reply(rec)
            try:
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.action == "hang":
                    server._stopping.wait(30)
                    self._drop()
                elif reply.action == "drop":
                    self._drop()
                else:
                    # stamped before the answer leaves: a client holding a lock sends its next
                    # request as soon as it reads this one, before this thread would run again
                    rec.finished = time.monotonic()
                    self._respond(reply)
            finally:
                rec.finished = rec.finished or time.monotonic()

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _respond(self, reply: Reply) -> None:
            body = reply.body
            if body is None:
                body = {"id": "obj_1", "object": "thing"}
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode()
            )  # fmt: skip
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{len(server.requests)}")
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _handle

    return Handler
