"""keepalived.conf -> (model, diagnostics): preprocess, parse, validate."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fastha.config.diagnostics import ConfigFatal, Diagnostic, ExitCode, Severity
from fastha.config.parser import parse
from fastha.config.preprocess import load_lines
from fastha.config.validate import Host, validate


@dataclass(frozen=True, slots=True)
class LoadResult:
    config: Any  # fastha.config.model.Config, or None when the file could not be read
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def ok(self) -> bool:
        """Usable: read and free of errors (warnings allowed, as keepalived runs with them)."""
        return self.config is not None and not self.errors

    @property
    def exit_code(self) -> ExitCode:
        """keepalived -t's code: the worst class of problem seen."""
        if not self.diagnostics:
            return ExitCode.OK
        return max(d.exit_code for d in self.diagnostics)


def load(
    path: str | os.PathLike[str],
    config_id: str | None = None,
    host: Host | None = None,
    *,
    all_config: bool = False,
) -> LoadResult:
    """`all_config`: keepalived's `-e` (every include must be there and readable)."""
    from fastha.config.keywords import ROOT

    try:
        lines, diags = load_lines(path, config_id, all_config=all_config)
    except ConfigFatal as exc:
        return LoadResult(None, (exc.diagnostic,))
    diags = list(diags)
    config = parse(lines, ROOT, diags)
    if config is not None:
        diags.extend(validate(config, host))
    return LoadResult(config, tuple(diags))
