"""Password hashing and token checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from backend_services.core.errors import RefreshTokenInvalid, TokenExpired, Unauthorized
from backend_services.core.security import (
    RefreshTokens,
    TokenIssuer,
    hash_password,
    verify_password,
)

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
    token, claims = ISSUER.issue("user-1", "session-1")
    assert ISSUER.decode(token) == claims
    assert claims.session_id == "session-1"
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
        "sid": "s1",
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
        pytest.param(lambda: _forge(_claims(sid=None)), id="no-sid"),
        pytest.param(lambda: _forge(_claims(sid="")), id="empty-sid"),
        pytest.param(lambda: _forge(_claims(sid=["s1"])), id="list-sid"),
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


# --- refresh tokens ---------------------------------------------------------------------------

REFRESH = RefreshTokens(SECRET)
SESSION = "0123456789abcdef0123456789abcdef"


def test_a_first_refresh_token_is_random_and_parses_back() -> None:
    first, again = REFRESH.first(SESSION), REFRESH.first(SESSION)

    assert first.text != again.text
    assert REFRESH.parse(first.text) == first
    assert (first.session_id, first.generation) == (SESSION, 0)
    secret = first.text.split(".")[2]
    assert len(secret) == 43  # 32 bytes: 256 bits.
    assert first.digest != again.digest
    assert SESSION not in first.digest


def test_rotation_is_the_same_for_the_same_token_and_moves_a_generation() -> None:
    first = REFRESH.first(SESSION)

    second = REFRESH.next(first)

    assert second == REFRESH.next(REFRESH.parse(first.text))
    assert second.generation == 1
    assert second.session_id == SESSION
    assert REFRESH.parse(second.text) == second
    assert REFRESH.next(second).text not in {first.text, second.text}
    # Another server secret rotates differently (and refuses these tokens).
    other = RefreshTokens("o" * 40)
    with pytest.raises(RefreshTokenInvalid):
        other.parse(first.text)


def _edit(text: str, part: int, value: str) -> str:
    parts = text.split(".")
    parts[part] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    "make_text",
    [
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "garbage", id="garbage"),
        pytest.param(lambda t: t + ".", id="trailing-dot"),
        pytest.param(lambda t: t[:-1], id="short-tag"),
        pytest.param(lambda t: _edit(t, 0, "f" * 32), id="other-session"),
        pytest.param(lambda t: _edit(t, 1, "1"), id="other-generation"),
        pytest.param(lambda t: _edit(t, 1, "00"), id="padded-generation"),
        pytest.param(lambda t: _edit(t, 1, "-1"), id="negative-generation"),
        pytest.param(lambda t: _edit(t, 1, "9" * 12), id="huge-generation"),
        pytest.param(lambda t: _edit(t, 2, "A" * 43), id="other-secret"),
        pytest.param(lambda t: _edit(t, 3, "A" * 22), id="other-tag"),
        pytest.param(lambda t: t.upper(), id="upper-case"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: t.replace(".", "\x00", 1), id="nul"),
    ],
)
def test_anything_but_an_issued_refresh_token_is_invalid(make_text: Callable[[str], str]) -> None:
    text = REFRESH.first(SESSION).text
    with pytest.raises(RefreshTokenInvalid):
        REFRESH.parse(make_text(text))
