"""The two Jinja2 environments tracegen renders with: one for text (PlantUML, Markdown), one for HTML.

Why two: PlantUML and Markdown must not be HTML-escaped (their escaping is :mod:`._filters`' job), while every value
in the HTML report must be. ``select_autoescape`` looks at the *last* suffix only, so ``report.html.j2`` would not
be autoescaped by the usual ``("html",)``; the HTML environment therefore lists ``html.j2`` explicitly.

Templates are looked up in this order: a user's override directory (``--templates DIR``, so a team can brand the
report), the package's ``tracegen/templates`` (the wheel force-includes the checkout's ``templates/`` there), and
the checkout's top-level ``templates/`` (an editable install has no copy inside the package).
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from tracegen.render import _filters

__all__ = ["template_dirs", "text_env", "html_env"]

_PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_CHECKOUT_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


def template_dirs(override: str | Path | None = None) -> list[Path]:
    """The directories searched for templates, first match wins; missing built-in ones are skipped."""
    dirs: list[Path] = []
    if override is not None:
        dirs.append(Path(override))
    dirs.extend(d for d in (_PACKAGE_TEMPLATES, _CHECKOUT_TEMPLATES) if d.is_dir())
    return dirs


def _loader(override: str | Path | None) -> jinja2.BaseLoader:
    return jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(d)) for d in template_dirs(override)])


def _add_filters(env: jinja2.Environment) -> jinja2.Environment:
    env.filters["puml"] = _filters.puml_text
    env.filters["puml_link"] = _filters.puml_link
    env.filters["anchor"] = _filters.anchor_id
    return env


def text_env(override: str | Path | None = None) -> jinja2.Environment:
    """Environment for PlantUML and Markdown: no autoescape, undefined names fail, trailing newline kept."""
    env = jinja2.Environment(
        loader=_loader(override),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return _add_filters(env)


def html_env(override: str | Path | None = None) -> jinja2.Environment:
    """Environment for the HTML report: autoescape on for ``*.html.j2`` and ``*.html``, undefined names fail."""
    env = jinja2.Environment(
        loader=_loader(override),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "html", "htm", "xml"),
            disabled_extensions=(),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return _add_filters(env)
