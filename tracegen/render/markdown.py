"""The data-flow report in Markdown (``DIR/README.md``), for repositories and wikis.

Why a second format: teams keep architecture docs next to the code, where a Markdown file renders without a
browser opening a local file. It shows the same facts as the HTML page (both come from :mod:`._report`), with the
diagrams as linked SVG files (``diagrams/<name>.svg``; their own drill-down links, rendered with
``link_style="file"``, go from SVG to SVG) and GFM tables. Without rendered SVGs (``svg_links=False``) each diagram
is a link to its PlantUML source.

Escaping: the text environment does not escape, so every value from the model goes through :func:`md_text` (a
filter named ``md``): Markdown and HTML metacharacters are backslash-escaped or turned into entities, ``|`` cannot
split a table cell, and a newline cannot start a heading or a list. Section anchors are explicit ``<a id>``
elements with ids from :func:`._filters.anchor_id`, so links do not depend on each host's heading-slug rules.
"""

from __future__ import annotations

import re

import jinja2

from tracegen.model import FlowModel
from tracegen.render._env import text_env
from tracegen.render._report import build_report
from tracegen.render.puml import diagram_files

__all__ = ["md_text", "render_markdown"]

_TEMPLATE = "report.md.j2"
# Characters that start inline syntax anywhere (emphasis, code, links, HTML, strikethrough) or split a table cell;
# a backslash makes each literal. "(" and "!" need none once "[" is escaped: no link or image can form.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
# What is special only at the start of a line: headings, quotes, lists, ordered lists.
_MD_LEADING = re.compile(r"^([#>+\-=]|\d+(?=[.)]))")
_ENTITY = re.compile(r"&(?=#?\w+;)")
_WHITESPACE = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def render_markdown(model: FlowModel, *, svg_links: bool, env: jinja2.Environment | None = None) -> str:
    """The report for ``model`` as GFM Markdown.

    ``svg_links``: the diagrams were rendered, so embed ``diagrams/<name>.svg`` (linked to itself, for full size);
    otherwise link each diagram's ``.puml`` source. ``env`` is a text environment (``--templates DIR``).
    """
    # Every diagram is a file next to the report; the Markdown only links it, so its text is not needed here.
    files = {ref.stem: "" for ref in diagram_files(model)}
    report = build_report(model, {}, files)
    environment = (env if env is not None else text_env()).overlay()
    environment.filters["md"] = md_text
    text = environment.get_template(_TEMPLATE).render(report=report, svg_links=svg_links)
    return _BLANK_RUNS.sub("\n\n", text)


def md_text(value: object) -> str:
    """``value`` as literal inline Markdown text, on one line, safe in a GFM table cell.

    An ``&`` that would spell an entity becomes ``&amp;``; inline metacharacters get a backslash (CommonMark treats
    a backslash before ASCII punctuation as the literal character), and so does a leading ``#``, ``>``, ``-``,
    ``+``, ``=`` or list number, so a value at the start of a line cannot become a heading, quote or list.
    """
    text = "" if value is None else str(value)
    text = _WHITESPACE.sub(" ", text).strip()
    text = _ENTITY.sub("&amp;", text)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_LEADING.sub(r"\\\1", text)
