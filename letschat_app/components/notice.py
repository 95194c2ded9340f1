"""An error callout that shows only while there is an error to show."""

from __future__ import annotations

from typing import Any

import reflex as rx


def error_notice(message: str | rx.Var[str], **props: Any) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", **props),
    )
