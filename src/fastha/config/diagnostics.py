"""Errors and warnings about a configuration, each tied to `file:line`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from fastha.config.source import Where


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ExitCode(IntEnum):
    """keepalived `-t` exit codes."""

    OK = 0
    # keepalived exit()s on the spot, -t or not: a keyword missing its parameter
    # (lib/parser.c null_strvec, KEEPALIVED_EXIT_CONFIG).
    PARSE_EXIT = 2
    FATAL = 4  # e.g. the main file cannot be read
    CONFIG = 5  # configuration errors or warnings
    SCRIPT_SECURITY = 6
    # A failed include check (includem/includer/..., or every include under -e): keepalived's
    # main stops with KEEPALIVED_EXIT_NO_CONFIG before -t validates anything (lib/parser.c
    # config_file_error). The same number, so an alias of SCRIPT_SECURITY.
    NO_CONFIG = 6


@dataclass(frozen=True, slots=True)
class Diagnostic:
    where: Where | None
    severity: Severity
    message: str
    # Which keepalived -t exit class this problem belongs to.
    exit_code: ExitCode = ExitCode.CONFIG
    # keepalived itself does not run with this: STOPS_ALL, it exits at start-up (a
    # keyword missing its parameter); STOPS_VRRP, its VRRP child exits with a permanent
    # CONFIG error and takes the parent with it (no VRID, an unknown interface...), so
    # only when that child runs (not with -C). On every other problem keepalived logs,
    # applies its fallback and runs, and so does fastha's daemon (LoadResult.starts).
    stops: str = ""

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where is not None else ""
        return f"{place}{self.severity.value}: {self.message}"


def error(where: Where | None, message: str, exit_code: ExitCode = ExitCode.CONFIG) -> Diagnostic:
    return Diagnostic(where, Severity.ERROR, message, exit_code)


def warning(where: Where | None, message: str, exit_code: ExitCode = ExitCode.CONFIG) -> Diagnostic:
    return Diagnostic(where, Severity.WARNING, message, exit_code)


STOPS_ALL = "keepalived"
STOPS_VRRP = "vrrp"


def stop(
    where: Where | None,
    message: str,
    exit_code: ExitCode = ExitCode.CONFIG,
    *,
    child: str = STOPS_VRRP,
) -> Diagnostic:
    """An error keepalived does not start with (see Diagnostic.stops)."""
    return Diagnostic(where, Severity.ERROR, message, exit_code, stops=child)


def note(where: Where | None, message: str) -> Diagnostic:
    """Something keepalived only logs: shown as a warning, but `-t` still exits 0."""
    return Diagnostic(where, Severity.WARNING, message, ExitCode.OK)


class ConfigFatal(Exception):
    """The configuration cannot be read at all (exit 4)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(str(diagnostic))
        self.diagnostic = diagnostic
