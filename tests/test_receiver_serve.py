"""`tracegen serve` as a real process: prints where it listens, and SIGTERM mid-stream loses no acknowledged span."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tracegen.modeljson import load_model_dict

from tests._receiver import comparable, mixed_traces, post
from tests._world import World, model_of


def _start(out: Path, *extra: str) -> tuple[subprocess.Popen, str, str]:
    """Start `tracegen serve` on free ports; return the process, the gRPC address and the HTTP URL it printed."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1800000000"}
    proc = subprocess.Popen([sys.executable, "-m", "tracegen", "serve", "--out", str(out), "--grpc", "127.0.0.1:0",
                             "--http", "127.0.0.1:0", "--renderer", "none", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("tracegen: writing"):
            break
    text = "".join(lines)
    grpc_match = re.search(r"OTLP/gRPC listening on (\S+)", text)
    http_match = re.search(r"OTLP/HTTP listening on (\S+)", text)
    assert grpc_match and http_match, text + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    assert str(out / "model.json") in text
    return proc, grpc_match.group(1), http_match.group(1)


def test_sigterm_mid_stream_keeps_every_acknowledged_span(tmp_path: Path) -> None:
    """Traces stream in while SIGTERM arrives: exit 0, and model.json is convert's model of exactly the acked traces."""
    world = World()
    mixed_traces(world, runs=150)
    by_trace: dict[int, list] = {}
    for span in world.exporter.get_finished_spans():
        by_trace.setdefault(span.context.trace_id, []).append(span)
    batches = [encode_spans(spans).SerializeToString() for spans in by_trace.values()]
    out = tmp_path / "out"
    proc, _grpc, url = _start(out, "--idle", "3600", "--write-interval", "3600")
    acked: list[int] = []
    some_acked = threading.Event()
    signalled = threading.Event()
    trace_ids = list(by_trace)

    def send() -> None:
        for index, body in enumerate(batches):
            try:
                status, _, _ = post(url, body, "application/x-protobuf")
            except (urllib.error.URLError, ConnectionError, OSError):
                break
            if status != 200:
                break
            acked.append(trace_ids[index])
            if len(acked) == 20:
                some_acked.set()
                signalled.wait(30)  # the stream goes on only once SIGTERM is on its way: it lands mid-stream
        some_acked.set()

    sender = threading.Thread(target=send)
    sender.start()
    assert some_acked.wait(30)
    proc.send_signal(signal.SIGTERM)
    signalled.set()
    sender.join(30)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert len(acked) >= 20
    doc = load_model_dict((out / "model.json").read_text(encoding="utf-8"), "model.json")
    acked_ids = {f"{t:032x}" for t in acked}
    expected = model_of([s for s in world.spans() if s.trace_id in acked_ids])
    assert comparable(doc) == comparable(expected)
    assert doc["diagnostics"]["traces"] == len(acked)


def test_serve_resumes_after_a_restart(tmp_path: Path) -> None:
    """A second `tracegen serve` on the same --out continues from the first one's model.json."""
    first, second = World(), World()
    second.ids = first.ids
    mixed_traces(first, runs=1)
    mixed_traces(second, runs=1, base_ms=50_000_000)
    out = tmp_path / "out"
    for world in (first, second):
        proc, _grpc, url = _start(out, "--idle", "3600")
        body = encode_spans(world.exporter.get_finished_spans()).SerializeToString()
        assert post(url, body, "application/x-protobuf")[0] == 200
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
    doc = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert comparable(doc) == comparable(model_of(first.spans() + second.spans()))
