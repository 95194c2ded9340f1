"""Password hashing and access tokens."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bcrypt
import jwt

from backend_services.core.errors import TokenExpired, Unauthorized

JWT_ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "aud", "jti")


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


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    secret: str
    audience: str
    lifetime: timedelta

    def issue(self, user_id: str, *, now: datetime | None = None) -> tuple[str, TokenClaims]:
        """Sign a new access token for `user_id`."""
        # JWT times are whole seconds; truncating keeps the claims equal to what decode returns.
        issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = TokenClaims(
            user_id=user_id, token_id=uuid.uuid4().hex, expires_at=issued_at + self.lifetime
        )
        payload = {
            "sub": user_id,
            "aud": self.audience,
            "iat": issued_at,
            "exp": claims.expires_at,
            "jti": claims.token_id,
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
        sub, jti = payload["sub"], payload["jti"]
        if not isinstance(sub, str) or not isinstance(jti, str) or not sub or not jti:
            raise Unauthorized()
        return TokenClaims(
            user_id=sub, token_id=jti, expires_at=datetime.fromtimestamp(payload["exp"], UTC)
        )
