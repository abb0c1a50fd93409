"""Reading trace files: inputs (files, directories, ``-``) to a stream of :class:`Span` records.

This is the one ingest module that does I/O. The format is sniffed from the content, never only from the name,
because real pipelines name files whatever they like (``traces.json`` that is JSON lines, ``.otlp`` that is
length-prefixed, rotated files with no extension at all):

1. compression by magic bytes: gzip ``1f 8b``, zstd ``28 b5 2f fd`` (whole-file forms);
2. JSON when the first non-blank byte is ``{`` or ``[`` and the first 4 KiB hold no control bytes (a protobuf
   request may start ``0a 7b``, but its tags and lengths put control bytes right after): JSON lines (the Collector
   file exporter) when the first line is a JSON document on its own, else one JSON document per file;
3. otherwise protobuf: a first byte ``00`` means the Collector file exporter's length-prefixed form (no protobuf
   message starts with field 0; a 4-byte big-endian length starts with ``00`` for any frame under 16 MiB); each
   frame may itself be zstd-compressed (the exporter's per-message compression) and hold protobuf or JSON;
   anything else is one ``ExportTraceServiceRequest`` per file.

Rules:
- directories are walked recursively in sorted order, hidden entries skipped, and only files whose extension
  says "traces" are read (``.json .jsonl .ndjson .pb .binpb .otlp .bin .protobuf``, optionally ``.gz``/``.zst``):
  a docs folder full of Markdown and configs must not fail a run. A file named explicitly is always read;
- a truncated *last* record (a file still being written: a JSON line without its newline, a cut length-prefixed
  frame, a compressed stream that stops early after complete records) is a warning in the :class:`IngestReport`
  and skipped, never fatal;
- any other bad record raises :class:`InputError` naming the file (and the line for JSON lines), unless
  ``skip_invalid`` is set: then it is recorded in the report and reading goes on;
- Jaeger and Zipkin files are refused with :class:`UnsupportedFormatError` (skipped as a whole file when
  ``skip_invalid`` is set);
- streams are read record by record (JSON lines, frames), so memory does not grow with the file size, except for
  single-document files, which must be parsed whole.
"""

from __future__ import annotations

import gzip
import io
import itertools
import logging
import os
import sys
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, Sequence

import orjson
import zstandard

from tracegen.errors import InputError, UnsupportedFormatError
from tracegen.ingest.otlp_json import decode_otlp_json, json_error
from tracegen.ingest.otlp_proto import decode_otlp_proto
from tracegen.spans import Span

__all__ = ["IngestReport", "SkippedRecord", "read_spans", "TRACE_FILE_SUFFIXES"]

logger = logging.getLogger(__name__)

STDIN = "-"
_STDIN_NAME = "<stdin>"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITESPACE = b" \t\r\n"
_SNIFF_BYTES = 1 << 12
# Bytes that may appear in JSON text. Protobuf always has control bytes (tags, lengths) in its first few bytes, so
# "starts with { and has none" tells JSON from a request that happens to start 0a 7b (field 1, length 123).
_TEXT_BYTES = bytes([9, 10, 13, *range(32, 256)])

