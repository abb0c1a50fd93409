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
@_skip
@_with(_render_opts)
@click.pass_obj
def convert(state: _State, inputs: tuple[str, ...], out_dir: str, config_path: str | None, skip_invalid: bool,
            renderer: str, server_url: str | None, templates: str | None) -> None:
    """Convert trace files into model.json, C4-PlantUML diagrams and the data-flow report."""
    from tracegen.outputs import OutputOptions, render_artifacts, write_outputs
    from tracegen.pipeline import finish_model, generated_at

    chosen = _renderer(renderer, server_url)
    try:
        config = _load_config(inputs, config_path)
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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="tracegen")
