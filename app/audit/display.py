"""How audit rows read on screen: where each reference lives, and the changes as compact HTML.

Areas register a URL builder per ref_type with `link_builder`. The changes are formatted in
Python rather than in a Jinja loop: a list view renders fifty of them per request.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from flask import url_for
from markupsafe import Markup
from werkzeug.routing import BuildError

_builders: dict[str, Callable[[Any], str | None]] = {}


def link_builder(ref_type: str):
    def register(fn: Callable[[Any], str | None]):
        _builders[ref_type] = fn
        return fn

    return register


def ref_url(event) -> str | None:
    """The page of the thing the event refers to, or None when it has no page (or is gone)."""
    builder = _builders.get(event.ref_type)
    if builder is None or event.ref_id is None:
        return None
    try:
        return builder(event)
    except BuildError:
        return None


@link_builder("membership")
def _membership(event) -> str:
    who = (event.context or {}).get("user") or ((event.field_deltas or {}).get("user") or [None, None])[1]
    return url_for("workspaces.members", q=who) if who else url_for("workspaces.members")


@link_builder("user")
def _user(event) -> str:
    email = ((event.field_deltas or {}).get("email") or [None, None])[1]
    return url_for("workspaces.members", q=email) if email else url_for("audit.index", ref_type="user",
                                                                           ref_id=event.ref_id)


@link_builder("tenant")
def _tenant(event) -> str:
    return url_for("workspaces.tenants")


@link_builder("workspace")
def _workspace(event) -> str:
    return url_for("console.home")


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value))
    return escape(str(value))


def changes_html(field_deltas: dict | None, context: dict | None) -> Markup:
    """`field: old → new` for each delta, then the context as `key=value`, escaped."""
    html = []
    if field_deltas:
        html.append('<ul class="deltas">')
        for name, change in field_deltas.items():
            if isinstance(change, list) and len(change) == 2:
                html.append(f"<li><code>{escape(name)}</code>: <del>{_value(change[0])}</del> → "
                            f"<ins>{_value(change[1])}</ins></li>")
            else:
                html.append(f"<li><code>{escape(name)}</code>: {_value(change)}</li>")
        html.append("</ul>")
    if context:
        shown = [f"{escape(key)}={_value(value)}" for key, value in context.items() if key != "outcome"]
        if shown:
            html.append('<span class="muted">' + ", ".join(shown) + "</span>")
    return Markup("".join(html))
