"""All escaping tracegen does for its text outputs lives here, so there is one place to audit.

Why it matters: span names, routes and attribute values are untrusted input. Inside a quoted C4-PlantUML macro
argument PlantUML still runs its preprocessor (``%date()`` is evaluated, ``$VAR`` substituted, a line starting
with ``!include`` reads a file) and its creole markup (``**b**``, ``<b>``, ``[[link]]``, ``&#65;``); a raw ``"``
ends the argument. :func:`puml_text` applies the mapping verified in ``reference/rendering.md`` so the rendered
SVG shows the original characters literally, and because newlines become the two characters ``\\n`` a label can
never start a preprocessor line of its own.

PlantUML aliases must be identifiers, so they are derived from element ids in exactly one place
(:class:`AliasAllocator`) and de-duplicated there. Link targets are built from ids by :func:`anchor_id` so the
diagrams and the HTML report agree on anchors. HTML escaping is Jinja's autoescape (see :mod:`._env`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Mapping

__all__ = [
    "AliasAllocator",
    "LINK_STYLES",
    "anchor_id",
    "puml_alias",
    "puml_link",
    "puml_text",
    "slug",
]

# One-character replacements (rendering.md, "Escaping text that comes from traces"). The order of application does
# not matter because puml_text makes a single pass over the input.
_CHAR_MAP: Mapping[str, str] = {
    # The tilde stops creole reading a pair of quotes as monospace markup (""x""), which a bare %chr(34) allows.
    '"': "~%chr(34)",
    "%": "%chr(37)",
    "$": "%chr(36)",
    # A backslash as a creole character reference: a doubled backslash is not safe (a doubled one followed by ``n`` breaks the line
    # in some places), and ``&#92;`` crashes PlantUML's entity decoder.
    "\\": "<U+005C>",
    "\n": "\\n",
    "~": "&#126;",
    # A tilde in front of these is consumed by creole and keeps the character literal. Not in front of
    # = ' > { } ^ | : PlantUML would print the tilde.
    "*": "~*",
    "/": "~/",
    "_": "~_",
    "-": "~-",
    "<": "~<",
    "[": "~[",
}
_ZWSP = "\u200b"
# A zero-width space goes between these characters and what follows them (see puml_text).
_BREAK_BEFORE: Mapping[str, str] = {"&": "#", "<": "U+", "\\": "t"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ALIAS_UNSAFE = re.compile(r"[^a-z0-9_]+")
_ANCHOR_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_LINK_SAFE = re.compile(r"^[A-Za-z0-9._#/-]*$")
_MAX_ALIAS = 48

LINK_STYLES = ("anchor", "file", "none")


def puml_text(value: object) -> str:
    """Text safe inside a double-quoted PlantUML macro argument that renders as exactly ``value``.

    Three sequences also get an invisible zero-width space, because PlantUML decodes them whatever precedes them:
    ``&#`` (a character reference), ``<U+`` (a creole code point; ``~<`` does not stop it) and backslash + ``t``
    (the decoded backslash and the ``t`` become a tab; every other backslash pair survives, checked against all
    ASCII letters, digits and punctuation). CR/LF and CR become one newline; tabs and other control characters
    (which XML cannot carry) become spaces.
    """
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _CONTROL.sub(" ", text)
    out: list[str] = []
    for position, char in enumerate(text):
        out.append(_CHAR_MAP.get(char, char))
        following = _BREAK_BEFORE.get(char)
        if following and text.startswith(following, position + 1):
            out.append(_ZWSP)
    return "".join(out)


def puml_alias(object_id: str, prefix: str = "e_") -> str:
    """A PlantUML identifier (``[a-z0-9_]``) readable from ``object_id``: ``lms-worker`` → ``e_lms_worker``.

    Why the prefix: a bare alias can collide with PlantUML keywords (an element called ``title`` breaks the
    diagram silently) and cannot start with a digit. Different ids may give the same alias (``my-db`` and
    ``my.db``); :class:`AliasAllocator` resolves that. Ids with nothing usable in them become
    ``<prefix><sha1[:12]>`` as rendering.md suggests.
    """
    base = _ALIAS_UNSAFE.sub("_", object_id.lower()).strip("_")[:_MAX_ALIAS].rstrip("_")
    if not base:
        base = hashlib.sha1(object_id.encode("utf-8")).hexdigest()[:12]
    return prefix + base


class AliasAllocator:
    """Gives every element id one unique PlantUML alias, the same one in every diagram of a run.

    Why a class: de-duplication depends on the whole set of ids, so it is computed once from all ids, sorted, so
    the result does not depend on the order elements appear in. A clash gets ``_2``, ``_3`` … in id order.
    """

    def __init__(self, element_ids: Iterable[str], *, prefix: str = "e_", reserved: Iterable[str] = ()) -> None:
        self._aliases: dict[str, str] = {}
        taken: set[str] = set(reserved)
        for element_id in sorted(set(element_ids)):
            alias = base = puml_alias(element_id, prefix)
            n = 2
            while alias in taken:
                alias = f"{base}_{n}"
                n += 1
            taken.add(alias)
            self._aliases[element_id] = alias

    def __call__(self, element_id: str) -> str:
        """The alias of ``element_id``; KeyError for an id the allocator was not built with."""
        return self._aliases[element_id]

    def __contains__(self, element_id: object) -> bool:
        return element_id in self._aliases

    def items(self) -> list[tuple[str, str]]:
        """``(id, alias)`` pairs sorted by id."""
        return sorted(self._aliases.items())


def slug(value: str) -> str:
    """``value`` lower-cased with runs outside ``[a-z0-9._-]`` turned into ``-``: safe in a URL fragment, a file
    name and a PlantUML ``$link``. Ids are already slugs, so this normally returns them unchanged."""
    return _ANCHOR_UNSAFE.sub("-", value.lower()).strip("-.") or "x"


def anchor_id(kind: str, object_id: str = "") -> str:
    """The HTML anchor of a diagram's section: ``context``, ``container-<system>``, ``scenario-<id>``.

    Shared with the report so links from diagrams land on its sections.
    """
    return f"{kind}-{slug(object_id)}" if object_id else kind


def puml_link(target: str) -> str:
    """``target`` checked to be a plain relative link, ready for ``$link="..."``.

    Links are built from ids by :mod:`tracegen.render.puml`, never from trace text; this guard keeps it that way.
    """
    if not _LINK_SAFE.match(target):
        raise ValueError(f"unsafe link target {target!r}")
    return target
