"""`tracegen check` in a git repository the way CI runs it: a separate process, a committed baseline, real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests._check_world import build, write_pb

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

ENV = {"SOURCE_DATE_EPOCH": "1798761600", "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid",
       "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.invalid", "GIT_CONFIG_NOSYSTEM": "1"}


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **ENV, "HOME": str(home), **extra}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env=_env(repo.parent), check=True, capture_output=True,
                          text=True)
    return done.stdout


def _tracegen(repo: Path, *args: str, epoch: str = "1798761600") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracegen", *args], cwd=repo,
                          env=_env(repo.parent, SOURCE_DATE_EPOCH=epoch), capture_output=True, text=True)


def test_ci_flow_fails_on_drift_then_update_and_commit_make_it_pass(tmp_path: Path) -> None:
    """Commit a baseline, change the traces: check exits 1; --update, commit: check exits 0 and git is clean."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    write_pb(repo / "traces" / "integration.binpb", build())
    made = _tracegen(repo, "convert", "traces", "--out", "docs/architecture", "--renderer", "none")
    assert made.returncode == 0, made.stderr
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "baseline")

    unchanged = _tracegen(repo, "check", "--baseline", "docs/architecture", "--update", "--renderer", "none",
                          "traces", epoch="1798848000")
    assert unchanged.returncode == 0, unchanged.stderr
    assert _git(repo, "status", "--porcelain") == ""

    write_pb(repo / "traces" / "integration.binpb", build(*("new-call",) * 3))
    junit = repo / "reports" / "tracegen.xml"
    drift = _tracegen(repo, "check", "--baseline", "docs/architecture", "--format", "markdown", "--junit",
                      str(junit), "--renderer", "none", "traces")
    assert drift.returncode == 1, drift.stderr
    comment = drift.stdout
    assert comment.startswith("## tracegen: architecture drift\n")
    assert "```diff\n+ step 4 lms → discovery \"GET /api/v1/courses\" (sync, HTTPS)\n```" in comment
    assert "+ element discovery \"discovery\" (container, Django)" in comment
    assert "```plantuml\n@startuml" in comment and "discovery" in comment.split("```plantuml")[1]
    suite = ET.parse(junit).getroot().find("testsuite")
    failures = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert suite.get("failures") == "2"
    assert failures["lms-get-courses-course-id"] is not None
    assert "+ step 4 lms → discovery" in failures["lms-get-courses-course-id"].text
    assert failures["cms-post-publish"] is None
    shutil.rmtree(repo / "reports")

    updated = _tracegen(repo, "check", "--baseline", "docs/architecture", "--update", "--renderer", "none",
                        "traces")
    assert updated.returncode == 0, updated.stderr
    changed = _git(repo, "status", "--porcelain").splitlines()
    assert " M docs/architecture/model.json" in changed and " M traces/integration.binpb" in changed
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "accept: lms asks discovery for courses")

    again = _tracegen(repo, "check", "--baseline", "docs/architecture", "--renderer", "none", "traces",
                      epoch="1798934400")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout == "tracegen check: no drift (2 scenarios compared)\n"
    assert _git(repo, "status", "--porcelain") == ""
