"""Filter bars of list pages: declared once, parsed from the query string, echoed back with errors.

List pages are the hottest requests in the console (every keystroke of an active search is one),
so their filters are parsed here with plain code instead of a WTForms form per request. Bad
values never reach a query: they come back as errors next to the field and the list is not run.
POST forms keep using Flask-WTF.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from markupsafe import Markup


@dataclass(frozen=True)
class FilterField:
    name: str
    label: str
    kind: str = "text"  # text | select | datetime
    max_length: int = 200
    choices: Mapping[str, str] | None = None  # for select; None = supplied per request
    placeholder: str | None = None
    size: int | None = None
    search: bool = False  # the field "/" focuses


@dataclass
class ParsedFilters:
    """The values that passed (typed), what the user typed (to echo), and what is wrong."""

    values: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    choices: dict[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def query_args(self) -> dict[str, str]:
        """The non-empty filters as they appear in a canonical URL."""
        return {name: value for name, value in self.raw.items() if value != ""}


DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class FilterBar:
    def __init__(self, *fields: FilterField) -> None:
        self.fields = fields

    def parse(self, args: Mapping[str, str], *, choices: Mapping[str, Mapping[str, str]] | None = None
              ) -> ParsedFilters:
        parsed = ParsedFilters()
        for spec in self.fields:
            raw = (args.get(spec.name) or "").strip()
            parsed.raw[spec.name] = raw
            options = (choices or {}).get(spec.name, spec.choices) or {}
            if spec.kind == "select":
                parsed.choices[spec.name] = options
            if raw == "":
                parsed.values[spec.name] = None
            elif len(raw) > spec.max_length:
                parsed.errors[spec.name] = f"At most {spec.max_length} characters."
            elif spec.kind == "select":
                if raw not in options:
                    parsed.errors[spec.name] = "Not one of the choices."
                else:
                    parsed.values[spec.name] = raw
            elif spec.kind == "datetime":
                try:
                    parsed.values[spec.name] = datetime.strptime(raw, DATETIME_FORMAT).replace(tzinfo=UTC)
                except ValueError:
                    parsed.errors[spec.name] = "Use the form 2026-01-31T14:30."
            else:
                parsed.values[spec.name] = raw
        return parsed

    def field(self, name: str) -> FilterField:
        return next(f for f in self.fields if f.name == name)

    def html(self, parsed: ParsedFilters) -> Markup:
        """The bar's fields, each echoing what was typed and showing its error (selects with a
        single choice left out). The same typed values give the same HTML, so it is built once
        per bar, values and choices: list pages render their bar on every keystroke of a search."""
        return _bar_html(self, tuple(parsed.raw.items()), tuple(parsed.errors.items()),
                         tuple((name, tuple(choices.items())) for name, choices in parsed.choices.items()))


@functools.lru_cache(maxsize=1024)
def _bar_html(bar: FilterBar, raw: tuple, errors: tuple, choices: tuple) -> Markup:
    from app.templating import options as select_options

    typed, problems, options = dict(raw), dict(errors), dict(choices)
    html = []
    for spec in bar.fields:
        if spec.kind == "select" and len(options.get(spec.name, ())) <= 1:
            continue
        name, current, error = escape(spec.name), typed.get(spec.name, ""), problems.get(spec.name)
        html.append(f'<div class="field{" has-error" if error else ""}">'
                    f'<label for="{name}">{escape(spec.label)}</label>')
        if spec.kind == "select":
            html.append(f'<select id="{name}" name="{name}">{select_options(options.get(spec.name, ()), current)}'
                        "</select>")
        else:
            html.append(f'<input type="{"datetime-local" if spec.kind == "datetime" else "text"}" id="{name}" '
                        f'name="{name}" value="{escape(current)}"'
                        + (f' placeholder="{escape(spec.placeholder)}"' if spec.placeholder else "")
                        + (f' size="{spec.size}"' if spec.size else "")
                        + (" data-search" if spec.search else "") + ">")
        if error:
            html.append(f'<div class="error">{escape(error)}</div>')
        html.append("</div>")
    return Markup("".join(html))


def check_window(parsed: ParsedFilters, since: str = "since", until: str = "until") -> None:
    """A time window must run forwards."""
    start, end = parsed.values.get(since), parsed.values.get(until)
    if start and end and start >= end:
        parsed.errors[until] = "Must be after 'From'."
