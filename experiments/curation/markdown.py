"""Notes as HTML: Markdown rendered by markdown-it-py with raw HTML off, then sanitised by nh3.

Two locks on one door: markdown-it escapes any HTML a note holds (``<script>`` shows as text) and
refuses ``javascript:`` links; nh3 then keeps only the tags and attributes below, so even a parser
bug cannot put a script, a style, an event handler or an image from elsewhere on the page::

    render("Lower *val_loss*; see [the run](https://example.org)")
    # '<p>Lower <em>val_loss</em>; see <a href="https://example.org" rel="noopener noreferrer nofollow">...'
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
SCHEMES = {"http", "https", "mailto"}

_parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def render(text: str) -> SafeString:
    """``text`` (Markdown) as HTML that is safe to put on a page."""
    html = _parser.render(text or "")
    return mark_safe(  # safe: sanitised just now by nh3 with the allow-lists above
        nh3.clean(
            html,
            tags=TAGS,
            attributes=ATTRIBUTES,
            url_schemes=SCHEMES,
            link_rel="noopener noreferrer nofollow",
            filter_style_properties={"text-align"},
        )
    )
