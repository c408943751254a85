"""`dbt-stripe-sync emulator` / `python -m dbt_stripe_sync.emulator`: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from dbt_stripe_sync.emulator.server import Emulator


def _rate(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return number


def _limit(value: str) -> float | None:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number or None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the `emulator` sub-command (shared by the product CLI and `python -m`)."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=12111, help="port to listen on (default 12111; 0 = any)")
    parser.add_argument("--latency-ms", type=float, default=0, help="delay added to every API request")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="API requests per second before 429 rate_limit"
    )
    parser.add_argument(
        "--search-rate-limit", type=float, default=None, help="search requests per second before 429"
    )
    parser.add_argument(
        "--endpoint-rate-limit",
        type=_limit,
        default=25.0,
        help="requests per second per endpoint (method + path template) before 429, like Stripe's "
        "default of 25 (default 25; 0 = unlimited)",
    )
    parser.add_argument("--error-rate", type=_rate, default=0.0, help="share of API requests answered 500")
    parser.add_argument(
        "--error-applied-rate",
        type=_rate,
        default=0.0,
        help="share of the saved 500s on keyed POSTs whose write was applied before the 500",
    )
    parser.add_argument(
        "--no-replay-errors",
        dest="replay_errors",
        action="store_false",
        help="do not save injected 500s for their idempotency key (Stripe does; the default replays them)",
    )
    parser.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        help="share of writes applied but answered by a dropped connection",
    )
    parser.add_argument(
        "--lock-timeout-rate", type=_rate, default=0.0, help="share of writes answered 429 lock_timeout"
    )
    parser.add_argument(
        "--rate-limited-rate",
        type=_rate,
        default=0.0,
        help="share of API requests answered 429 rate_limit (not applied), whatever the request rate",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for ids and fault draws (deterministic runs)"
    )
    parser.add_argument(
        "--search-delay-s", type=float, default=0.0, help="seconds before a write is searchable"
    )
    parser.add_argument(
        "--idempotency-ttl-s", type=float, default=86400, help="seconds an idempotency key is remembered"
    )
    parser.add_argument(
        "--account",
        type=_account,
        action="append",
        metavar="ACCT_ID",
        help="declare a connected account (Stripe Connect) requests may name in Stripe-Account; repeat "
        "for several (an undeclared one is refused with 403 account_invalid, as Stripe does)",
    )


def _account(value: str) -> str:
    from dbt_stripe_sync.emulator.accounts import check_account_id

    try:
        return check_account_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def emulator_from_args(args: argparse.Namespace) -> Emulator:
    kwargs: dict[str, Any] = {
        name: getattr(args, name)
        for name in (
            "latency_ms",
            "rate_limit",
            "search_rate_limit",
            "error_rate",
            "drop_rate",
            "lock_timeout_rate",
            "rate_limited_rate",
            "endpoint_rate_limit",
            "replay_errors",
            "error_applied_rate",
            "seed",
            "search_delay_s",
            "idempotency_ttl_s",
        )
    }
    return Emulator(args.host, args.port, accounts=getattr(args, "account", None) or (), **kwargs)


def run_from_args(args: argparse.Namespace) -> int:
    """Start the emulator, print its URL, serve until SIGINT/SIGTERM."""
    emulator = emulator_from_args(args)
    try:
        emulator.start()
    except OSError as exc:
        print(f"stripe emulator: cannot listen on {args.host}:{args.port}: {exc}", flush=True)
        return 1
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"Stripe emulator listening on {emulator.url}", flush=True)
    print(f"  export STRIPE_API_BASE={emulator.url} STRIPE_API_KEY=sk_test_emulator", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Stripe emulator stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dbt_stripe_sync.emulator",
        description="A local Stripe API emulator for syncs and tests.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
