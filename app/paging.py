"""Keyset paging helpers shared by list views."""

from __future__ import annotations

from flask import request


def cursor_arg(name: str) -> int | None:
    """A numeric keyset cursor from the query string; anything else means "from the start"."""
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else None
