"""Settings: defaults that run a fresh clone, refusals that protect production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend_services.core.config import DEV_JWT_SECRET, AuthSettings, MessageSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("LETSCHAT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # No .env file is read from the repository.


def test_development_runs_on_defaults() -> None:
    settings = MessageSettings()
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET
    assert settings.redis_url is None
    assert settings.port == 8002
    assert AuthSettings().port == 8001


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize("secret", [None, "short-secret", DEV_JWT_SECRET])
def test_outside_development_a_default_or_short_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, environment: str, secret: str | None
) -> None:
    monkeypatch.setenv("LETSCHAT_ENVIRONMENT", environment)
    if secret is not None:
        monkeypatch.setenv("LETSCHAT_JWT_SECRET", secret)
    with pytest.raises(ValidationError, match="LETSCHAT_JWT_SECRET"):
        AuthSettings()


def test_production_starts_with_a_strong_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETSCHAT_ENVIRONMENT", "production")
    monkeypatch.setenv("LETSCHAT_JWT_SECRET", "k" * 32)
    assert AuthSettings().jwt_secret.get_secret_value() == "k" * 32


def test_origins_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "LETSCHAT_ALLOWED_ORIGINS", "https://chat.example.com, http://localhost:3000"
    )
    assert MessageSettings().allowed_origins == [
        "https://chat.example.com",
        "http://localhost:3000",
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ACCESS_TOKEN_SECONDS", "901"),
        ("ACCESS_TOKEN_SECONDS", "0"),
        ("BCRYPT_ROUNDS", "10"),
        ("REFRESH_GRACE_SECONDS", "601"),
        ("SESSION_IDLE_DAYS", "0"),
        ("TRUSTED_PROXIES", "not-an-address"),
    ],
)
def test_limits_that_protect_users_cannot_be_loosened(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"LETSCHAT_{name}", value)
    with pytest.raises(ValidationError):
        AuthSettings()


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(LETSCHAT_[A-Z_]+)=", text, flags=re.MULTILINE))
    fields = {f"LETSCHAT_{name.upper()}" for name in AuthSettings.model_fields}
    fields |= {f"LETSCHAT_{name.upper()}" for name in MessageSettings.model_fields}
    launcher = {
        "LETSCHAT_AUTH_PORT",
        "LETSCHAT_MESSAGE_PORT",
        "LETSCHAT_SECOND_MESSAGE_PORT",
        "LETSCHAT_EMBEDDED_MONGODB_PORT",
        "LETSCHAT_DATA_DIR",
        "LETSCHAT_FRONTEND_PORT",
        "LETSCHAT_REFLEX_BACKEND_PORT",
    }
    # Read by the Reflex app (rxconfig.py, letschat_app/api_client.py, letschat_app/state/live.py,
    # letschat_app/serving.py).
    web_app = {
        "LETSCHAT_AUTH_URL",
        "LETSCHAT_MESSAGE_URL",
        "LETSCHAT_WS_URL",
        "LETSCHAT_SEND_TIMEOUT_SECONDS",
        "LETSCHAT_REFLEX_API_URL",
        "LETSCHAT_PUBLIC_URL",
        "LETSCHAT_APP_ORIGINS",
        "LETSCHAT_GRANIAN_RUNTIME_MODE",
        "LETSCHAT_TRUSTED_PROXY_HOPS",
        "LETSCHAT_WEB_HOST",
    }
    assert documented == fields | launcher | web_app
    read_by_web_app = set()
    for path in [
        *Path(__file__).parents[2].glob("letschat_app/**/*.py"),
        Path(__file__).parents[2] / "rxconfig.py",
    ]:
        read_by_web_app |= set(re.findall(r"\"(LETSCHAT_[A-Z_]+)\"", path.read_text()))
    assert read_by_web_app - launcher == web_app
