"""Markdown from people (descriptions, timeline notes) rendered to HTML that is safe to show.

markdown-it-py renders CommonMark with raw HTML off; nh3 then allows only a small set of tags
and attributes, forces safe link targets and adds rel="noopener noreferrer nofollow".
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h3", "h4", "h5",
                "hr", "table", "thead", "tbody", "tr", "th", "td", "del"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}}


@functools.lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable("table") \
        .enable("strikethrough")


def render_markdown(source: str | None) -> Markup:
    if not source:
        return Markup("")
    html = _renderer().render(source)
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                      link_rel="noopener noreferrer nofollow")
    return Markup(clean)
