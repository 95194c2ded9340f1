"""What the auth service counts, for `/metrics`: how sign-ins and refreshes end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter

from backend_services.core.errors import (
    AppError,
    InvalidCredentials,
    RateLimited,
    RefreshTokenExpired,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenRevoked,
    TooManyAttempts,
    UsernameTaken,
)

# How an attempt ended, by the error it raised (the first class that matches); anything else
# (the store down, a race) is an "error".
LOGIN_OUTCOMES: tuple[tuple[type[AppError], str], ...] = (
    (TooManyAttempts, "throttled"),
    (InvalidCredentials, "failure"),
)
REFRESH_OUTCOMES: tuple[tuple[type[AppError], str], ...] = (
    (RateLimited, "throttled"),
    (RefreshTokenReused, "reused"),
    (RefreshTokenInvalid, "rejected"),
    (RefreshTokenExpired, "rejected"),
    (RefreshTokenRevoked, "rejected"),
)
REGISTER_OUTCOMES: tuple[tuple[type[AppError], str], ...] = ((UsernameTaken, "taken"),)


class AuthStats:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.logins = Counter(
            "letschat_logins",
            "Logins by outcome: success; failure (unknown username or wrong password); "
            "throttled (429 before any check); error.",
            ["outcome"],
            registry=registry,
        )
        self.refreshes = Counter(
            "letschat_refreshes",
            "Token refreshes by outcome: success; throttled (429); rejected (an invalid, "
            "expired or ended session's token); reused (a replaced token again: the session "
            "was ended); error.",
            ["outcome"],
            registry=registry,
        )
        self.registrations = Counter(
            "letschat_registrations",
            "Sign-ups by outcome: success; taken (the username exists); error.",
            ["outcome"],
            registry=registry,
        )
        for counter, outcomes in (
            (self.logins, LOGIN_OUTCOMES),
            (self.refreshes, REFRESH_OUTCOMES),
            (self.registrations, REGISTER_OUTCOMES),
        ):
            for outcome in ("success", "error", *(name for _, name in outcomes)):
                counter.labels(outcome)  # Present at zero from the start, for rate() and alerts.

    @contextmanager
    def counting(
        self, counter: Counter, outcomes: tuple[tuple[type[AppError], str], ...]
    ) -> Iterator[None]:
        """Count how the attempt inside ends."""
        try:
            yield
        except Exception as exc:
            outcome = next((name for kind, name in outcomes if isinstance(exc, kind)), "error")
            if isinstance(exc, RefreshTokenReused) and not exc.ended_now:
                outcome = "rejected"  # A session ended for reuse before: counted then.
            counter.labels(outcome).inc()
            raise
        counter.labels("success").inc()
