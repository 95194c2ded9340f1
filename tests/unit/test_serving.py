"""The Reflex backend's granian server runs its Rust runtime in the mode chosen here."""

from __future__ import annotations

import granian.server
import pytest
from granian.constants import Interfaces, RuntimeModes

from letschat_app import serving


@pytest.fixture(autouse=True)
def _restore_granian(monkeypatch: pytest.MonkeyPatch) -> None:
    # install() replaces the module attribute; monkeypatch puts the original back afterwards.
    monkeypatch.setattr(granian.server, "Server", granian.server.Server)
    monkeypatch.delenv(serving.RUNTIME_MODE_VARIABLE, raising=False)


def _server(**kwargs: object) -> granian.server.Server:
    # How Reflex builds it: looked up on the module when the backend starts.
    return granian.server.Server(target="app:app", interface=Interfaces.ASGI, **kwargs)


def test_the_backend_runs_single_threaded_unless_told_otherwise() -> None:
    assert serving.install() is RuntimeModes.st
    assert _server().runtime_mode is RuntimeModes.st


def test_the_mode_comes_from_the_environment_and_a_callers_choice_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(serving.RUNTIME_MODE_VARIABLE, " MT ")
    assert serving.install() is RuntimeModes.mt
    assert _server().runtime_mode is RuntimeModes.mt
    assert _server(runtime_mode=RuntimeModes.st).runtime_mode is RuntimeModes.st


def test_a_wrong_mode_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(serving.RUNTIME_MODE_VARIABLE, "fast")
    with pytest.raises(ValueError, match="LETSCHAT_GRANIAN_RUNTIME_MODE must be one of"):
        serving.install()
