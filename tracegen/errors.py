"""Domain errors. They know nothing of click: the CLI maps ``exit_code`` to the process exit status.

Exit codes: 0 ok, 1 input or processing error, 2 usage (and, for ``check``, a bad baseline or unreadable input is 2
as well, because 1 there means "drift").
"""

from __future__ import annotations

__all__ = [
    "TracegenError",
    "InputError",
    "ConfigError",
    "UnsupportedFormatError",
    "RenderError",
    "BaselineError",
]


class TracegenError(Exception):
    """Base of every error tracegen reports to a person; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(TracegenError):
    """A trace file (or request body) that cannot be read; names the source and, for JSON lines, the line."""

    def __init__(self, source: str, message: str, *, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.detail = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        """Pickle with the constructor's arguments, so errors cross process boundaries (``convert --jobs``)."""
        return (_rebuild_input_error, (type(self), self.source, self.detail, self.line))


def _rebuild_input_error(cls: type, source: str, detail: str, line: int | None) -> InputError:
    return cls(source, detail, line=line)


class UnsupportedFormatError(InputError):
    """A recognised trace format that tracegen does not read yet (Jaeger, Zipkin)."""


class ConfigError(TracegenError):
    """A configuration file with an unknown key, a wrong type or a contradiction; names the file and the key."""

    exit_code = 2


class RenderError(TracegenError):
    """A renderer (PlantUML) that is missing or failed; the message says what to install."""


class BaselineError(TracegenError):
    """A baseline ``model.json`` that is missing or not a tracegen model."""

    exit_code = 2
