"""Packaging hygiene: the batch path imports no gRPC, and the wheel ships templates and the model schema."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def test_batch_conversion_never_imports_grpc(tmp_path: Path) -> None:
    """Running convert end to end leaves grpc out of sys.modules (the sidecar alone needs it)."""
    fixture = ROOT / "examples" / "traces" / "idealized" / "learner.jsonl"
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tracegen.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['convert', {str(fixture)!r}, '--out', {str(tmp_path / 'out')!r},"
        " '--renderer', 'none'])\n"
        "assert r.exit_code == 0, r.output\n"
        "bad = sorted(m for m in sys.modules if m == 'grpc' or m.startswith('grpc.'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_python_dash_m_tracegen_runs_the_cli() -> None:
    """`python -m tracegen --version` prints the package version."""
    from tracegen import __version__

    done = subprocess.run([sys.executable, "-m", "tracegen", "--version"], capture_output=True, text=True,
                          check=True)
    assert __version__ in done.stdout


def test_wheel_contains_templates_and_schema(tmp_path: Path) -> None:
    """The built wheel carries tracegen/templates/*.j2 and tracegen/model.schema.json."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("tracegen-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.name for p in (ROOT / "templates").glob("*.j2")}
    assert templates and {f"tracegen/templates/{name}" for name in templates} <= names
    assert "tracegen/model.schema.json" in names and "tracegen/py.typed" in names
