"""Credentials are removed from foreign text before it is logged or shown; useful words survive."""

from __future__ import annotations

import pytest

from inferlab.redaction import REDACTED, redact

SECRETS = [
    ("Authorization: Bearer abcDEF123456.xyz", "abcDEF123456"),
    ('{"headers": {"authorization": "Bearer eyJhbGciOi.eyJzdWIiOi.sig"}}', "eyJhbGciOi"),
    ("invalid key bearer 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ("Incorrect API key provided: sk-proj-AbC123dEf456GhI789.", "AbC123dEf456"),
    ("key sk-ant-api03-XYZxyz0123456789 rejected", "XYZxyz0123456789"),
    ("bad credential il-abcdefghijkl-SeCrEtSeCrEtSeCrEt", "SeCrEtSeCrEt"),
    ("request failed: api_key=hunter2hunter2&model=x", "hunter2hunter2"),
    ('{"api_key": "p4ssw0rd-value", "model": "m"}', "p4ssw0rd-value"),
    ("x-api-key: abcdef0123", "abcdef0123"),
    ("password=letmein!", "letmein!"),
    ("connect to postgres://admin:s3cr3t@db.internal:5432/x failed", "s3cr3t"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl in header", "eyJzdWIiOiIxIn0"),
    ("hf_AbCdEfGhIjKlMnOpQrStUv is not authorised", "AbCdEfGhIjKlMnOpQrStUv"),
    ("AWS key AKIAABCDEFGHIJKLMNOP leaked", "AKIAABCDEFGHIJKLMNOP"),
    ("opaque 7c4a8d09ca3762af61e59520943dc26494f8941b was refused", "7c4a8d09ca3762af61e59520943dc26494f8941b"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_credentials_are_redacted(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_a_named_secret_is_removed_whatever_it_looks_like() -> None:
    assert redact("the engine said: key 'plainword' is wrong", known=["plainword", None, ""]) == (
        f"the engine said: key '{REDACTED}' is wrong"
    )


@pytest.mark.parametrize(
    "text",
    [
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
            "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages."
        ),
        "max_tokens must be at least 1, got 0",
        "Basic authentication is not supported; token limit exceeded",
        "the request exceeds the available context size, try increasing it",
    ],
)
def test_ordinary_error_messages_survive(text: str) -> None:
    assert redact(text) == text


def test_control_characters_and_length_are_bounded() -> None:
    cleaned = redact("line one\r\n\x1b[31mred\x00\tend " + "word " * 2000, max_chars=100)
    assert cleaned.startswith("line one red end word")
    assert len(cleaned) <= 100 and "\x1b" not in cleaned and "\n" not in cleaned and cleaned.endswith("…")
