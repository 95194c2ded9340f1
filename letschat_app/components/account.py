"""Settings > Sessions and password: where you are signed in, ending sessions, a new password."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import reflex as rx

from letschat_app import api_client
from letschat_app.components.notice import error_notice
from letschat_app.state.chat import ChatState
from letschat_app.state.models import DeviceItem, device
from letschat_app.state.session import notice_for
from letschat_protocol import ErrorCode

PASSWORD_FIELDS = ("current_password", "new_password", "repeat_password")


class AccountState(ChatState):
    account_open: bool = False
    devices: rx.Field[list[DeviceItem]] = rx.field(default_factory=list)
    account_error: str = ""
    account_info: str = ""
    change_error: str = ""
    change_info: str = ""

    @rx.var
    def other_devices(self) -> int:
        return sum(1 for d in self.devices if not d.current)

    @rx.event
    async def open_account(self):
        self.account_open = True
        self.account_error = self.account_info = self.change_error = self.change_info = ""
        return await self._load_devices()

    @rx.event
    def set_account_open(self, value: bool) -> None:
        self.account_open = value

    async def _load_devices(self) -> Any:
        try:
            found = await self._call(api_client.sessions)
        except api_client.ApiError as exc:
            return self._account_failed(exc)
        now = datetime.now(UTC)
        self.devices = [device(info, now) for info in found]
        return None

    @rx.event
    async def end_device(self, session_id: str):
        try:
            await self._call(api_client.end_session, session_id)
        except api_client.ApiError as exc:
            if exc.status != 404:  # Already over: the list below says so.
                return self._account_failed(exc)
        self.account_info = "That device was logged out."
        return await self._load_devices()

    @rx.event
    async def end_other_devices(self):
        try:
            ended = await self._call(api_client.end_other_sessions)
        except api_client.ApiError as exc:
            return self._account_failed(exc)
        self.account_info = _logged_out(ended)
        return await self._load_devices()

    @rx.event
    async def change_password(self, form: dict[str, Any]):
        current, new, repeat = (str(form.get(name, "")) for name in PASSWORD_FIELDS)
        self.change_error = self.change_info = ""
        if not current or not new:
            self.change_error = "Enter your current password and a new one."
            return None
        if new != repeat:
            self.change_error = "The new passwords do not match."
            return None
        if not 8 <= len(new) <= 128:
            self.change_error = "Passwords are 8-128 characters."
            return None
        try:
            ended = await self._call(api_client.change_password, current, new)
        except api_client.ApiError as exc:
            if exc.ends_session:
                return self._end_session(notice_for(exc))
            self.change_error = _explain(exc)
            return None
        self.change_info = f"Password changed. {_logged_out(ended)}"
        return [rx.set_value(name, "") for name in PASSWORD_FIELDS] + [AccountState.reload_devices]

    @rx.event
    async def reload_devices(self):
        return await self._load_devices()

    def _account_failed(self, exc: api_client.ApiError) -> Any:
        if exc.ends_session:
            return self._end_session(notice_for(exc))
        self.account_error = exc.message
        return None


def _logged_out(count: int) -> str:
    if count == 0:
        return "No other device was signed in."
    return f"{count} other device{'s were' if count != 1 else ' was'} logged out."


def _explain(exc: api_client.ApiError) -> str:
    if exc.code == ErrorCode.WRONG_PASSWORD:
        return "That is not your current password."
    if exc.code == ErrorCode.TOO_MANY_ATTEMPTS:
        wait = f" (about {exc.retry_after} s)" if exc.retry_after else ""
        return f"Too many attempts. Wait a moment and try again{wait}."
    return exc.message


def _device_row(item: DeviceItem) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.hstack(
                rx.text(item.device, weight="medium"),
                rx.cond(item.current, rx.badge("This device", color_scheme="green")),
                align="center",
            ),
            rx.text(
                "Last used ",
                item.last_used,
                rx.cond(item.network != "", " · near " + item.network, ""),
                size="1",
                color_scheme="gray",
            ),
            spacing="0",
        ),
        rx.spacer(),
        rx.cond(
            item.current,
            rx.fragment(),
            rx.button(
                "Log out",
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=AccountState.end_device(item.id),
                aria_label="Log out " + item.device,
            ),
        ),
        width="100%",
        align="center",
        class_name="device-row",
    )


def _password_field(label: str, name: str, autocomplete: str) -> rx.Component:
    return rx.el.label(
        rx.text(label, size="2"),
        rx.input(name=name, id=name, type="password", auto_complete=autocomplete, width="100%"),
        display="flex",
        flex_direction="column",
        gap="1",
        width="100%",
    )


def account_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Sessions and password"),
            rx.vstack(
                rx.heading("Where you're signed in", size="3", as_="h3"),
                error_notice(AccountState.account_error),
                rx.cond(
                    AccountState.account_info != "",
                    rx.text(AccountState.account_info, size="2", role="status"),
                ),
                rx.vstack(rx.foreach(AccountState.devices, _device_row), width="100%"),
                rx.button(
                    "Log out everywhere else",
                    on_click=AccountState.end_other_devices,
                    variant="soft",
                    color_scheme="red",
                    disabled=AccountState.other_devices == 0,
                ),
                rx.separator(),
                rx.heading("Change password", size="3", as_="h3"),
                rx.form(
                    rx.vstack(
                        _password_field("Current password", "current_password", "current-password"),
                        _password_field("New password", "new_password", "new-password"),
                        _password_field(
                            "Repeat the new password", "repeat_password", "new-password"
                        ),
                        error_notice(AccountState.change_error),
                        rx.cond(
                            AccountState.change_info != "",
                            rx.text(AccountState.change_info, size="2", role="status"),
                        ),
                        rx.text(
                            "Changing it logs out every other device.",
                            size="1",
                            color_scheme="gray",
                        ),
                        rx.button("Change password", type="submit"),
                        width="100%",
                    ),
                    on_submit=AccountState.change_password,
                    width="100%",
                ),
                rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                spacing="3",
                margin_top="var(--space-3)",
                width="100%",
            ),
            max_width="480px",
        ),
        open=AccountState.account_open,
        on_open_change=AccountState.set_account_open,
    )
