"""Checking the fields of an incident action (console form or API body) before anything happens.

Each action declares its fields; `clean` returns typed values or raises ValidationFailed naming
every bad field at once, including fields the action does not know (the API refuses them).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.errors import ValidationFailed


@dataclass(frozen=True)
class Field:
    name: str
    required: bool = True
    check: Callable[[Any], Any] | None = None  # returns the clean value or raises ValueError(reason)


def text(*, min_length: int = 1, max_length: int = 10_000) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be text")
        value = value.strip()
        if len(value) < min_length:
            raise ValueError("required" if min_length == 1 else f"at least {min_length} characters")
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        return value

    return check


def one_of(choices: Mapping[str, str] | tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError("one of: " + ", ".join(choices))
        return value

    return check


def a_uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise ValueError("not an id") from None


def a_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("a date and time like 2026-01-31T14:30") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def labels(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part for part in value.replace(";", ",").split(",")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("a list of labels")
    clean = []
    for label in value:
        label = label.strip().lower()
        if not label:
            continue
        if len(label) > 60 or not all(ch.isalnum() or ch in "-_.:/" for ch in label):
            raise ValueError("labels are up to 60 letters, digits and - _ . : /")
        if label not in clean:
            clean.append(label)
    if len(clean) > 20:
        raise ValueError("at most 20 labels")
    return clean


def clean(fields: tuple[Field, ...], data: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Typed values for the declared fields; every problem reported at once."""
    problems: dict[str, str] = {}
    known = {f.name for f in fields}
    if strict:
        for name in sorted(set(data) - known):
            problems[name] = "unknown field"
    values: dict[str, Any] = {}
    for spec in fields:
        raw = data.get(spec.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if spec.required:
                problems[spec.name] = "required"
            values[spec.name] = None
            continue
        try:
            values[spec.name] = spec.check(raw) if spec.check else raw
        except ValueError as reason:
            problems[spec.name] = str(reason)
    if problems:
        raise ValidationFailed("Some fields are missing or not valid.", fields=problems)
    return values
