"""What one instance records of its users' presence, from what their sockets report."""

from __future__ import annotations

from backend_services.message_service.presence import LocalPresence


def known(*users: str) -> LocalPresence:
    local = LocalPresence()
    local.known.update(users)
    return local


def test_a_user_is_online_while_any_socket_is_in_use() -> None:
    local = known("ada")
    assert local.report("ada", "tab1", away=False)
    assert local.status("ada") == "online"
    assert not local.report("ada", "tab2", away=True)  # Still online: tab1.
    assert local.report("ada", "tab1", away=True)
    assert local.status("ada") == "away"
    assert local.report("ada", "tab2", away=False)
    assert local.remove("ada", "tab2")
    assert local.status("ada") == "away"
    assert local.remove("ada", "tab1")
    assert local.status("ada") is None
    assert not local.has("ada")
    assert not local.remove("ada", "tab1")  # Gone already.


def test_nothing_is_recorded_until_the_setting_is_known_nor_for_who_appears_offline() -> None:
    local = LocalPresence()
    local.report("ada", "tab", away=False)
    local.report("bob", "tab", away=True)
    assert local.record() == {}
    local.known.update({"ada", "bob"})
    local.hidden.add("bob")
    assert local.record() == {"ada": "online"}
    local.hidden.discard("bob")
    assert local.record() == {"ada": "online", "bob": "away"}


def test_a_user_whose_last_socket_went_is_forgotten_whole() -> None:
    local = known("ada")
    local.hidden.add("ada")
    local.report("ada", "tab", away=False)
    local.remove("ada", "tab")
    assert "ada" not in local.hidden
    assert "ada" not in local.known
