"""Builds the app and registers its pages; nothing else."""

import reflex as rx

from letschat_app import csp, metrics
from letschat_app.pages.chat import ON_LOAD, chat_page
from letschat_app.pages.login import LoginState, login_page

app = rx.App(
    head_components=[
        rx.script(src="/letschat.js"),
        rx.el.link(rel="icon", href="/favicon.svg", type="image/svg+xml"),
    ],
    stylesheets=["/letschat.css"],
    # Below the headers, so a popup never covers their buttons (Mute, Members, the menu).
    toaster=rx.toast.provider(position="top-right", close_button=True, offset="76px"),
    # Content-Security-Policy and nosniff on every response of the backend (csp.py); then
    # /metrics answered before anything else (metrics.py).
    api_transformer=[csp.security_headers, metrics.serve_metrics],
)
app.add_page(chat_page, route="/", title="Let's Chat", on_load=ON_LOAD, image="/favicon.svg")
app.add_page(
    login_page,
    route="/login",
    title="Log in · Let's Chat",
    on_load=LoginState.leave_if_signed_in,
    image="/favicon.svg",
)
