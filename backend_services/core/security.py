"""Password hashing, access tokens and refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bcrypt
import jwt

from backend_services.core.errors import RefreshTokenInvalid, TokenExpired, Unauthorized

JWT_ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "aud", "jti", "sid")


def _prehash(password: str) -> bytes:
    # bcrypt reads at most 72 bytes. Hashing first (to 44 base64 bytes, no NULs) means every
    # character of a 128-character password counts and nothing is ever truncated silently.
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


def hash_password(password: str, rounds: int) -> str:
    """Return a bcrypt hash of the pre-hashed password (CPU-bound: call it off the event loop)."""
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    """Check a password against a hash from `hash_password` (CPU-bound)."""
    return bcrypt.checkpw(_prehash(password), password_hash.encode())


def dummy_hash(rounds: int) -> str:
    """A hash to check against when the user does not exist, so both failures take as long."""
    return hash_password(uuid.uuid4().hex, rounds)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    token_id: str
    expires_at: datetime
    # The sign-in this token was issued for: ending it (logout, another device, a password
    # change, a reused refresh token) ends every access token issued from it.
    session_id: str


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    secret: str
    audience: str
    lifetime: timedelta

    def issue(
        self, user_id: str, session_id: str, *, now: datetime | None = None
    ) -> tuple[str, TokenClaims]:
        """Sign a new access token for `user_id` in the sign-in `session_id`."""
        # JWT times are whole seconds; truncating keeps the claims equal to what decode returns.
        issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = TokenClaims(
            user_id=user_id,
            token_id=uuid.uuid4().hex,
            expires_at=issued_at + self.lifetime,
            session_id=session_id,
        )
        payload = {
            "sub": user_id,
            "aud": self.audience,
            "iat": issued_at,
            "exp": claims.expires_at,
            "jti": claims.token_id,
            "sid": session_id,
        }
        return jwt.encode(payload, self.secret, algorithm=JWT_ALGORITHM), claims

    def decode(self, token: str) -> TokenClaims:
        """Verify signature, algorithm, audience and expiry; raise `Unauthorized` otherwise."""
        try:
            payload = jwt.decode(
                token,
                self.secret,
                algorithms=[JWT_ALGORITHM],
                audience=self.audience,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired() from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized() from exc
        sub, jti, sid = payload["sub"], payload["jti"], payload["sid"]
        if not all(isinstance(value, str) and value for value in (sub, jti, sid)):
            raise Unauthorized()
        return TokenClaims(
            user_id=sub,
            token_id=jti,
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            session_id=sid,
        )


# --- Refresh tokens -------------------------------------------------------------------------
#
# A refresh token is `<session id>.<generation>.<secret>.<tag>`: 32 secret bytes (random for the
# first generation), and an HMAC tag over the rest. Only a hash of the current and the previous
# token is stored. The tag proves that a token this service issued, even one rotated long ago,
# is genuine: a genuine token of an older generation is a reuse, which ends its whole session,
# while a forged one is just unknown (so knowing a session id is not enough to end it).
#
# Rotation is deterministic: the next token's secret is an HMAC of the token it replaces. Two tabs
# that refresh with the same token at the same moment therefore get the same new token, instead
# of one of them holding a token the other already replaced (see AuthServices.refresh).

REFRESH_SECRET_BYTES = 32
_TAG_BYTES = 16
_REFRESH_PATTERN = re.compile(
    r"([0-9a-f]{32})\.(0|[1-9][0-9]{0,8})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{22})"
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class RefreshToken:
    session_id: str
    generation: int
    text: str

    @property
    def digest(self) -> str:
        """What is stored: a SHA-256 of the whole token (its secret has 256 bits of entropy, so
        a fast hash is enough)."""
        return hashlib.sha256(self.text.encode()).hexdigest()


class RefreshTokens:
    """Makes, checks and rotates refresh tokens with a key derived from the token secret."""

    def __init__(self, secret: str) -> None:
        root = secret.encode()
        self._tag_key = hmac.digest(root, b"letschat refresh token tag", "sha256")
        self._next_key = hmac.digest(root, b"letschat refresh token rotation", "sha256")

    def first(self, session_id: str) -> RefreshToken:
        return self._make(session_id, 0, secrets.token_bytes(REFRESH_SECRET_BYTES))

    def next(self, token: RefreshToken) -> RefreshToken:
        """The token that replaces `token`: always the same one for the same `token`."""
        secret = hmac.digest(self._next_key, token.text.encode(), "sha256")
        return self._make(token.session_id, token.generation + 1, secret)

    def parse(self, text: str) -> RefreshToken:
        """Check the form and the tag; raise `RefreshTokenInvalid` for anything else."""
        match = _REFRESH_PATTERN.fullmatch(text)
        if match is None:
            raise RefreshTokenInvalid()
        session_id, generation, _, tag = match.groups()
        body = text.rsplit(".", 1)[0]
        if not hmac.compare_digest(tag, _b64(self._tag(body))):
            raise RefreshTokenInvalid()
        return RefreshToken(session_id, int(generation), text)

    def _make(self, session_id: str, generation: int, secret: bytes) -> RefreshToken:
        body = f"{session_id}.{generation}.{_b64(secret)}"
        return RefreshToken(session_id, generation, f"{body}.{_b64(self._tag(body))}")

    def _tag(self, body: str) -> bytes:
        return hmac.digest(self._tag_key, body.encode(), "sha256")[:_TAG_BYTES]
