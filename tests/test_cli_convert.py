"""`tracegen convert` and `tracegen inspect` through the CLI: outputs, exit codes, errors, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracegen.cli import cli
from tracegen.config import load_config, parse_config
from tracegen.errors import ConfigError

from tests._world import BROWSER, Kind, World


def _write_traces(folder: Path) -> Path:
    w = World()
    root = w.span("lms", "GET /x", Kind.SERVER, 0, 50, attributes={"http.method": "GET", "http.route": "x",
                                                                    "http.user_agent": BROWSER})
    w.span("lms", "SELECT", Kind.CLIENT, 2, 9, parent=root,
           attributes={"db.system": "mysql", "db.name": "edxapp", "db.statement": "SELECT 1"})
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spans.binpb"
    path.write_bytes(encode_spans(w.exporter.get_finished_spans()).SerializeToString())
    return path


def test_convert_writes_model_diagrams_and_report(tmp_path: Path) -> None:
    """convert writes model.json, one .puml per scenario plus context/container, and index.html."""
    _write_traces(tmp_path / "in")
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--renderer", "none"], env={"SOURCE_DATE_EPOCH": "1798761600"})
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "out" / "model.json").read_text())
    assert model["generated_at"] == "2027-01-01T00:00:00Z"
    assert [s["id"] for s in model["scenarios"]] == ["lms-get-x"]
    assert (tmp_path / "out" / "diagrams" / "lms-get-x.puml").read_text().startswith("@startuml")
    assert (tmp_path / "out" / "index.html").is_file()
    assert "1 scenarios" in result.stderr


def test_convert_is_byte_identical_across_runs(tmp_path: Path) -> None:
    """Two runs over the same input with SOURCE_DATE_EPOCH give the same bytes and rewrite nothing."""
    _write_traces(tmp_path / "in")
    args = ["convert", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--renderer", "none"]
    env = {"SOURCE_DATE_EPOCH": "1798761600"}
    first = CliRunner().invoke(cli, args, env=env)
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    second = CliRunner().invoke(cli, args, env=env)
    after = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert first.exit_code == second.exit_code == 0
    assert before == after
    assert "0 written" in second.stderr


def test_invalid_input_exits_1_names_the_file_and_writes_nothing(tmp_path: Path) -> None:
    """A truncated protobuf file stops the run with exit 1, a message naming it, and no output folder."""
    path = _write_traces(tmp_path / "in")
    path.write_bytes(path.read_bytes()[:-7])
    result = CliRunner().invoke(cli, ["convert", str(path), "--out", str(tmp_path / "out"),
                                      "--renderer", "none"])
    assert result.exit_code == 1
    assert str(path) in result.stderr
    assert not (tmp_path / "out").exists()


def test_skip_invalid_goes_on_and_reports_what_was_skipped(tmp_path: Path) -> None:
    """--skip-invalid converts the readable files and reports the unreadable one."""
    _write_traces(tmp_path / "in")
    bad = tmp_path / "in" / "broken.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--renderer", "none", "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stderr and "broken.json" in result.stderr
    assert (tmp_path / "out" / "model.json").is_file()


def test_usage_error_exits_2(tmp_path: Path) -> None:
    """A missing required option is a usage error (exit 2)."""
    result = CliRunner().invoke(cli, ["convert", str(tmp_path)])
    assert result.exit_code == 2


def test_unknown_config_key_is_an_error_naming_key_and_file(tmp_path: Path) -> None:
    """A typo in tracegen.toml fails with exit 2, naming the key and the file."""
    _write_traces(tmp_path / "in")
    (tmp_path / "in" / "tracegen.toml").write_text('title = "X"\n[services.lms]\nnmae = "LMS"\n')
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--renderer", "none"])
    assert result.exit_code == 2
    assert "services.lms.nmae" in result.stderr and "tracegen.toml" in result.stderr


def test_config_next_to_inputs_names_systems_and_services(tmp_path: Path) -> None:
    """tracegen.toml beside the inputs is found and applied: display names, systems, title."""
    _write_traces(tmp_path / "in")
    (tmp_path / "in" / "tracegen.toml").write_text(
        'title = "Open edX"\n[systems.openedx]\nname = "Open edX"\n'
        '[services.lms]\nname = "LMS"\nsystem = "openedx"\ntechnology = "Django"\n')
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--renderer", "none"])
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "out" / "model.json").read_text())
    lms = next(e for e in model["elements"] if e["id"] == "lms")
    assert (lms["name"], lms["system"], lms["technology"]) == ("LMS", "openedx", "Django")
    assert model["title"] == "Open edX" and model["config_hash"]


def test_config_from_pyproject_tool_table(tmp_path: Path) -> None:
    """[tool.tracegen] in a pyproject.toml is read like a tracegen.toml."""
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n[tool.tracegen]\ntitle = "Shop"\n')
    assert load_config(path).title == "Shop"


@pytest.mark.parametrize("data, message", [
    ({"services": {"a": {"system": "nope"}}}, "services.a.system"),
    ({"scenarios": [{"title": "T"}]}, "scenarios[0].match"),
    ({"services": {"a": {"kind": "blob"}}}, "services.a.kind"),
    ({"noise": {"health_checks": "yes"}}, "noise.health_checks"),
    ({"scenarios": [{"title": "T", "match": [{"servic": "a"}]}]}, "scenarios[0].match[0].servic"),
])
def test_config_validation_names_the_field(data: dict, message: str) -> None:
    """Each invalid config names the offending field."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(data, source="t.toml")


