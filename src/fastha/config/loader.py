"""keepalived.conf -> (model, diagnostics): preprocess, parse, validate."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastha.config.diagnostics import (
    STOPS_ALL,
    STOPS_VRRP,
    ConfigFatal,
    Diagnostic,
    ExitCode,
    Severity,
)
from fastha.config.parser import parse
from fastha.config.preprocess import load_lines
from fastha.config.source import Where
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

    def stoppers(self, *, vrrp: bool = True) -> tuple[Diagnostic, ...]:
        """The problems keepalived does not run with (Diagnostic.stops); the VRRP child's
        only count when it runs (`vrrp`)."""
        return tuple(
            d for d in self.diagnostics if d.stops == STOPS_ALL or (vrrp and d.stops == STOPS_VRRP)
        )

    def starts(self, *, vrrp: bool = True) -> bool:
        """Would keepalived run (`vrrp`: with its VRRP child)? keepalived starts on errors
        too, with its fallback for each (the parser and the fix-ups put it in the model),
        and so does the daemon. A reload still wants `ok` (the running config is kept)."""
        return self.config is not None and not self.stoppers(vrrp=vrrp)

    @property
    def startable(self) -> bool:
        """`starts()` with both children, as keepalived runs a file by default."""
        return self.starts()

    @property
    def exit_code(self) -> ExitCode:
        """keepalived -t's code: the worst class of problem seen."""
        if not self.diagnostics:
            return ExitCode.OK
        if any(d.exit_code is ExitCode.PARSE_EXIT for d in self.diagnostics):
            return ExitCode.PARSE_EXIT  # keepalived stopped there
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
        config = settle(config, {line.where: i for i, line in enumerate(lines)}, diags)
    return LoadResult(config, tuple(diags))


def settle(config: Any, order: Mapping[Where, int], diags: list[Diagnostic]) -> Any:
    """The model keepalived runs: what validation reported as dropped is dropped (a
    virtual server with no real servers, ...), so no part of the daemon programs it; and
    what keepalived fills in across the file is filled in (rules' priorities, in the
    order of the lines: `order`), with its message."""
    from fastha.config.validate_lvs import kept_virtual_servers
    from fastha.config.validate_vrrp import rule_priorities

    kept = kept_virtual_servers(config)
    if kept != tuple(config.virtual_servers):
        config = dataclasses.replace(config, virtual_servers=kept)
    return rule_priorities(config, order, diags)
