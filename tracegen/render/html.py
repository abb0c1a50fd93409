"""The data-flow report as one self-contained HTML page (``DIR/index.html``).

Why one file with everything inline: the report is opened from disk, mailed around, attached to reviews, and span
names may be confidential, so it must load nothing from anywhere — no fonts, no CDN, no script we did not write.
The diagrams are the SVGs PlantUML rendered, inlined after :func:`inline_svg` makes them safe to share one page:

- PlantUML numbers its ids per diagram (``elem_lms``, ``link_a_b``, filter ids), so two inlined diagrams collide;
  every id and every reference to it (``url(#…)``, ``href="#…"``) gets a per-diagram prefix. A ``href="#…"`` that
  names no id of the diagram is a drill-down link to a section of this page and is left alone.
- the fixed ``width``/``height`` go, ``preserveAspectRatio`` is set, so the diagram scales with the page and the
  pan/zoom script (``templates/_report.js.j2``, ours, ~40 lines) can work on the ``viewBox``;
- defence in depth: ``<script>``/``<foreignObject>`` elements, ``on*`` attributes and ``javascript:`` links are
  removed even though PlantUML does not write them for our escaped labels.

Escaping: every model value reaches the page through Jinja's autoescape; the only ``|safe`` output is the SVG after
:func:`inline_svg` and our own CSS/JS (which are template source, not values). With no SVGs (``--renderer none``)
each diagram's PlantUML source is shown in a ``<pre>`` and the page says the diagrams were not rendered.
"""

from __future__ import annotations

import re
from typing import Mapping

import jinja2

from tracegen.model import FlowModel
from tracegen.render._env import html_env
from tracegen.render._filters import slug
from tracegen.render._report import build_report

__all__ = ["inline_svg", "render_html"]

_TEMPLATE = "report.html.j2"

_PROLOGUE = re.compile(r"<\?.*?\?>|<!DOCTYPE[^>]*>|<!--.*?-->", re.DOTALL | re.IGNORECASE)
_DANGEROUS_ELEMENTS = re.compile(r"<(script|foreignObject)\b.*?</\1\s*>|<(script|foreignObject)\b[^>]*/>",
                                 re.DOTALL | re.IGNORECASE)
_EVENT_ATTRS = re.compile(r"\s+on[a-z]+\s*=\s*(\"[^\"]*\"|'[^']*')", re.IGNORECASE)
_JS_LINK = re.compile(r"\s(?:xlink:)?href\s*=\s*(\"\s*javascript:[^\"]*\"|'\s*javascript:[^']*')", re.IGNORECASE)
_ID = re.compile(r"\bid=\"([^\"]+)\"")
_ID_REF = re.compile(r"(url\(\s*#|(?:xlink:)?href=\"#)([^\")\s]+)")
_ROOT = re.compile(r"<svg\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"([\w:-]+)\s*=\s*\"([^\"]*)\"")


def render_html(
    model: FlowModel,
    svgs: Mapping[str, str],
    *,
    env: jinja2.Environment | None = None,
    puml_sources: Mapping[str, str],
) -> str:
    """The report page for ``model``.

    ``svgs`` maps a diagram's name (``context``, ``container-<system>``, ``<scenario-id>``; ``diagrams/x.svg``
    paths work too) to its SVG text, and may be empty when the renderer is ``none``; ``puml_sources`` maps the same
    names to PlantUML sources, shown for any diagram without an SVG. ``env`` is an HTML environment from
    :func:`tracegen.render._env.html_env` (pass one built with ``--templates DIR`` to brand the report).
    """
    report = build_report(model, svgs, puml_sources)
    prepared: dict[str, str] = {}
    diagrams = ([report.context] if report.context else []) + list(report.containers)
    diagrams += [scenario.diagram for scenario in report.scenarios]
    for number, diagram in enumerate(diagrams, start=1):
        if diagram.svg:
            prepared[diagram.name] = inline_svg(
                diagram.svg, prefix=f"d{number}-", labelledby=f"{diagram.anchor}-title"
            )
    environment = env if env is not None else html_env()
    template = environment.get_template(_TEMPLATE)
    return template.render(report=report, svg=prepared)


def inline_svg(svg: str, *, prefix: str, labelledby: str = "") -> str:
    """``svg`` (a whole SVG document) ready to inline in an HTML page next to other diagrams.

    Ids and their references get ``prefix``; the root loses its fixed size and gets ``preserveAspectRatio``,
    ``role="img"``, ``aria-labelledby`` (the id of the caption naming it; an anchor id, so no escaping is needed)
    and the ``c4`` class the pan/zoom script looks for.
    """
    text = _PROLOGUE.sub("", svg).strip()
    text = _DANGEROUS_ELEMENTS.sub("", text)
    text = _EVENT_ATTRS.sub("", text)
    text = _JS_LINK.sub("", text)
    ids = set(_ID.findall(text))
    text = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = _ID_REF.sub(lambda m: m.group(1) + (prefix + m.group(2) if m.group(2) in ids else m.group(2)), text)
    root = _ROOT.search(text)
    if root is None:
        raise ValueError("not an SVG document: no <svg> element")
    return text[: root.start()] + _root_tag(root.group(0), labelledby) + text[root.end():]


def _root_tag(tag: str, labelledby: str) -> str:
    """The ``<svg>`` start tag without fixed size, scaled by its viewBox."""
    attrs = dict(_ATTR.findall(tag))
    width, height = attrs.pop("width", ""), attrs.pop("height", "")
    if "viewBox" not in attrs and width and height:
        attrs["viewBox"] = f"0 0 {_number(width)} {_number(height)}"
    style = ";".join(
        part for part in attrs.pop("style", "").split(";")
        if part.strip() and part.split(":", 1)[0].strip().lower() not in ("width", "height")
    )
    view_box = attrs.get("viewBox", "").replace(",", " ").split()
    if len(view_box) == 4:
        # Never blown up past 1.25x its natural size: a three-box context diagram stays a three-box diagram.
        style = ";".join(filter(None, (style, f"max-width:{float(view_box[2]) * 1.25:.0f}px")))
    if style:
        attrs["style"] = style
    for key in ("preserveAspectRatio", "zoomAndPan", "class", "role", "aria-label", "aria-labelledby"):
        attrs.pop(key, None)
    attrs["preserveAspectRatio"] = "xMidYMid meet"
    attrs["class"] = "c4"
    attrs["role"] = "img"
    if labelledby:
        attrs["aria-labelledby"] = slug(labelledby)
    rendered = " ".join(f'{key}="{value}"' for key, value in attrs.items())
    return f"<svg {rendered}>"


def _number(length: str) -> str:
    return re.sub(r"[^0-9.]", "", length) or "0"
