"""The HTTP server: a stdlib `ThreadingHTTPServer` speaking Stripe's v1 wire format.

One request's path: auth -> route -> rate limit -> object lock -> latency -> injected faults ->
idempotency -> contract check -> handler (under the state lock) -> render/expand -> save for
idempotent replay -> maybe drop the connection instead of answering.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import threading
import time
import traceback
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from dbt_stripe_sync.emulator import contract, routing
from dbt_stripe_sync.emulator.accounts import check_account_id, no_access
from dbt_stripe_sync.emulator.errors import StripeError, unrecognized_url
from dbt_stripe_sync.emulator.expand import expand
from dbt_stripe_sync.emulator.faults import (
    FAULT_FIELDS,
    FaultConfig,
    Faults,
    injected_server_error,
    lock_timeout,
    rate_limited,
)
from dbt_stripe_sync.emulator.formdata import decode
from dbt_stripe_sync.emulator.idempotency import IdempotencyCache
from dbt_stripe_sync.emulator.request_log import RequestLog
from dbt_stripe_sync.emulator.resources.base import Route, render
from dbt_stripe_sync.emulator.store import TYPES, Store

API_VERSION = "2026-10-28.endive"
_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9_]+$")
_TYPE_ALIASES = {
    "invoice_item": "invoiceitem",
    "invoiceitems": "invoiceitem",
    "subscriptionitem": "subscription_item",
}
_ALPHANUMERIC = string.ascii_letters + string.digits
SETTINGS = (*FAULT_FIELDS, "search_delay_s", "idempotency_ttl_s")


class _Response:
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class Emulator:
    """A Stripe API emulator on `host:port` (0 = an ephemeral port); see docs/emulator.md."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0,
        rate_limit: float | None = None,
        search_rate_limit: float | None = None,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        lock_timeout_rate: float = 0.0,
        rate_limited_rate: float = 0.0,
        endpoint_rate_limit: float | None = 25.0,
        replay_errors: bool = True,
        error_applied_rate: float = 0.0,
        seed: int = 0,
        search_delay_s: float = 0.0,
        idempotency_ttl_s: float = 86400,
        accounts: Iterable[str] = (),
    ) -> None:
        """`accounts`: connected account IDs (acct_...) requests may name in `Stripe-Account`; each
        keeps its own objects, idempotency keys and rate limits (see `add_account`)."""
        self.host, self.port = host, port
        self.faults = Faults(
            FaultConfig(
                latency_ms=latency_ms,
                rate_limit=rate_limit,
                search_rate_limit=search_rate_limit,
                error_rate=error_rate,
                drop_rate=drop_rate,
                lock_timeout_rate=lock_timeout_rate,
                rate_limited_rate=rate_limited_rate,
                endpoint_rate_limit=endpoint_rate_limit,
                replay_errors=replay_errors,
                error_applied_rate=error_applied_rate,
                seed=seed,
            )
        )
        self.store = Store(seed=seed, search_delay_s=search_delay_s)  # the platform's own account
        self._seed = seed
        self.accounts: dict[str, Store] = {}  # connected account id -> its objects
        self.idempotency = IdempotencyCache(ttl_s=idempotency_ttl_s)
        self.log = RequestLog()
        self._state_lock = threading.RLock()
        for account in accounts:
            self.add_account(account)
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._request_rng = random.Random(f"requests-{seed}")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        contract.warm_up()
        server = _QuietServer((self.host, self.port), _handler_class(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="stripe-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- inspection and control ------------------------------------------------------------------
    def requests(self) -> list[dict[str, Any]]:
        """Every API request so far: method, path, status, object_id, params (secrets redacted), ..."""
        return self.log.entries()

    def clear_requests(self) -> None:
        self.log.clear()

    def reset(self) -> None:
        """Forget all objects, idempotency keys and the request log (fault settings stay)."""
        with self._state_lock:
            self.store.reset()
            for store in self.accounts.values():
                store.reset()
            self.idempotency.clear()
            self.log.clear()

    def objects(self, type_name: str, account: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of one type (customer, product, price, subscription, invoice, invoiceitem,
        quote, subscription_item), oldest first, as the API would render them; `account`: those of a
        connected account (default: the platform's own)."""
        type_name = _TYPE_ALIASES.get(type_name, type_name)
        if type_name not in TYPES:
            raise KeyError(f"unknown object type {type_name!r}; known: {', '.join(TYPES)}")
        if account is not None and account not in self.accounts:
            raise KeyError(f"unknown connected account {account!r}; declared: {', '.join(self.accounts)}")
        store = self.store if account is None else self.accounts[account]
        with self._state_lock:
            return json.loads(_json([render(store, type_name, o) for o in store.objects[type_name].values()]))

    def add_account(self, account: str) -> str:
        """Declare a connected account (Stripe Connect): requests with `Stripe-Account: <account>` then
        act inside it, with its own IDs, lists, search, idempotency keys and rate limits. Idempotent."""
        check_account_id(account)
        with self._state_lock:
            if account not in self.accounts:
                self.accounts[account] = Store(
                    seed=f"{self._seed}-{account}", search_delay_s=self.store.search_delay_s
                )
        return account

    def _store_for(self, account: str | None, authorization: str | None) -> Store:
        if account is None:
            return self.store
        store = self.accounts.get(account)
        if store is None:
            raise no_access(account, _shown_key(authorization))
        return store

    def expire_idempotency_keys(self) -> int:
        """Forget every saved idempotent response, as Stripe does after 24 hours."""
        return self.idempotency.expire_all()

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Change fault settings at run time (same names as the constructor's keyword arguments)."""
        unknown = set(settings) - set(SETTINGS)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}; known: {', '.join(SETTINGS)}")
        if "search_delay_s" in settings:
            self.store.search_delay_s = float(settings.pop("search_delay_s"))
            for store in self.accounts.values():
                store.search_delay_s = self.store.search_delay_s
        if "idempotency_ttl_s" in settings:
            self.idempotency.ttl_s = float(settings.pop("idempotency_ttl_s"))
        if settings:
            self.faults.update(**settings)
        return self.settings()

    def settings(self) -> dict[str, Any]:
        cfg = self.faults.config
        out: dict[str, Any] = {name: getattr(cfg, name) for name in FAULT_FIELDS}
        out.update(search_delay_s=self.store.search_delay_s, idempotency_ttl_s=self.idempotency.ttl_s)
        return out

    # -- request handling ------------------------------------------------------------------------
    def _new_request_id(self) -> str:
        with self._busy_lock:
            return "req_" + "".join(self._request_rng.choice(_ALPHANUMERIC) for _ in range(14))

    def _lock_object(self, object_id: str | None) -> None:
        """Stripe's per-object lock: a second concurrent write to the same object gets 429 lock_timeout."""
        if object_id is None:
            return
        with self._busy_lock:
            if object_id in self._busy:
                raise lock_timeout(object_id)
            self._busy.add(object_id)

    def _unlock_object(self, object_id: str | None) -> None:
        if object_id is not None:
            with self._busy_lock:
                self._busy.discard(object_id)

    def handle_api(
        self, method: str, path: str, query: str, body: str, headers: dict[str, str]
    ) -> tuple[_Response | None, dict[str, Any]]:
        """Process one API call; returns (response or None to drop the connection, log entry)."""
        started = time.monotonic()
        request_id = self._new_request_id()
        entry: dict[str, Any] = {
            "id": request_id,
            "time": time.time(),
            "method": method,
            "path": path,
            "status": None,
            "object_id": None,
            "object_type": None,
            "params": {},
            "idempotency_key": headers.get("idempotency-key"),
            "account": headers.get("stripe-account"),  # Stripe Connect: the account acted for
            "replayed": False,
            "fault": None,
        }
        response_headers = {
            "Request-Id": request_id,
            "Stripe-Version": headers.get("stripe-version") or API_VERSION,
        }
        idem_key: str | None = None
        claimed = False
        try:
            raw = decode(query)
            if method == "POST":
                raw.update(decode(body))
            entry["params"] = raw
            _authenticate(headers.get("authorization"))
            account = headers.get("stripe-account") or None
            store = self._store_for(account, headers.get("authorization"))
            found = routing.match(method, path)
            if found is None:
                raise unrecognized_url(method, path)
            route, object_id = found
            entry["object_type"], entry["object_id"] = route.type_name, object_id
            try:
                self.faults.check_rate(search=route.search, endpoint=route.template, account=account)
            except StripeError:
                entry["fault"] = "rate_limit"
                raise
            lock_target = f"{account or ''}/{object_id}" if route.write and object_id else None
            try:
                self._lock_object(lock_target)
            except StripeError:
                entry["fault"] = "lock_timeout"
                raise
            try:
                draw = self.faults.draw(write=route.write)
                if draw.rate_limited:
                    entry["fault"] = "rate_limit"
                    raise rate_limited()
                keyed = method == "POST" and bool(headers.get("idempotency-key"))
                # A 500 that "began executing" on a keyed POST is saved for replay, as Stripe does; one
                # with Stripe-Should-Retry: true (or on a request without a key) saves nothing.
                replays = self.faults.config.replay_errors
                saved_error = draw.error and keyed and replays and not draw.should_retry
                if draw.lock_timeout or (draw.error and not saved_error):
                    self.faults.sleep_latency()
                    entry["fault"] = "error" if draw.error else "lock_timeout"
                    raise injected_server_error(draw.should_retry) if draw.error else lock_timeout(object_id)
                saved = None
                if keyed:
                    response_headers["Idempotency-Key"] = headers["idempotency-key"]
                    # Stripe keeps idempotency keys per account: the same key in two accounts is two requests
                    idem_key = (
                        f"{account}\x1f{headers['idempotency-key']}"
                        if account
                        else headers["idempotency-key"]
                    )
                    fingerprint = json.dumps([method, path, raw], sort_keys=True)
                    saved = self.idempotency.begin(idem_key, fingerprint)
                    claimed = saved is None
                # The latency sits inside the object lock and the idempotency claim, so concurrent
                # writes to one object or with one key overlap the way they do at Stripe.
                self.faults.sleep_latency()
                if saved is not None:
                    entry.update(replayed=True, status=saved.status)
                    entry["object_id"] = entry["object_id"] or _body_id(saved.body)
                    replay_headers = {
                        **response_headers,
                        **saved.headers,
                        "Request-Id": request_id,
                        "Idempotent-Replayed": "true",
                        "Original-Request": saved.request_id,
                    }
                    return _Response(saved.status, saved.body, replay_headers), entry
                params = raw
                if route.catalog is not None:
                    params = contract.validate(
                        raw, contract.specs_for(*route.catalog), not_unsettable=route.not_unsettable
                    )
                if saved_error and idem_key:
                    return self._saved_server_error(
                        route, params, object_id, request_id, idem_key, draw.error_applied, entry,
                        response_headers, store,
                    )  # fmt: skip
                # From here on the handler runs: Stripe saves its result, even an error, for replay.
                status, payload, extra_headers, result_id = self._execute(
                    route, params, object_id, request_id, store
                )
                if claimed and idem_key:
                    self.idempotency.finish(idem_key, status, payload, extra_headers, request_id)
                    claimed = False
                entry["status"] = status
                entry["object_id"] = entry["object_id"] or result_id
                if status == 200 and draw.drop:
                    entry["fault"] = "dropped"
                    return None, entry
                return _Response(status, payload, {**response_headers, **extra_headers}), entry
            finally:
                self._unlock_object(lock_target)
        except StripeError as exc:
            entry["status"] = exc.status
            return _Response(
                exc.status, _json(exc.body(request_id)), {**response_headers, **exc.headers()}
            ), entry
        except Exception as exc:  # an emulator bug: answer like Stripe's 500 rather than hang up
            traceback.print_exc()
            error = StripeError(
                500,
                f"Emulator internal error: {type(exc).__name__}: {exc}",
                type="api_error",
                should_retry=False,
            )
            entry["status"], entry["fault"] = 500, "emulator_bug"
            return _Response(
                500, _json(error.body(request_id)), {**response_headers, **error.headers()}
            ), entry
        finally:
            if claimed and idem_key:
                self.idempotency.abandon(idem_key)
            entry["duration_ms"] = round((time.monotonic() - started) * 1000, 3)

    def _saved_server_error(
        self,
        route: Route,
        params: dict[str, Any],
        object_id: str | None,
        request_id: str,
        idem_key: str,
        applied: bool,
        entry: dict[str, Any],
        response_headers: dict[str, str],
        store: Store,
    ) -> tuple[_Response, dict[str, Any]]:
        """An injected 500 on a keyed POST that began executing: saved for the key and replayed for
        every retry with it. With `applied`, the write took effect before the 500 (the dangerous
        case: the caller cannot tell, and the same key never tells it)."""
        if applied:
            status, _, _, result_id = self._execute(route, params, object_id, request_id, store)
            entry["object_id"] = entry["object_id"] or result_id
            entry["fault"] = "error_applied" if status == 200 else "error"
        else:
            entry["fault"] = "error"
        error = injected_server_error(False)
        body, headers = _json(error.body(request_id)), error.headers()
        self.idempotency.finish(idem_key, 500, body, headers, request_id)
        entry["status"] = 500
        return _Response(500, body, {**response_headers, **headers}), entry

    def _execute(
        self, route: Route, params: dict[str, Any], object_id: str | None, request_id: str, store: Store
    ) -> tuple[int, bytes, dict[str, str], str | None]:
        """Run a validated call atomically: (status, body, extra headers, id of the object returned)."""
        expand_paths = [p for p in params.pop("expand", []) if isinstance(p, str)]
        with self._state_lock:
            try:
                with store.transaction():
                    result = route.handler(store, params, object_id)
                    view = routing.render_result(store, result)
                    view = routing.include(store, view, expand_paths)
                    view = expand(view, expand_paths, lambda t, i: _lookup_for_expand(store, t, i))
                    return 200, _json(view), {}, view.get("id")
            except StripeError as exc:
                return exc.status, _json(exc.body(request_id)), exc.headers(), None

    def handle_admin(self, method: str, path: str, body: str) -> _Response:
        """`/_emulator/*`: inspection and control, never subject to faults or auth."""
        parts = [p for p in path.split("/") if p][1:]
        try:
            if method == "GET" and parts == ["requests"]:
                return _Response(200, _json(self.requests()))
            if method == "DELETE" and parts == ["requests"]:
                self.clear_requests()
                return _Response(200, _json({"cleared": True}))
            if method == "GET" and len(parts) == 2 and parts[0] == "objects":
                return _Response(200, _json(self.objects(parts[1])))
            if method == "GET" and parts == ["accounts"]:
                return _Response(200, _json(sorted(self.accounts)))
            if method == "POST" and parts == ["accounts"]:
                return _Response(200, _json({"id": self.add_account(json.loads(body or "{}").get("id"))}))
            if method == "GET" and len(parts) == 4 and parts[0] == "accounts" and parts[2] == "objects":
                return _Response(200, _json(self.objects(parts[3], account=parts[1])))
            if method == "POST" and parts == ["reset"]:
                self.reset()
                return _Response(200, _json({"reset": True}))
            if method == "POST" and parts == ["idempotency", "expire"]:
                return _Response(200, _json({"expired": self.expire_idempotency_keys()}))
            if method == "GET" and parts == ["faults"]:
                return _Response(200, _json(self.settings()))
            if method == "POST" and parts == ["faults"]:
                settings = json.loads(body or "{}")
                return _Response(200, _json(self.set_faults(**settings)))
            if method == "GET" and parts == ["health"]:
                return _Response(200, _json({"ok": True}))
        except (KeyError, TypeError, ValueError) as exc:
            return _Response(400, _json({"error": {"type": "emulator_error", "message": str(exc)}}))
        return _Response(
            404, _json({"error": {"type": "emulator_error", "message": f"no such endpoint {path}"}})
        )


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up (a killed run, a timeout) is normal here, not a traceback on stderr."""

    daemon_threads = True
    # the listen backlog: socketserver's 5 resets connections when a client opens dozens at once
    # (64 writes in flight), which Stripe does not
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _lookup_for_expand(store: Store, type_name: str, object_id: str) -> dict[str, Any] | None:
    obj = store.get(type_name, object_id)
    if obj is None:
        return store.deleted[type_name].get(object_id)
    return render(store, type_name, obj)


def _shown_key(header: str | None) -> str:
    """The API key as Stripe echoes it in errors: its start and end only."""
    credential = (header or "").partition(" ")[2].strip()
    return (credential[:8] + "*" * 4 + credential[-4:]) if len(credential) > 12 else "****"


def _body_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("id") if isinstance(data, dict) else None


def _authenticate(header: str | None) -> None:
    if not header:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
            "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        )
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            credential = base64.b64decode(credential).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            credential = ""
    elif scheme.lower() != "bearer":
        credential = ""
    credential = credential.strip()
    if not _KEY.match(credential):
        shown = (credential[:8] + "*" * 4 + credential[-4:]) if len(credential) > 12 else "****"
        raise StripeError(401, f"Invalid API Key provided: {shown}")
    if "_live_" in credential:
        raise StripeError(
            401,
            "The Stripe emulator only accepts test mode keys (sk_test_... or rk_test_...), not live keys.",
        )


def _handler_class(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One buffered write per response and no Nagle: otherwise keep-alive clients wait ~40 ms per
        # request on delayed ACKs.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True
        server_version = "stripe-emulator"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if len(raw) < length:  # the client died mid-request: like Stripe, apply nothing of it
                self.close_connection = True
                return
            body = raw.decode("utf-8", "replace")
            url = urlsplit(self.path)
            if url.path.startswith("/_emulator/"):
                self._send(emulator.handle_admin(method, url.path, body))
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            response, entry = emulator.handle_api(method, url.path, url.query, body, headers)
            emulator.log.add(entry)
            if response is None:
                self.close_connection = True  # the write was applied; the client never hears about it
                return
            self._send(response)

        def _send(self, response: _Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)

    return Handler
