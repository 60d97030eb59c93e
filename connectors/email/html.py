"""Email HTML made safe to show an agent (nh3, an allow-list), and plain text derived from it.

The allow-list (`_TAGS`, `_ATTRIBUTES`, `_STYLE_PROPERTIES`) keeps what mail layout uses —
text formatting, lists, tables, links, images, inline styles — and nothing that runs or
fetches:

- no `script`/`style`/`title`/`head` contents, no comments, no event handlers (`on*` is in
  no list), no forms or inputs, no `iframe`/`object`/`embed`/`svg`/`math`/`base`/`link`/
  `meta`, no `class`/`id` (they could target the application's own CSS);
- links keep only http, https, mailto and tel targets (or a `#fragment`) and get
  `rel="noopener noreferrer nofollow"`;
- no remote resources without consent: an `<img>` keeps `src` only for `cid:` (the UI maps
  it to the inline attachment with that Content-ID) and `data:image/(png|jpeg|gif|webp)`; a
  remote `src` is moved to `data-remote-src` for the UI to load on the agent's request;
  relative URLs are dropped; inline styles keep only properties that cannot carry a URL
  (no `background`, `background-image`, `list-style-image`, `content`, `cursor`, ...), and
  any style value with `url(`, `image-set(`, `expression(` or a CSS escape is dropped whole.
"""

from __future__ import annotations

import html as _html
import re

import nh3

_TAGS = {
    "a", "abbr", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption",
    "center", "cite", "code", "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt",
    "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
    "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small", "span",
    "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "time", "tr", "tt", "u", "ul", "var", "wbr",
}  # fmt: skip
_CLEAN_CONTENT = {"script", "style", "title", "head", "noscript", "template", "xmp"}
_ATTRIBUTES = {
    "*": {"style", "title", "dir", "lang", "align", "valign", "width", "height", "bgcolor"},
    "a": {"href", "name"},
    "img": {"src", "alt", "border", "data-remote-src", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "summary", "frame", "rules"},
    "td": {"colspan", "rowspan", "nowrap", "abbr", "headers", "scope"},
    "th": {"colspan", "rowspan", "nowrap", "abbr", "headers", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite", "type"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "hr": {"size", "noshade", "color"},
}
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "line-height", "letter-spacing", "word-spacing",
    "text-align", "text-decoration", "text-indent", "text-transform", "white-space",
    "vertical-align", "direction", "unicode-bidi", "margin", "margin-top", "margin-right",
    "margin-bottom", "margin-left", "padding", "padding-top", "padding-right",
    "padding-bottom", "padding-left", "border", "border-top", "border-right",
    "border-bottom", "border-left", "border-color", "border-style", "border-width",
    "border-collapse", "border-spacing", "border-radius", "width", "height", "min-width",
    "max-width", "min-height", "max-height", "display", "float", "clear", "overflow",
    "table-layout", "list-style-type", "list-style-position", "visibility",
}  # fmt: skip
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}
_SAFE_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|jpg|gif|webp);", re.IGNORECASE)
_UNSAFE_STYLE = re.compile(r"url\(|image-set\(|expression\(|\\|@import", re.IGNORECASE)
# Moves a remote image source aside before sanitizing; whatever this misses (entity-
# encoded or unusual spellings) is dropped by `_filter`, never loaded.
_REMOTE_IMG_SRC = re.compile(r"(<img\b[^>]*?\s)src(\s*=\s*[\"']?\s*(?:https?:)?//)", re.IGNORECASE)


def _filter(tag: str, attr: str, value: str) -> str | None:
    """Per-attribute decisions the allow-list cannot express. Must never raise."""
    if attr == "src":
        low = value.strip().lower()
        if low.startswith("cid:") or _SAFE_DATA_IMAGE.match(low):
            return value
        return None
    if attr == "data-remote-src":
        low = value.strip().lower()
        if low.startswith("//"):  # scheme-relative: as the page would load it
            return "https:" + value.strip()
        return value if low.startswith(("http://", "https://")) else None
    if attr == "href":
        low = value.strip().lower()
        if low.startswith(("http://", "https://", "mailto:", "tel:", "#")):
            return value
        return None
    if attr in ("style", "cite") and _UNSAFE_STYLE.search(value):
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags=_CLEAN_CONTENT,
    attributes=_ATTRIBUTES,
    attribute_filter=_filter,
    strip_comments=True,
    link_rel="noopener noreferrer nofollow",
    url_schemes=_URL_SCHEMES,
    filter_style_properties=_STYLE_PROPERTIES,
    url_relative="deny",
)


def sanitize_html(html: str) -> str:
    """The HTML of an email restricted to the allow-list above; safe to put in a page."""
    if "<img" in html or "<IMG" in html:
        html = _REMOTE_IMG_SRC.sub(r"\1data-remote-src\2", html)
    return _CLEANER.clean(html)


_BREAK = re.compile(r"<br\b[^>]*>", re.IGNORECASE)
_BLOCK_END = re.compile(
    r"</(?:p|div|tr|table|h[1-6]|ul|ol|dl|dt|dd|blockquote|pre|address|center|caption)\s*>"
    r"|<(?:p|div|tr|table|h[1-6]|ul|ol|dl|blockquote|pre|hr)\b[^>]*>",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"<li\b[^>]*>", re.IGNORECASE)
_CELL = re.compile(r"</t[dh]\s*>", re.IGNORECASE)
_TAG = re.compile(r"<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


def html_to_text(html: str) -> str:
    """Readable plain text from HTML (block elements become line breaks).

    Works on any HTML, but is meant for `sanitize_html`'s output, which has no scripts,
    styles or comments left and quotes every attribute value.
    """
    text = _BREAK.sub("\n", html)
    text = _BLOCK_END.sub("\n", text)
    text = _LIST_ITEM.sub("\n- ", text)
    text = _CELL.sub(" ", text)
    text = _TAG.sub("", text)
    text = _html.unescape(text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()
