"""Password hashing and token checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from backend_services.core.errors import TokenExpired, Unauthorized
from backend_services.core.security import TokenIssuer, hash_password, verify_password

SECRET = "s" * 40
ISSUER = TokenIssuer(secret=SECRET, audience="letschat", lifetime=timedelta(minutes=30))


def test_every_character_of_a_long_password_counts() -> None:
    base = "x" * 72
    stored = hash_password(base + "A" * 20, rounds=12)
    assert verify_password(base + "A" * 20, stored)
    assert not verify_password(base + "B" * 20, stored)
    assert stored.startswith("$2b$12$")


def test_multibyte_passwords_round_trip() -> None:
    password = "🔐" * 128
    assert verify_password(password, hash_password(password, rounds=12))


def test_issued_tokens_decode_to_their_claims() -> None:
    token, claims = ISSUER.issue("user-1")
    assert ISSUER.decode(token) == claims
    assert claims.expires_at - datetime.now(UTC) <= timedelta(minutes=30)


def _forge(payload: dict[str, object], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def _claims(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "sub": "user-1",
        "aud": "letschat",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "j1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# Tokens are made when the test runs, not at collection: a suite can take longer than their life.
@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: _forge(_claims(), key="x" * 40), id="wrong-secret"),
        pytest.param(lambda: _forge(_claims(aud="someone-else")), id="wrong-audience"),
        pytest.param(lambda: _forge(_claims(jti=None)), id="no-jti"),
        pytest.param(lambda: _forge(_claims(sub=None)), id="no-sub"),
        pytest.param(lambda: _forge(_claims(iat=None)), id="no-iat"),
        pytest.param(lambda: jwt.encode(_claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(
            lambda: _forge(_claims(), key="k" * 64, algorithm="HS512"), id="other-algorithm"
        ),
        pytest.param(lambda: "not.a.token", id="garbage"),
    ],
)
def test_bad_tokens_are_unauthorized(make_token: Callable[[], str]) -> None:
    with pytest.raises(Unauthorized) as caught:
        ISSUER.decode(make_token())
    assert type(caught.value) is Unauthorized


def test_an_expired_token_says_so() -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    with pytest.raises(TokenExpired):
        ISSUER.decode(_forge(_claims(iat=past, exp=past + timedelta(minutes=5))))
