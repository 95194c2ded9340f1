"""Whether someone is there, on their avatar: a dot in the corner (green online, amber away,
an outline offline, nothing while unknown), named for screen readers."""

from __future__ import annotations

from typing import Any

import reflex as rx


def with_presence(avatar: rx.Component, status: rx.Var[str] | Any) -> rx.Component:
    label = rx.cond(status == "online", "Online", rx.cond(status == "away", "Away", "Offline"))
    return rx.box(
        avatar,
        rx.cond(
            status != "",
            rx.el.span(
                class_name="presence-dot",
                data_status=status,
                role="img",
                aria_label=label,
                title=label,
            ),
        ),
        class_name="with-presence",
    )
