"""Stripe-Signature: what one active secret signed within the tolerance passes; any change to the
raw body, the timestamp or the signature fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferlab.billing.webhooks import SignatureInvalid, sign, verify

NOW = 1_780_000_000
SECRETS = ["whsec_a", "whsec_b"]


@settings(max_examples=150, deadline=None)
@given(body=st.binary(min_size=1, max_size=300), secret=st.sampled_from(SECRETS), age=st.integers(-299, 299),
       flip=st.integers(0, 10_000))
def test_signed_bodies_pass_and_any_change_fails(body: bytes, secret: str, age: int, flip: int) -> None:
    header = sign(body, secret, NOW - age)
    verify(body, header, SECRETS, tolerance_s=300, now=NOW)
    changed = bytearray(body)
    changed[flip % len(body)] ^= 1 + flip % 255
    with pytest.raises(SignatureInvalid):
        verify(bytes(changed), header, SECRETS, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureInvalid):
        verify(body, header.replace(f"t={NOW - age}", f"t={NOW - age + 1}"), SECRETS, tolerance_s=300, now=NOW)
    with pytest.raises(SignatureInvalid):
        verify(body, header, ["whsec_other"], tolerance_s=300, now=NOW)


def test_tolerance_and_malformed_headers() -> None:
    body = b'{"id": "evt_1"}'
    with pytest.raises(SignatureInvalid):
        verify(body, sign(body, "whsec_a", NOW - 301), SECRETS, tolerance_s=300, now=NOW)
    for header in (None, "", "t=abc,v1=00", "v1=00", f"t={NOW}", "garbage"):
        with pytest.raises(SignatureInvalid):
            verify(body, header, SECRETS, tolerance_s=300, now=NOW)
    rotated = sign(body, "whsec_old", NOW) + "," + sign(body, "whsec_b", NOW).split(",")[1]  # two v1 values
    verify(body, rotated, SECRETS, tolerance_s=300, now=NOW)
