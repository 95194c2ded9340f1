"""A button nobody sees, which assets/letschat.js clicks to raise a state event (a key, the tab
becoming hidden, typing): the page's one way to call Python from a script."""

from __future__ import annotations

from typing import Any

import reflex as rx


def script_button(element_id: str, on_click: Any, **props: Any) -> rx.Component:
    return rx.el.button(
        on_click=on_click,
        id=element_id,
        type="button",
        hidden=True,
        tab_index=-1,
        aria_hidden="true",
        **props,
    )
