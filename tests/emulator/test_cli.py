"""`python -m dbt_stripe_sync.emulator`: prints its URL, serves the SDK, stops on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys

import pytest
import stripe

from dbt_stripe_sync.emulator import add_arguments


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_add_arguments_parses_fault_flags() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--latency-ms",
            "5",
            "--rate-limit",
            "25",
            "--error-rate",
            "0.1",
            "--drop-rate",
            "0.2",
            "--seed",
            "7",
        ]
    )
    assert (args.port, args.latency_ms, args.rate_limit, args.error_rate, args.drop_rate, args.seed) == (
        0,
        5,
        25,
        0.1,
        0.2,
        7,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--error-rate", "2"])


def test_limit_and_saved_error_flags_reach_the_emulator() -> None:
    from dbt_stripe_sync.emulator.cli import emulator_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    default = emulator_from_args(parser.parse_args([])).settings()
    assert (default["endpoint_rate_limit"], default["replay_errors"], default["error_applied_rate"]) == (
        25,
        True,
        0.0,
    )
    args = ["--endpoint-rate-limit", "0", "--no-replay-errors", "--error-applied-rate", "0.5"]
    chosen = emulator_from_args(parser.parse_args(args)).settings()
    assert (chosen["endpoint_rate_limit"], chosen["replay_errors"], chosen["error_applied_rate"]) == (
        None,
        False,
        0.5,
    )


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_module_entry_point_serves_and_stops(stop_signal: signal.Signals, client_factory) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbt_stripe_sync.emulator", "--port", str(port), "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line
        client = client_factory(f"http://127.0.0.1:{port}")
        assert client.v1.customers.create(params={"name": "cli"}).id.startswith("cus_")
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    with pytest.raises(stripe.APIConnectionError):
        client_factory(f"http://127.0.0.1:{port}").v1.customers.list()
