"""The command line: the only place that knows click, the terminal and exit codes.

Exit codes: 0 ok; 1 input or processing error (and, for ``check``, drift); 2 usage, configuration, or — for
``check`` — a bad baseline or unreadable input. Domain errors carry their own code (:mod:`tracegen.errors`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, NoReturn, Sequence

import click

from tracegen.__about__ import __version__
from tracegen.errors import TracegenError

__all__ = ["main", "cli"]

logger = logging.getLogger("tracegen")


class _State:
    """Global options shared by every command."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity

    def say(self, message: str) -> None:
        """The one-line run summary (stderr), unless -q."""
        if self.verbosity >= 0:
            click.echo(message, err=True)


def _fail(error: TracegenError, code: int | None = None) -> NoReturn:
    click.echo(f"tracegen: error: {error}", err=True)
    sys.exit(error.exit_code if code is None else code)


def _progress(spans: Iterable, state: _State) -> Iterator:
    """Count spans through; on a terminal, show a running count so a long input is visibly alive."""
    if state.verbosity < 0 or not sys.stderr.isatty():
        yield from spans
        return
    count = 0
    last = time.monotonic()
    for span in spans:
        count += 1
        if count % 10000 == 0 and time.monotonic() - last > 0.25:
            last = time.monotonic()
            click.echo(f"\rreading… {count:,} spans", err=True, nl=False)
        yield span
    click.echo("\r" + " " * 40 + "\r", err=True, nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracegen")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """tracegen: OpenTelemetry traces in, C4 architecture documentation out."""
    verbosity = -1 if quiet else verbose
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else
                                         logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = _State(verbosity)


_inputs = click.argument("inputs", nargs=-1, required=True)
_skip = click.option("--skip-invalid", is_flag=True,
                     help="Skip unreadable records and files (reported) instead of stopping at the first.")


def _read(inputs: Sequence[str], skip_invalid: bool, state: _State):  # -> (Iterator[Span], IngestReport)
    from tracegen.ingest.files import IngestReport, read_spans

    report = IngestReport()
    return _progress(read_spans(inputs, skip_invalid=skip_invalid, report=report), state), report


def _report_skips(report, state: _State) -> None:
    for skipped in report.skipped:
        where = f"{skipped.source}:{skipped.line}" if skipped.line else skipped.source
        click.echo(f"tracegen: skipped {where}: {skipped.message}", err=True)
    for warning in report.warnings:
        click.echo(f"tracegen: warning: {warning}", err=True)


@cli.command()
@_inputs
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_skip
@click.pass_obj
def inspect(state: _State, inputs: tuple[str, ...], as_json: bool, skip_invalid: bool) -> None:
    """What is in a pile of trace files: spans, traces, services, kinds, conventions, orphans, links."""
    from tracegen.inspect import format_inspect_table, inspect_spans

    try:
        spans, report = _read(inputs, skip_invalid, state)
        summary = inspect_spans(spans, report)
    except TracegenError as error:
        _fail(error)
    _report_skips(report, state)
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        click.echo(format_inspect_table(summary, report), nl=False)
    state.say(f"tracegen: inspected {summary.get('spans', 0)} spans in {summary.get('traces', 0)} traces "
              f"from {len(report.files)} files")


def _renderer(value: str, server: str | None):  # -> str | tuple[str, str]
    if value == "server":
        if not server:
            raise click.UsageError("--renderer server needs --server-url URL")
        return ("server", server)
    return value


_render_opts = [
    click.option("--renderer", type=click.Choice(["plantuml", "server", "none"]), default="plantuml",
                 show_default=True, help="How diagrams become SVG: local PlantUML (one JVM), a self-hosted "
                 "PlantUML server, or not at all."),
    click.option("--server-url", default=None, help="The PlantUML server for --renderer server."),
    click.option("--templates", type=click.Path(file_okay=False, exists=True), default=None,
                 help="A folder of templates that override the built-in ones (branding)."),
]


def _with(options):
    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


def _load_config(inputs: Sequence[str], config_path: str | None):
    from tracegen.config import find_config, load_config

    return load_config(find_config(inputs, config_path))


def build_from_inputs(inputs: Sequence[str], config, skip_invalid: bool, state: _State):
    """Read, assemble and infer: ``(accumulator, ingest report)``."""
    from tracegen.pipeline import accumulate_spans

    spans, report = _read(inputs, skip_invalid, state)
    acc, _stats = accumulate_spans(spans, config)
    return acc, report


@cli.command()
@_inputs
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--config", "config_path", default=None, help="tracegen.toml (default: looked up, see README).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes; traces are split by trace id and the partial models merged exactly.")
@_skip
@_with(_render_opts)
@click.pass_obj
def convert(state: _State, inputs: tuple[str, ...], out_dir: str, config_path: str | None, jobs: int,
            skip_invalid: bool, renderer: str, server_url: str | None, templates: str | None) -> None:
    """Convert trace files into model.json, C4-PlantUML diagrams and the data-flow report."""
    from tracegen.outputs import OutputOptions, render_artifacts, write_outputs
    from tracegen.pipeline import finish_model, generated_at

    chosen = _renderer(renderer, server_url)
    try:
        config = _load_config(inputs, config_path)
        if jobs > 1 and "-" not in inputs:
            from tracegen.jobs import accumulate_in_parallel

            acc, report = accumulate_in_parallel(inputs, config, jobs=jobs, skip_invalid=skip_invalid)
        else:
            acc, report = build_from_inputs(inputs, config, skip_invalid, state)
        model = finish_model(acc, generated_at(os.environ, datetime.now(timezone.utc)))
        files = render_artifacts(model, acc.to_state(), Path(out_dir),
                                 OutputOptions(renderer=chosen, templates=templates))
        result = write_outputs(files, Path(out_dir))
    except TracegenError as error:
        _fail(error)
    _report_skips(report, state)
    diagrams = sum(1 for rel in files if rel.endswith(".puml"))
    state.say(f"tracegen: {report.spans} spans, {model.diagnostics.traces} traces → "
              f"{len(model.scenarios)} scenarios, {len(model.elements)} elements, {diagrams} diagrams in "
              f"{out_dir} ({len(result.written)} written, {len(result.unchanged)} unchanged)")


@cli.command()
@_inputs
@click.option("--baseline", "baseline_dir", required=True, type=click.Path(file_okay=False),
              help="The committed output folder holding model.json (what `convert --out` wrote).")
@click.option("--config", "config_path", default=None, help="tracegen.toml (default: looked up, as for convert).")
@click.option("--strict", is_flag=True, help="Also fail on step order and optional/required changes.")
@click.option("--min-count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ignore added or removed steps seen fewer than N times (sampled runs).")
@click.option("--require-all", is_flag=True, help="Baseline scenarios these traces did not exercise are drift.")
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True, help="Report on stdout: for people, a pull-request comment, or tools.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the result as JUnit XML (one testcase per scenario).")
@click.option("--update", is_flag=True,
              help="On drift, rewrite the baseline with exactly what convert writes; no drift leaves it untouched.")
@_skip
@_with(_render_opts)
@click.pass_obj
def check(state: _State, inputs: tuple[str, ...], baseline_dir: str, config_path: str | None, strict: bool,
          min_count: int, require_all: bool, output_format: str, junit_path: str | None, update: bool,
          skip_invalid: bool, renderer: str, server_url: str | None, templates: str | None) -> None:
    """Fail when the traces show another architecture than the committed baseline, and say exactly how.

    Exit codes: 0 no drift (or --update accepted it), 1 drift, 2 usage or input error (bad or missing baseline,
    unreadable traces, bad config, renderer failure on --update) — 1 means drift and nothing else.
    """
    from tracegen.check import compare_models, format_json, format_junit, format_markdown, format_text
    from tracegen.errors import BaselineError, InputError
    from tracegen.model import FlowModel
    from tracegen.modeljson import load_model_dict, model_from_dict
    from tracegen.outputs import OutputOptions, render_artifacts, write_atomic, write_outputs
    from tracegen.pipeline import finish_model, generated_at
    from tracegen.render._env import text_env
    from tracegen.render.puml import render_puml

    chosen = _renderer(renderer, server_url)
    baseline_path = Path(baseline_dir) / "model.json"
    try:
        try:
            text = baseline_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if not update:
                raise BaselineError(f"{baseline_path}: no baseline (create it with `tracegen check --update` or "
                                    f"`tracegen convert --out {baseline_dir}`)") from None
            baseline = FlowModel(systems=(), elements=(), scenarios=())
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(f"{baseline_path}: cannot read: {exc}") from exc
        else:
            baseline = model_from_dict(load_model_dict(text, str(baseline_path)))
        config = _load_config(inputs, config_path)
        acc, report = build_from_inputs(inputs, config, skip_invalid, state)
        if report.spans == 0:
            raise InputError(", ".join(inputs), "no spans read: nothing to check (did the tests emit traces?)")
        model = finish_model(acc, generated_at(os.environ, datetime.now(timezone.utc)))
        drift = compare_models(baseline, model, strict=strict, min_count=min_count, require_all=require_all)
        if output_format == "markdown":
            click.echo(format_markdown(drift, render_puml(model, env=text_env(templates), link_style="anchor")),
                       nl=False)
        elif output_format == "json":
            click.echo(format_json(drift), nl=False)
        else:
            click.echo(format_text(drift), nl=False)
        if junit_path:
            write_atomic(Path(junit_path), format_junit(drift).encode("utf-8"))
        result = None
        if update and (drift or not baseline_path.exists()):
            files = render_artifacts(model, acc.to_state(), Path(baseline_dir),
                                     OutputOptions(renderer=chosen, templates=templates))
            result = write_outputs(files, Path(baseline_dir))
    except TracegenError as error:
        _fail(error, 2)  # for check, 1 means drift: every error is 2
    except (KeyError, TypeError, ValueError) as error:  # a model.json with the right schema but broken content
        _fail(BaselineError(f"{baseline_path}: not a readable tracegen model ({type(error).__name__}: {error})"))
    _report_skips(report, state)
    if result is not None:
        if drift.not_exercised:
            click.echo(f"tracegen: warning: the updated baseline no longer has {len(drift.not_exercised)} "
                       f"scenario(s) these traces did not exercise: {', '.join(drift.not_exercised)}", err=True)
        state.say(f"tracegen: baseline {baseline_dir} updated ({len(result.written)} written, "
                  f"{len(result.removed)} removed, {len(result.unchanged)} unchanged)")
        sys.exit(0)
    sys.exit(1 if drift else 0)


def _serve_value(ctx: click.Context, param: str, settings: dict, key: str, default, convert=lambda v: v):
    """A serve setting: the flag when given, else ``[serve]`` in the config, else the default."""
    from click.core import ParameterSource

    if ctx.get_parameter_source(param) not in (ParameterSource.DEFAULT, None):
        return ctx.params[param]
    if key in settings:
        try:
            return convert(settings[key])
        except (TypeError, ValueError) as exc:
            raise click.UsageError(f"[serve] {key}: {settings[key]!r} is not valid ({exc})") from None
    return ctx.params[param] if ctx.params[param] is not None else default


def _address(value: str | None) -> str | None:
    """``HOST:PORT`` (``none`` or ``off`` disables the receiver)."""
    if value is None or value.strip().lower() in ("none", "off", ""):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise click.UsageError(f"{value!r} is not HOST:PORT")
    return value


@cli.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (model.json there is loaded on start, so a restart continues).")
@click.option("--grpc", "grpc_address", default=None, help="OTLP/gRPC HOST:PORT, or none. [default: 127.0.0.1:4317]")
@click.option("--http", "http_address", default=None, help="OTLP/HTTP HOST:PORT, or none. [default: 127.0.0.1:4318]")
@click.option("--config", "config_path", default=None, help="tracegen.toml ([serve] there sets these options).")
@click.option("--idle", type=click.FloatRange(min=0), default=None,
              help="Seconds a trace must be quiet before it is classified. [default: 5]")
@click.option("--write-interval", type=click.FloatRange(min=0), default=None,
              help="Seconds between rewrites of the outputs (only when something changed). [default: 30]")
@click.option("--max-spans", type=click.IntRange(min=1), default=None,
              help="Spans buffered at most; beyond, exporters are told to retry. [default: 500000]")
@click.option("--max-traces", type=click.IntRange(min=1), default=None,
              help="Open traces at most; beyond, the oldest is classified early. [default: 50000]")
@click.option("--max-message-bytes", type=click.IntRange(min=1), default=None,
              help="Largest request after decompression. [default: 64 MiB]")
@click.option("--producer-ttl", type=click.FloatRange(min=0), default=None,
              help="Seconds a producer span is remembered for late continuations. [default: 21600]")
@click.option("--window", type=click.FloatRange(min=0), default=None,
              help="Leave out of the rendered model what was not seen for this many seconds (0: keep all).")
@click.option("--token", default=None, envvar="TRACEGEN_TOKEN",
              help="Require 'authorization: Bearer TOKEN' on both receivers (env TRACEGEN_TOKEN).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), default=None, help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), default=None, help="TLS private key (PEM).")
@_with(_render_opts)
@click.pass_context
def serve(ctx: click.Context, out_dir: str, grpc_address: str | None, http_address: str | None,
          config_path: str | None, idle: float | None, write_interval: float | None, max_spans: int | None,
          max_traces: int | None, max_message_bytes: int | None, producer_ttl: float | None,
          window: float | None, token: str | None, tls_cert: str | None, tls_key: str | None, renderer: str,
          server_url: str | None, templates: str | None) -> None:
    """Run as an OTLP receiver (gRPC and HTTP) that keeps the model, diagrams and report in --out current.

    Stops cleanly on SIGTERM or SIGINT: stops accepting, classifies every buffered span, writes, exits 0.
    """
    import signal
    import threading

    from tracegen.config import find_config
    from tracegen.outputs import OutputOptions
    from tracegen.receiver.sidecar import Sidecar, SidecarOptions, load_serve_config

    state: _State = ctx.obj
    try:
        config, settings = load_serve_config(find_config([], config_path))
    except TracegenError as error:
        _fail(error)
    value = lambda param, key, default, conv=lambda v: v: _serve_value(ctx, param, settings, key, default, conv)  # noqa: E731
    cert, key = value("tls_cert", "tls_cert", None, str), value("tls_key", "tls_key", None, str)
    if bool(cert) != bool(key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    chosen = _renderer(value("renderer", "renderer", "plantuml", str), server_url)
    options = SidecarOptions(
        out_dir=Path(out_dir),
        grpc=_address(value("grpc_address", "grpc", "127.0.0.1:4317", str)),
        http=_address(value("http_address", "http", "127.0.0.1:4318", str)),
        idle_seconds=value("idle", "idle", 5.0, float),
        write_interval=value("write_interval", "write_interval", 30.0, float),
        max_spans=value("max_spans", "max_spans", 500_000, int),
        max_traces=value("max_traces", "max_traces", 50_000, int),
        max_message_bytes=value("max_message_bytes", "max_message_bytes", 64 * 1024 * 1024, int),
        producer_ttl=value("producer_ttl", "producer_ttl", 6 * 3600.0, float),
        max_producers=int(settings.get("max_producers", 1_000_000)),
        max_continuations=int(settings.get("max_continuations", 10_000)),
        window=value("window", "window", 0.0, float),
        retry_after=float(settings.get("retry_after", 1.0)),
        token=value("token", "token", None, str) or None,
        tls_cert=cert, tls_key=key,
        output=OutputOptions(renderer=chosen, templates=templates))
    if not options.grpc and not options.http:
        raise click.UsageError("both receivers are off: give --grpc or --http an address")
    try:
        sidecar = Sidecar(config, options)
        sidecar.start()
    except TracegenError as error:
        _fail(error)
    except OSError as error:
        _fail(TracegenError(f"cannot listen: {error}"))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheme = "with TLS" if cert else "plaintext"
    if sidecar.grpc_receiver is not None:
        click.echo(f"tracegen: OTLP/gRPC listening on {sidecar.grpc_receiver.address} ({scheme})")
    if sidecar.http_receiver is not None:
        click.echo(f"tracegen: OTLP/HTTP listening on {sidecar.http_receiver.url} "
                   f"(health /healthz /readyz, metrics /metrics)")
    click.echo(f"tracegen: writing {Path(out_dir) / 'model.json'} and diagrams every "
               f"{options.write_interval:g}s when changed (renderer {renderer}); SIGTERM to stop")
    try:
        sidecar.run(stop, tick=min(0.5, max(0.05, options.idle_seconds / 4)))
    except TracegenError as error:
        _fail(error)
    state.say(f"tracegen: stopped; {sidecar.acc.counters.get('traces', 0)} traces in {out_dir}")


@cli.command("merge")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--config", "config_path", default=None, help="tracegen.toml (default: looked up, see README).")
@_with(_render_opts)
@click.pass_obj
def merge_command(state: _State, models: tuple[str, ...], out_dir: str, config_path: str | None, renderer: str,
                  server_url: str | None, templates: str | None) -> None:
    """Merge model.json files (sidecar shards, separate runs) into one model, diagrams and report."""
    from tracegen.errors import BaselineError
    from tracegen.merge import merge_models
    from tracegen.modeljson import load_model_dict
    from tracegen.outputs import OutputOptions, render_artifacts, write_outputs
    from tracegen.pipeline import GENERATOR, generated_at
    from tracegen.receiver.sidecar import load_serve_config

    chosen = _renderer(renderer, server_url)
    try:
        config, _settings = load_serve_config(_find_merge_config(config_path))
        docs = []
        for path in models:
            try:
                docs.append(load_model_dict(Path(path).read_text(encoding="utf-8"), path))
            except (OSError, UnicodeDecodeError) as exc:
                raise BaselineError(f"{path}: cannot read: {exc}") from exc
        model, merged = merge_models(docs, config, generator=GENERATOR,
                                     generated_at=generated_at(os.environ, datetime.now(timezone.utc)))
        files = render_artifacts(model, merged, Path(out_dir), OutputOptions(renderer=chosen, templates=templates))
        result = write_outputs(files, Path(out_dir))
    except TracegenError as error:
        _fail(error)
    state.say(f"tracegen: merged {len(models)} models → {model.diagnostics.traces} traces, "
              f"{len(model.scenarios)} scenarios in {out_dir} ({len(result.written)} written, "
              f"{len(result.unchanged)} unchanged)")


def _find_merge_config(config_path: str | None):  # -> Path | None
    from tracegen.config import find_config

    return find_config([], config_path)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="tracegen")
