"""Template globals and filters: navigation, capability checks, dates."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from flask import Flask, current_app, request, url_for
from flask_login import current_user
from markupsafe import Markup

from app.workspaces.roles import PLATFORM_ROLES, ROLES

# (label, endpoint, capability): areas appear in the navigation once their blueprint exists
CONSOLE_NAV = [
    ("Home", "console.home", None),
    ("Board", "incidents.board", "incidents.view"),
    ("Problems", "problems.index", "problems.view"),
    ("Changes", "changes.index", "changes.view"),
    ("Knowledge", "knowledge.index", "knowledge.view"),
    ("Reviews", "reviews.index", "reviews.view"),
    ("Reports", "reports.index", "reports.view"),
    ("Audit", "audit.index", "audit.view"),
    ("Alerts", "alerts.index", "alerts.view"),
    ("Members", "workspaces.members", "members.view"),
]
SYSTEM_NAV = [
    ("Overview", "system.home", None),
    ("Runbooks", "system.runbooks", "system.runbooks.view"),
    ("Runs", "system.runs", "system.runbooks.view"),
    ("Service health", "system.health", "system.use"),
    ("Queues & jobs", "system.queues", "system.use"),
    ("Deliveries", "system.deliveries", "system.use"),
    ("Audit", "system.audit", "system.audit.view"),
]


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool
    badge_url: str | None = None  # a small count loaded after the page (unread alerts)


def _actor_can(capability: str) -> bool:
    from app.auth.guards import current_actor

    return current_user.is_authenticated and current_actor().can(capability)


URL_CACHE_SIZE = 8192


def cached_url_for(endpoint: str, **values) -> str:
    """url_for for templates, remembered per application, mount point and arguments: a list page
    builds the same few hundred links on every request (rows are polled and re-rendered)."""
    if values.get("_external") or values.get("_anchor"):
        return url_for(endpoint, **values)
    cache = current_app.extensions.setdefault("opsdesk_url_cache", {})
    try:
        key = (request.script_root, endpoint, tuple(sorted(values.items())))
        hash(key)
    except TypeError:
        return url_for(endpoint, **values)
    url = cache.get(key)
    if url is None:
        if len(cache) >= URL_CACHE_SIZE:
            cache.clear()
        url = cache[key] = url_for(endpoint, **values)
    return url


def _nav_url(endpoint: str) -> str:
    return cached_url_for(endpoint)


def nav_items() -> tuple[NavItem, ...]:
    person = current_user._get_current_object()
    if not person.is_authenticated:
        return ()
    from app.auth.guards import current_actor

    actor = current_actor()
    # the same few menus on every page: remembered per role and page
    key = (actor.kind, actor.role, actor.is_break_glass, request.endpoint, request.blueprint, request.script_root)
    menus = current_app.extensions.setdefault("opsdesk_nav", {})
    items = menus.get(key)
    if items is None:
        if len(menus) >= URL_CACHE_SIZE:
            menus.clear()
        items = menus[key] = tuple(_nav_items(actor, SYSTEM_NAV if person.is_platform else CONSOLE_NAV))
    return items


def _nav_items(actor, menu) -> list[NavItem]:
    rules = current_app.view_functions
    items = []
    for label, endpoint, capability in menu:
        if endpoint not in rules or (capability and not actor.can(capability)):
            continue
        area = endpoint.split(".")[0]
        active = request.endpoint == endpoint or (request.blueprint == area and area not in {"console", "system"})
        badge = _nav_url("alerts.count") if endpoint == "alerts.index" else None
        items.append(NavItem(label=label, url=_nav_url(endpoint), active=active, badge_url=badge))
    return items


def switcher() -> Markup:
    """The workspace and tenant switcher of the signed-in person, rendered once per person as the
    session knows them: a member of a hundred tenants would otherwise pay for it on every page."""
    from app.security import csrf_token

    person = current_user._get_current_object()
    token = csrf_token()
    made = person.rendered.get("switcher")
    if made is None or made[0] != token:
        html = Markup(current_app.jinja_env.get_template("_partials/_switcher.html").render(person=person))
        made = person.rendered["switcher"] = (token, html)
    return made[1]


def format_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def minutes_left(value: datetime | None) -> str:
    if value is None:
        return ""
    minutes = max(0, int((value - datetime.now(UTC)).total_seconds() // 60))
    return f"{minutes} min"


def until(due: datetime | None, now: datetime | None = None) -> str:
    """'in 12m', '3h 5m overdue': a due time relative to now (the countdown's first frame)."""
    if due is None:
        return ""
    seconds = int((due - (now or datetime.now(UTC))).total_seconds())
    overdue, seconds = seconds < 0, abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{days}d {hours}h" if days else (f"{hours}h {minutes}m" if hours else f"{minutes}m")
    return f"{text} overdue" if overdue else f"in {text}"


@functools.lru_cache(maxsize=2048)
def _options(choices: tuple[tuple[str, str], ...], current: str) -> Markup:
    return Markup("".join(
        f'<option value="{escape(value)}"{" selected" if value == current else ""}>{escape(label)}</option>'
        for value, label in choices))


def options(choices, current) -> Markup:
    """<option> elements for a select (built once per distinct list and choice: a workspace's tenant
    list can be long, and every page shows it twice)."""
    items = choices.items() if hasattr(choices, "items") else choices
    return _options(tuple((str(v), str(label)) for v, label in items), "" if current is None else str(current))


def role_label(role: str | None) -> str:
    return ROLES.get(role or "", PLATFORM_ROLES.get(role or "", role or ""))


def init_templating(app: Flask) -> None:
    from app.audit.display import changes_html, ref_url
    from app.security import csrf_token

    app.jinja_env.globals.update(url_for=cached_url_for, nav_items=nav_items, switcher=switcher, can=_actor_can, options=options,
                                 changes_html=changes_html, ref_url=ref_url, csrf_token=csrf_token)
    from app.markdown import render_markdown

    app.jinja_env.filters.update(zip=lambda a, b: list(zip(a, b, strict=False)),
                                 tenant_option=lambda tenant: (tenant[0], tenant[2]),
                                 datetime=format_datetime, minutes_left=minutes_left, role_label=role_label,
                                 until=until, markdown=render_markdown)
    app.jinja_env.globals.update(today=lambda: datetime.now(UTC).date())

    @app.context_processor
    def _layout_context():
        # `person` is the signed-in person itself (or None): cheaper than going through the
        # current_user proxy for every use in the layout
        person = current_user._get_current_object()
        # csrf_token: ours (signed once per session), over the one flask-wtf's processor puts here
        context = {"person": person if person.is_authenticated else None, "csrf_token": csrf_token}
        if request.blueprint == "system":
            context["area"] = "system"
        return context
