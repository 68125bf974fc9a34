"""The one place that decides between a full page and an HTMX fragment, and how to redirect.

A fragment is rendered from a named block of the same template as the page (jinja2-fragments),
so page and fragment cannot drift apart. Boosted navigation and history restores get full pages.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import Response, flash, g, make_response, redirect, render_template, request
from jinja2_fragments.flask import render_block


def wants_fragment() -> bool:
    hx = getattr(request, "htmx", None)
    return bool(hx) and not hx.boosted and not hx.history_restore_request


def render(template: str, *, block: str | None = None, status: int = 200, push_url: str | None = None,
           **context) -> Response:
    """Render the page, or only `block` of it for an HTMX request; `Vary: HX-Request` either way.

    `push_url` is the canonical address of what the fragment shows (empty filters left out), so
    the address bar and the back button follow filtering done with HTMX.
    """
    fragment = block is not None and wants_fragment()
    body = render_block(template, block, **context) if fragment else render_template(template, **context)
    if fragment and g.get("notices"):
        # messages of a swapped fragment go to the page's message area, out of band
        body += render_template("_partials/_notices_oob.html", notices=g.pop("notices"))
    response = make_response(body, status)
    response.vary.add("HX-Request")
    if fragment and push_url:
        response.headers["HX-Push-Url"] = push_url
    return response


def notice(message: str, category: str = "success") -> None:
    """Tell the user what happened: a flash for the next full page, or, when this request answers
    with a fragment, an alert swapped into the page's message area with it."""
    if wants_fragment():
        g.setdefault("notices", []).append((category, message))
    else:
        flash(message, category)


def redirect_to(url: str) -> Response:
    """Redirect a normal request with 303, an HTMX request with HX-Location (no full reload)."""
    if getattr(request, "htmx", None):
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def trigger(response: Response, event: str, detail: object = True) -> Response:
    """Ask the page to fire a client event after the swap (e.g. to refresh a list)."""
    existing = json.loads(response.headers.get("HX-Trigger", "{}") or "{}")
    existing[event] = detail
    response.headers["HX-Trigger"] = json.dumps(existing)
    return response


def retarget(response: Response, selector: str, swap: str = "innerHTML") -> Response:
    response.headers["HX-Retarget"] = selector
    response.headers["HX-Reswap"] = swap
    return response


def referrer_path() -> str | None:
    """The path (and query) of the page this request came from, when it is one of ours."""
    if not request.referrer:
        return None
    source = urlsplit(request.referrer)
    if source.netloc and source.netloc != request.host:
        return None
    return source.path + (f"?{source.query}" if source.query else "")


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths; anything else goes to `default` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default
