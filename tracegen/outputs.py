"""Write a model's artifacts into an output folder, atomically, and only what changed.

Artifacts: ``model.json``, ``diagrams/*.puml``, ``diagrams/*.svg`` (unless the renderer is ``none``),
``index.html`` and ``README.md``. Each file is written to a temporary name in the same folder and renamed over the
old one, so a reader (a web server, the sidecar's next write, a CI job) never sees half a file. A file whose bytes
would not change is not touched, so ``check --update`` on an unchanged architecture leaves no git diff, and
diagrams that no longer exist are removed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from tracegen.model import FlowModel
from tracegen.modeljson import dump_model

__all__ = ["OutputOptions", "WriteResult", "write_atomic", "write_outputs", "render_artifacts"]


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """How to render: ``renderer`` is ``plantuml``, ``none`` or ``("server", url)``; ``templates`` overrides."""

    renderer: Any = "plantuml"
    templates: str | None = None
    report: bool = True


@dataclass(slots=True)
class WriteResult:
    """Which files were written, left as they were, or removed."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask is process-wide and not thread-safe to query later (the sidecar writes from a
# thread). New files get the mode a plain open() would give them, not mkstemp's private 0600.
_NEW_FILE_MODE = 0o666 & ~_umask()


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` via a temp file + rename; False (and nothing touched) when already equal.

    The file keeps the mode it had, or gets the umask's default when new, so a report served by a web server or
    committed to a repository stays readable.
    """
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = _NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def render_artifacts(model: FlowModel, state: Mapping[str, Any] | None, out_dir: Path,
                     options: OutputOptions) -> dict[str, bytes]:
    """Every artifact's bytes, keyed by path relative to ``out_dir`` (renders SVGs with PlantUML)."""
    from tracegen.render._env import html_env, text_env
    from tracegen.render.puml import render_puml

    files: dict[str, bytes] = {"model.json": dump_model(model, state).encode("utf-8")}
    text = text_env(options.templates)
    pumls = render_puml(model, env=text, link_style="anchor")
    for rel, source in pumls.items():
        files[rel] = source.encode("utf-8")
    svgs: dict[str, str] = {}
    if options.renderer != "none" and pumls:
        svgs = _render_svgs(pumls, out_dir, options.renderer)
        for rel, svg in svgs.items():
            files[rel] = svg.encode("utf-8")
    if options.report:
        from tracegen.render.html import render_html

        names = {Path(rel).stem: svg for rel, svg in svgs.items()}
        sources = {Path(rel).stem: source for rel, source in pumls.items()}
        files["index.html"] = render_html(model, names, env=html_env(options.templates),
                                          puml_sources=sources).encode("utf-8")
        from tracegen.render.markdown import render_markdown

        files["README.md"] = render_markdown(model, svg_links=bool(svgs), env=text).encode("utf-8")
    return files


def _render_svgs(pumls: Mapping[str, str], out_dir: Path, renderer: Any) -> dict[str, str]:
    """Render the sources in a scratch folder (one JVM), returning ``{diagrams/x.svg: svg text}``."""
    from tracegen.render.svg import render_svgs

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tracegen-render-", dir=out_dir) as scratch:
        scratch_path = Path(scratch)
        paths = []
        for rel, source in pumls.items():
            path = scratch_path / Path(rel).name
            path.write_text(source, encoding="utf-8")
            paths.append(path)
        rendered = render_svgs(paths, scratch_path / "svg", renderer=renderer)
        out: dict[str, str] = {}
        for source_path, svg_path in rendered.items():
            rel = str(Path("diagrams") / (source_path.stem + ".svg"))
            out[rel] = svg_path.read_text(encoding="utf-8")
    return out


def write_outputs(files: Mapping[str, bytes], out_dir: Path) -> WriteResult:
    """Write artifacts atomically; remove stale diagrams; leave unchanged files untouched."""
    result = WriteResult()
    out_dir.mkdir(parents=True, exist_ok=True)
    for rel in sorted(files):
        if write_atomic(out_dir / rel, files[rel]):
            result.written.append(rel)
        else:
            result.unchanged.append(rel)
    diagrams = out_dir / "diagrams"
    if diagrams.is_dir():
        for path in sorted(diagrams.iterdir()):
            rel = str(Path("diagrams") / path.name)
            if path.suffix in (".puml", ".svg") and rel not in files:
                path.unlink()
                result.removed.append(rel)
    return result
