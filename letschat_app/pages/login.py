"""/login: log in or sign up. The form's own state lives here; the session is SessionState's."""

from __future__ import annotations

from typing import Any, Literal

import reflex as rx

from letschat_app import api_client
from letschat_app.components.notice import error_notice
from letschat_app.state.session import HOME_ROUTE, SessionState
from letschat_protocol import ErrorCode

FRIENDLY: dict[str, str] = {
    ErrorCode.INVALID_CREDENTIALS: "Wrong username or password.",
    ErrorCode.USERNAME_TAKEN: "That username is taken. Try another one.",
    ErrorCode.TOO_MANY_ATTEMPTS: "Too many attempts. Wait a moment and try again.",
}


class LoginState(SessionState):
    signing_up: rx.Field[bool] = rx.field(False)
    error: str = ""
    busy: bool = False

    @rx.event
    def set_signing_up(self, signing_up: bool) -> None:
        self.signing_up = signing_up
        self.error = ""

    @rx.event
    def leave_if_signed_in(self):
        return rx.redirect(HOME_ROUTE) if self.token else None

    @rx.event
    async def submit(self, form: dict[str, Any]):
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        if not username or not password:
            self.error = "Enter a username and a password."
            return
        self.busy, self.error = True, ""
        yield
        client_ip = self.router.session.client_ip
        user_agent = self.router.headers.user_agent
        try:
            if self.signing_up:
                display_name = str(form.get("display_name", "")).strip() or None
                response = await api_client.register(
                    username, password, display_name, client_ip, user_agent
                )
            else:
                response = await api_client.login(username, password, client_ip, user_agent)
        except api_client.ApiError as exc:
            self.busy = False
            self.error = _explain(exc)
            return
        self.busy = False
        self._start_session(response)
        yield rx.redirect(HOME_ROUTE)


def _explain(exc: api_client.ApiError) -> str:
    if exc.code == ErrorCode.VALIDATION_ERROR:
        field = exc.message.split(":", 1)[0]
        if field == "username":
            return "Usernames are 3-32 characters: letters, digits, and _ . -"
        if field == "password":
            return "Passwords are 8-128 characters."
        return exc.message
    message = FRIENDLY.get(exc.code, exc.message)
    if exc.retry_after:
        message += f" (about {exc.retry_after} s)"
    return message


def _field(
    label: str, name: str, kind: Literal["text", "password"] = "text", **props: Any
) -> rx.Component:
    return rx.el.label(
        rx.text(label, size="2", weight="medium"),
        rx.input(name=name, type=kind, id=name, size="3", width="100%", **props),
        display="flex",
        flex_direction="column",
        gap="1",
        width="100%",
    )


def login_page() -> rx.Component:
    signing_up = LoginState.signing_up
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.heading("Let's Chat", size="7"),
                    rx.cond(
                        LoginState.notice != "",
                        rx.callout(
                            LoginState.notice, icon="info", color_scheme="blue", width="100%"
                        ),
                    ),
                    rx.text(
                        rx.cond(signing_up, "Create your account.", "Log in to your team chat."),
                        color_scheme="gray",
                    ),
                    _field("Username", "username", auto_complete="username", required=True),
                    _field(
                        "Password",
                        "password",
                        "password",
                        auto_complete=rx.cond(signing_up, "new-password", "current-password"),
                        required=True,
                    ),
                    rx.cond(
                        signing_up,
                        _field("Display name (optional)", "display_name", auto_complete="name"),
                    ),
                    error_notice(LoginState.error, width="100%", role="alert"),
                    rx.button(
                        rx.cond(signing_up, "Sign up", "Log in"),
                        type="submit",
                        size="3",
                        width="100%",
                        loading=LoginState.busy,
                    ),
                    rx.hstack(
                        rx.text(rx.cond(signing_up, "Have an account?", "New here?"), size="2"),
                        rx.button(
                            rx.cond(signing_up, "Log in instead", "Create an account"),
                            on_click=LoginState.set_signing_up(~signing_up),
                            variant="ghost",
                            size="2",
                            type="button",
                        ),
                        spacing="2",
                    ),
                    spacing="4",
                    width="100%",
                ),
                on_submit=LoginState.submit,
                # letschat.js forgets the drafts once this is on screen, signed out.
                id="login-form",
            ),
            width="100%",
            max_width="400px",
            size="4",
        ),
        min_height="100dvh",
        padding="var(--space-4)",
        background="var(--gray-2)",
    )