TRACE_FILE_SUFFIXES: frozenset[str] = frozenset(
    {".json", ".jsonl", ".ndjson", ".pb", ".binpb", ".otlp", ".bin", ".protobuf"}
)
_COMPRESSION_SUFFIXES = frozenset({".gz", ".gzip", ".zst", ".zstd"})


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record (or whole file) that could not be read and was skipped; ``line`` for JSON lines."""

    source: str
    line: int | None
    message: str


@dataclass(slots=True)
class IngestReport:
    """What reading did: files and formats, spans per file, skipped records, warnings. Filled while iterating."""

    files: list[str] = field(default_factory=list)
    spans_per_file: dict[str, int] = field(default_factory=dict)
    format_per_file: dict[str, str] = field(default_factory=dict)
    skipped: list[SkippedRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)

    @property
    def spans(self) -> int:
        """Spans read over all files."""
        return sum(self.spans_per_file.values())


def read_spans(
    inputs: Sequence[str], *, skip_invalid: bool = False, report: IngestReport | None = None
) -> Iterator[Span]:
    """Yield every span of ``inputs`` (files, directories, ``-`` for stdin), in input order, record by record.

    Raises :class:`InputError` for a missing input and, unless ``skip_invalid``, for the first bad record.
    """
    report = report if report is not None else IngestReport()
    for path in _expand_inputs(inputs, report):
        yield from _FileReader(path, report, skip_invalid).spans()


# --------------------------------------------------------------------------------------------------- inputs


def _is_trace_file_name(name: str) -> bool:
    base, ext = os.path.splitext(name.lower())
    if ext in _COMPRESSION_SUFFIXES:
        ext = os.path.splitext(base)[1] or ".json"  # "traces.gz": the content decides
    return ext in TRACE_FILE_SUFFIXES


def _expand_inputs(inputs: Sequence[str], report: IngestReport) -> Iterator[str]:
    for item in inputs:
        if item == STDIN:
            yield STDIN
        elif os.path.isdir(item):
            for root, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    path = os.path.join(root, name)
                    if name.startswith(".") or not _is_trace_file_name(name):
                        report.ignored_files.append(path)
                        logger.debug("ignoring %s: not a trace file extension", path)
                        continue
                    yield path
        elif os.path.exists(item):
            yield item
        else:
            raise InputError(item, "no such file or directory")


# --------------------------------------------------------------------------------------------------- streams


class _Prepend(io.RawIOBase):
    """A raw stream that replays already-read bytes before the rest: sniffing without seeking (stdin, gzip)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        read1 = getattr(self._rest, "read1", None)
        data = read1(len(buffer)) if read1 is not None else self._rest.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def _buffered(head: bytes, rest: BinaryIO) -> io.BufferedReader:
    return io.BufferedReader(_Prepend(head, rest), buffer_size=1 << 16)


class _Decompressed(io.RawIOBase):
    """A decompressing stream whose early end (a file still being written) reads as end of file, remembered.

    Why: a buffered ``read(n)`` that meets a truncated gzip stream raises and drops the data it already
    decompressed; reading with ``read1`` and turning the error into EOF keeps every complete record before the cut.
    """

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self.truncated: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if self.truncated is not None:
            return 0
        try:
            data = self._inner.read1(len(buffer))  # type: ignore[attr-defined]
        except (EOFError, zstandard.ZstdError, zlib.error, gzip.BadGzipFile) as exc:
            self.truncated = str(exc) or type(exc).__name__
            return 0
        n = len(data)
        buffer[:n] = data
        return n