def test_inspect_json_summarises_the_input(tmp_path: Path) -> None:
    """inspect --json reports spans, traces and services of the input."""
    _write_traces(tmp_path / "in")
    result = CliRunner().invoke(cli, ["inspect", "--json", str(tmp_path / "in")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["spans"] == 2 and summary["traces"] == 1


def test_outputs_are_readable_like_ordinary_files(tmp_path: Path) -> None:
    """Written artifacts get the umask's default mode (not a temp file's private 0600)."""
    import os
    import stat

    _write_traces(tmp_path / "in")
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--renderer", "none"])
    assert result.exit_code == 0, result.output
    mask = os.umask(0)
    os.umask(mask)
    mode = stat.S_IMODE((tmp_path / "out" / "model.json").stat().st_mode)
    assert mode == 0o666 & ~mask


def test_jobs_split_by_trace_id_give_the_same_bytes(tmp_path: Path) -> None:
    """convert --jobs 2 writes exactly what --jobs 1 writes (partial models merge exactly; links stitch)."""
    examples = str(Path(__file__).resolve().parents[1] / "examples" / "traces")
    env = {"SOURCE_DATE_EPOCH": "1798761600"}
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = CliRunner().invoke(cli, ["convert", examples, "--out", str(out), "--renderer", "none",
                                          "--jobs", jobs], env=env)
        assert result.exit_code == 0, result.output
        outputs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outputs[0] == outputs[1]


def test_jobs_report_input_errors_like_a_single_process(tmp_path: Path) -> None:
    """An unreadable file found by a worker stops the run with exit 1 and the file's name."""
    path = _write_traces(tmp_path / "in")
    path.write_bytes(path.read_bytes()[:-7])
    result = CliRunner().invoke(cli, ["convert", str(path), "--out", str(tmp_path / "out"), "--renderer",
                                      "none", "--jobs", "2"])
    assert result.exit_code == 1 and str(path) in result.stderr
    assert not (tmp_path / "out").exists()


def _malformed(kind: str, folder: Path) -> tuple[Path, str]:
    """A malformed input file of ``kind`` and a fragment its error message must contain."""
    good = _write_traces(folder)
    if kind == "truncated protobuf":
        good.write_bytes(good.read_bytes()[:-7])
        return good, str(good)
    good.unlink()
    path = folder / "bad.jsonl"
    span = '{"traceId": "5a000000000000000000000000000001", "spanId": "0000000000001001", "name": "x", "kind": 2}'
    lines = {
        "invalid JSON": '{"resourceSpans": [',
        "span without ids": '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "kind": 2}]}]}]}',
        "wrong types": '{"resourceSpans": [{"scopeSpans": [{"spans": [' + span.replace('"kind": 2', '"kind": []')
                       + ']}]}]}',
    }
    valid = '{"resourceSpans": [{"scopeSpans": [{"spans": [' + span + ']}]}]}'
    path.write_text(valid + "\n" + lines[kind] + "\n" + valid + "\n")
    return path, f"{path}:2"


@pytest.mark.parametrize("kind", ["truncated protobuf", "invalid JSON", "span without ids", "wrong types"])
def test_each_malformed_input_names_the_place_exits_1_and_writes_nothing(tmp_path: Path, kind: str) -> None:
    """Each kind of bad input stops convert with exit 1, names the file (and line), and writes no output."""
    path, where = _malformed(kind, tmp_path / "in")
    result = CliRunner().invoke(cli, ["convert", str(path), "--out", str(tmp_path / "out"), "--renderer", "none"])
    assert result.exit_code == 1, result.output
    assert where in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
