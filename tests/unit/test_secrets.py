from __future__ import annotations

import logging

import pytest

from dbt_stripe_sync.secrets import (
    InvalidApiKeyError,
    SecretRedactingFilter,
    install_log_filter,
    key_mode,
    mask_key,
    redact,
    redact_all,
    register_secret,
)

pytestmark = pytest.mark.timeout(30)

LIVE = "sk_live_51LiveSecretValueXYZabcd"
TEST = "rk_test_51RestrictedValueQRSwxyz"


@pytest.mark.parametrize(
    ("key", "mode"),
    [(LIVE, "live"), (TEST, "test"), ("sk_test_abcd", "test"), ("rk_live_" + "9" * 30, "live")],
)
def test_key_mode(key, mode):
    assert key_mode(key) == mode


@pytest.mark.parametrize(
    "bad",
    ["", "pk_live_51abcdefghijkl", "sk_prod_51abcdefghijkl", "sk_test_", "sk_test_ab", " sk_test_abcdefgh",
     "sk_test_abc-defgh", "whsec_abcdefghijkl", "Bearer sk_test_abcdefghij"],
)  # fmt: skip
def test_key_mode_rejects_without_echo(bad):
    with pytest.raises(InvalidApiKeyError) as ei:
        key_mode(bad)
    if len(bad) > 8:
        assert bad not in str(ei.value) and bad[8:] not in str(ei.value)


def test_mask_key():
    assert mask_key(LIVE) == "sk_live_…abcd"
    assert mask_key(TEST) == "rk_test_…wxyz"
    assert mask_key("sk_test_short") == "sk_test_…"  # too short to show any of it
    assert mask_key("no-prefix-but-long-secret-1234") == "…1234"
    assert mask_key("") == "…"


def test_redact_replaces_every_occurrence_longest_first():
    text = f"a {LIVE} b {LIVE}x {LIVE[:20]}"
    out = redact(text, [LIVE[:20], LIVE])
    assert LIVE not in out and LIVE[:20] not in out
    assert out.startswith("a sk_live_…abcd b sk_live_…abcdx ")


def test_redact_ignores_tiny_or_empty_secrets():
    assert redact("the cat sat", ["", "a", "cat"]) == "the cat sat"


def test_registry_redact_all():
    register_secret(TEST)
    assert redact_all(f"key={TEST}") == "key=rk_test_…wxyz"
    assert redact_all("") == ""


def _record(msg, args=(), exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, exc_info)


def test_filter_redacts_msg_args_and_exceptions():
    secret = "sk_test_FilterSecretValue9876"
    register_secret(secret)
    f = SecretRedactingFilter()

    class Holder:
        def __str__(self) -> str:
            return f"holder({secret})"

    r = _record("using %s and %s", (secret, Holder()))
    assert f.filter(r) is True
    assert secret not in r.getMessage() and "holder(sk_test_…9876)" in r.getMessage()

    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        import sys

        r = _record("boom", exc_info=sys.exc_info())
    f.filter(r)
    formatted = logging.Formatter().format(r)
    assert "RuntimeError: failed with sk_test_…9876" in formatted and secret not in formatted

    r = _record("bad format %d", ("x" + secret,))
    f.filter(r)
    assert secret not in r.getMessage()


def test_install_log_filter_is_idempotent_and_effective(caplog):
    secret = "sk_live_InstalledFilterValue5555"
    register_secret(secret)
    install_log_filter("dss.test.secrets")
    install_log_filter("dss.test.secrets")
    lg = logging.getLogger("dss.test.secrets")
    assert sum(isinstance(f, SecretRedactingFilter) for f in lg.filters) == 1
    with caplog.at_level(logging.INFO):
        lg.info("key is %s", secret)
    assert secret not in caplog.text and "sk_live_…5555" in caplog.text