class _ZstdFrames:
    """Decompresses concatenated zstd frames with ``read1``, raising ``EOFError`` when the input stops mid-frame.

    Why not ``stream_reader``: it reports a cut frame as a clean end of file, so a truncated file would look empty.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self._in_frame = False
        self._pending = b""

    def read1(self, size: int = -1) -> bytes:
        while not self._pending:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd stream ended in the middle of a frame")
                return b""
            while chunk:
                self._in_frame = True
                self._pending += self._dobj.decompress(chunk)
                if not self._dobj.eof:
                    break
                chunk = self._dobj.unused_data
                self._in_frame = False
                self._dobj = zstandard.ZstdDecompressor().decompressobj()
        if size < 0 or size >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data


# --------------------------------------------------------------------------------------------------- one file


class _FileReader:
    """Reads one file: sniffs compression and format, then yields its spans record by record."""

    def __init__(self, path: str, report: IngestReport, skip_invalid: bool) -> None:
        self.path = path
        self.source = _STDIN_NAME if path == STDIN else path
        self.report = report
        self.skip_invalid = skip_invalid
        self.count = 0
        self.decompressed: _Decompressed | None = None

    def spans(self) -> Iterator[Span]:
        report = self.report
        report.files.append(self.source)
        report.spans_per_file[self.source] = 0
        try:
            if self.path == STDIN:
                yield from self._spans_from(sys.stdin.buffer)
            else:
                try:
                    handle = open(self.path, "rb")
                except OSError as exc:
                    raise InputError(self.source, f"cannot read: {exc.strerror or exc}") from None
                with handle:
                    yield from self._spans_from(handle)
        except InputError as exc:  # a whole file unreadable (or refused: Jaeger, Zipkin)
            if not self.skip_invalid:
                raise
            self._skip(exc)
        finally:
            report.spans_per_file[self.source] = self.count

    # -- helpers -------------------------------------------------------------------------------------------------

    def _skip(self, exc: InputError) -> None:
        self.report.skipped.append(SkippedRecord(self.source, exc.line, exc.detail))
        logger.info("skipped: %s", exc)

    def _warn(self, message: str) -> None:
        text = f"{self.source}: {message}"
        self.report.warnings.append(text)
        logger.info("%s", text)

    def _emit(self, spans: list[Span]) -> Iterator[Span]:
        self.count += len(spans)
        self.report.spans_per_file[self.source] = self.count
        yield from spans

    def _record(self, decode, *args) -> list[Span]:  # type: ignore[no-untyped-def]
        """Decode one record; with ``skip_invalid`` a bad record is recorded and gives no spans."""
        try:
            return decode(*args)
        except UnsupportedFormatError:
            raise
        except InputError as exc:
            if not self.skip_invalid:
                raise
            self._skip(exc)
            return []

    # -- sniffing --------------------------------------------------------------------------------------------------

    def _spans_from(self, raw: BinaryIO) -> Iterator[Span]:
        head = raw.read(4)
        compression = ""
        self.decompressed = None
        stream: BinaryIO
        if head[:2] == _GZIP_MAGIC:
            compression = "+gzip"
            gzip_file = gzip.GzipFile(fileobj=_buffered(head, raw), mode="rb")
            self.decompressed = _Decompressed(gzip_file)  # type: ignore[arg-type]
        elif head[:4] == _ZSTD_MAGIC:
            compression = "+zstd"
            self.decompressed = _Decompressed(_ZstdFrames(_buffered(head, raw)))  # type: ignore[arg-type]
        stream = (
            io.BufferedReader(self.decompressed, buffer_size=1 << 16)  # type: ignore[assignment]
            if self.decompressed is not None
            else _buffered(head, raw)
        )
        sniff = stream.read(_SNIFF_BYTES)
        while sniff and not sniff.strip(_WHITESPACE):  # blank lines before the first document
            more = stream.read(_SNIFF_BYTES)
            if not more:
                break
            sniff += more
        if not sniff.strip(_WHITESPACE):
            self._check_truncated_whole()
            self.report.format_per_file[self.source] = "empty" + compression
            return
        stream = _buffered(sniff, stream)
        if _looks_like_json(sniff):
            yield from self._json(stream, compression)
        elif sniff[0] == 0:
            self.report.format_per_file[self.source] = "otlp-proto-lp" + compression
            yield from self._frames(stream)
        else:
            self.report.format_per_file[self.source] = "otlp-proto" + compression
            data = self._read_whole(stream)
            yield from self._emit(self._record(decode_otlp_proto, data, self.source))

    def _read_whole(self, stream: BinaryIO) -> bytes:
        data = stream.read()
        self._check_truncated_whole()
        return data

    def _check_truncated_whole(self) -> None:
        """A single-document file cut short has no complete record to keep: an error, not a warning."""
        if self.decompressed is not None and self.decompressed.truncated is not None:
            raise InputError(self.source, f"compressed stream ends early: {self.decompressed.truncated}")

    def _warn_if_truncated(self) -> None:
        if self.decompressed is not None and self.decompressed.truncated is not None:
            self._warn(f"compressed stream ends early ({self.decompressed.truncated}); the last record is skipped")

    # -- JSON ----------------------------------------------------------------------------------------------------

    def _json(self, stream: BinaryIO, compression: str) -> Iterator[Span]:
        first = stream.readline()
        if _parses(first):
            yield from self._json_lines(itertools.chain([first], self._lines(stream)), compression)
            return
        rest = self._read_whole(stream)
        try:
            document = orjson.loads(first + rest)
        except orjson.JSONDecodeError as exc:
            if _next_line_parses(rest):
                # JSON lines whose first line is bad: report it by line, like any other line.
                lines = itertools.chain([first], io.BytesIO(rest))
                yield from self._json_lines(lines, compression)
                return
            self.report.format_per_file[self.source] = "json" + compression
            raise json_error(self.source, exc) from None
        self.report.format_per_file[self.source] = "otlp-json" + compression
        yield from self._emit(self._record(decode_otlp_json, document, self.source))

    def _lines(self, stream: BinaryIO) -> Iterator[bytes]:
        """The stream's lines (a compressed stream that stops early just ends: see ``_Decompressed``)."""
        yield from iter(stream.readline, b"")

    def _json_lines(self, lines: Iterator[bytes], compression: str) -> Iterator[Span]:
        self.report.format_per_file[self.source] = "otlp-jsonl" + compression
        pending: tuple[int, bytes] | None = None  # one line of look-ahead: is a bad line the last one?
        records = 0
        for line_no, line in enumerate(lines, start=1):
            if pending is not None:
                yield from self._json_line(*pending, last=False)
            pending = (line_no, line)
            records += bool(line.strip())
        if pending is not None:
            yield from self._json_line(*pending, last=True)
        if not any(w.startswith(f"{self.source}: line ") for w in self.report.warnings[-1:]):
            self._warn_if_truncated()  # the stream stopped right after a complete line
        if records == 1:  # a one-line document is plain OTLP/JSON
            self.report.format_per_file[self.source] = "otlp-json" + compression

    def _json_line(self, line_no: int, line: bytes, *, last: bool) -> Iterator[Span]:
        if not line.strip():
            return
        where = None if last and line_no == 1 else line_no  # a one-line file is a plain JSON document
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if last and not line.endswith(b"\n"):
                self._warn(f"line {line_no}: truncated last record skipped (file still being written?)")
                return
            error = json_error(self.source, exc, where)
            if not self.skip_invalid:
                raise error from None
            self._skip(error)
            return
        yield from self._emit(self._record(decode_otlp_json, value, self.source, where))

    # -- length-prefixed frames ----------------------------------------------------------------------------------

    def _frames(self, stream: BinaryIO) -> Iterator[Span]:
        index = 0
        offset = 0
        while True:
            header = stream.read(4)
            if not header:
                self._warn_if_truncated()
                return
            if len(header) < 4:
                self._warn(f"record {index + 1} at byte {offset}: truncated last record skipped (partial length header)")
                return
            length = int.from_bytes(header, "big")
            payload = stream.read(length)
            if len(payload) < length:
                self._warn(
                    f"record {index + 1} at byte {offset}: truncated last record skipped "
                    f"({len(payload)} of {length} bytes; file still being written?)"
                )
                return
            index += 1
            yield from self._emit(self._record(self._decode_frame, payload, index, offset))
            offset += 4 + length

    def _decode_frame(self, payload: bytes, index: int, offset: int) -> list[Span]:
        where = f"record {index} at byte {offset}"
        if payload[:4] == _ZSTD_MAGIC:
            try:
                payload = zstandard.ZstdDecompressor().decompressobj().decompress(payload)
            except zstandard.ZstdError as exc:
                raise InputError(self.source, f"{where}: invalid zstd frame: {exc}") from None
        try:
            if _looks_like_json(payload):
                return decode_otlp_json(payload, self.source)
            return decode_otlp_proto(payload, self.source)
        except UnsupportedFormatError:
            raise
        except InputError as exc:
            raise InputError(self.source, f"{where}: {exc.detail}", line=exc.line) from None


def _looks_like_json(head: bytes) -> bool:
    """JSON starts with ``{``/``[`` after blanks and has no control bytes (protobuf has them within a few bytes)."""
    return head.lstrip(_WHITESPACE)[:1] in (b"{", b"[") and not head[:_SNIFF_BYTES].translate(None, _TEXT_BYTES)


def _parses(line: bytes) -> bool:
    """Whether one line is a complete JSON document on its own (then the file is JSON lines)."""
    if not line.strip():
        return False
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _next_line_parses(rest: bytes) -> bool:
    for line in rest.split(b"\n", 8)[:8]:
        if line.strip():
            return _parses(line)
    return False
