"""Where an audit row's reference lives in the console. Areas register a URL builder per ref_type."""

from __future__ import annotations

from collections.abc import Callable

from flask import url_for
from werkzeug.routing import BuildError

from app.audit.models import AuditEvent

_builders: dict[str, Callable[[AuditEvent], str | None]] = {}


def link_builder(ref_type: str):
    def register(fn: Callable[[AuditEvent], str | None]):
        _builders[ref_type] = fn
        return fn

    return register


def ref_url(event: AuditEvent) -> str | None:
    """The page of the thing the event refers to, or None when it has no page (or is gone)."""
    builder = _builders.get(event.ref_type)
    if builder is None or event.ref_id is None:
        return None
    try:
        return builder(event)
    except BuildError:
        return None


@link_builder("membership")
def _membership(event: AuditEvent) -> str:
    who = (event.context or {}).get("user") or ((event.field_deltas or {}).get("user") or [None, None])[1]
    return url_for("workspaces.members", q=who) if who else url_for("workspaces.members")


@link_builder("user")
def _user(event: AuditEvent) -> str:
    email = ((event.field_deltas or {}).get("email") or [None, None])[1]
    return url_for("workspaces.members", q=email) if email else url_for("audit.index", ref_type="user",
                                                                           ref_id=event.ref_id)


@link_builder("tenant")
def _tenant(event: AuditEvent) -> str:
    return url_for("workspaces.tenants")


@link_builder("workspace")
def _workspace(event: AuditEvent) -> str:
    return url_for("console.home")
