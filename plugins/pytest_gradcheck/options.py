"""Command-line and ini options, and the settings one check runs with (stdlib and pytest only)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import pytest

from .report_paths import REPORT_SUFFIXES

CHECKS = ("approximate", "exact", "maxdiff")
"""What decides pass/fail: allclose with rtol/atol, equality, or ``max|manual - reference| <= threshold``."""
RULES = ("tolerance", "reference")
"""How a value is judged: against the tolerance, or the reference-relative rule (float64 gold, k = 2)."""


@dataclass(frozen=True)
class Settings:
    """Options of one check; ``None`` means "not set here", so a wider scope (or the case) decides."""

    devices: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] | None = None
    rtol: float | None = None
    atol: float | None = None
    tolerance: str | None = None
    check: str | None = None
    maxdiff: float | None = None
    rule: str | None = None
    timeout: float | None = None

    @property
    def deciding(self) -> str:
        """The check that decides pass/fail: a threshold alone selects ``maxdiff``."""
        return self.check or ("maxdiff" if self.maxdiff is not None else "approximate")

    def over(self, wider: Settings) -> Settings:
        """These settings, with the unset ones taken from ``wider``.

        Options that only mean something together (rtol, atol and a preset; a check and its
        threshold) are taken as a group, so a marker's preset is not beaten by a command-line rtol.
        """
        taken = {}
        for group in GROUPS:
            source = self if any(getattr(self, key) is not None for key in group) else wider
            taken.update({key: getattr(source, key) for key in group})
        return Settings(**taken)


KEYS = tuple(f.name for f in fields(Settings))
GROUPS = (("devices",), ("dtypes",), ("rtol", "atol", "tolerance"), ("check", "maxdiff"), ("rule",), ("timeout",))


NUMBERS = ("rtol", "atol", "maxdiff", "timeout")
"""Options whose value is one number."""


def add_options(parser: pytest.Parser) -> None:
    """Register the ``gradcheck`` option group and its ini equivalents."""
    group = parser.getgroup("gradcheck", "gradient checks (gradcheck-kit)")
    group.addoption("--gradcheck", action="store_true", help="collect registered gradcheck-kit cases as test items")
    _add(parser, group, "device", "append", "device to check on, e.g. cpu, cuda (repeatable, or comma-separated)")
    _add(parser, group, "dtype", "append", "dtype to check in, e.g. float32, float64 (repeatable, or comma-separated)")
    _add(parser, group, "rtol", "store", "relative tolerance of the approximate check (give atol too)")
    _add(parser, group, "atol", "store", "absolute tolerance of the approximate check (give rtol too)")
    _add(parser, group, "tolerance", "store", "named tolerance preset, e.g. default, makemore")
    _add(parser, group, "check", "store", f"what decides pass/fail: {', '.join(CHECKS)} (default: approximate)")
    _add(parser, group, "maxdiff", "store", "threshold of the maxdiff check; alone, it selects that check")
    _add(
        parser,
        group,
        "rule",
        "store",
        "tolerance (default) or reference: pass when |manual-gold| <= 2*|autograd-gold| + floor, "
        "gold = float64 CPU autograd (meaningful in float16/bfloat16)",
    )
    _add(
        parser, group, "timeout", "store", "seconds a hand-written backward may run before it is stopped (on its rows)"
    )
    group.addoption(
        "--gradcheck-report",
        action="append",
        metavar="PATH",
        help="write every checked variable to PATH, format from the extension: "
        f"{' '.join(REPORT_SUFFIXES)}; folders are created; ~ and $VARS expanded, as --junitxml's (repeatable)",
    )
    # "args", not "paths": a $VAR is expanded before the path is put under the ini file's folder (report_paths)
    parser.addini("gradcheck_report", "report files, as --gradcheck-report, under the ini file's folder", type="args")


def _add(parser: pytest.Parser, group: Any, name: str, action: str, help: str) -> None:
    ini = f"gradcheck_{name}s" if action == "append" else f"gradcheck_{name}"
    group.addoption(f"--gradcheck-{name}", action=action, metavar=name.upper(), help=help)
    parser.addini(ini, f"as --gradcheck-{name}", type="args" if action == "append" else _scalar(name), default="")


def _scalar(name: str) -> Any:
    """The ini type of a one-value option: a number may be a TOML number in pytest 9's native TOML configuration
    (``gradcheck_rtol = 1e-3`` in pytest.toml was refused at startup, 'expects a string, got float'), as pytest's
    own faulthandler_timeout may; pytest before 9.2 takes no union of types, and reads ini files as strings."""
    if name in NUMBERS and pytest.version_tuple >= (9, 2):
        return float | str
    return "string"


def checked(settings: Settings, where: str) -> Settings:
    """``settings`` once their names are known ones (:func:`known_names`)."""
    known_names(settings, where)
    return settings


def from_command_line(config: pytest.Config) -> Settings:
    """Settings given explicitly on the command line: they win over a case's own ``register()`` arguments."""
    values = {key: config.getoption(f"gradcheck_{key.removesuffix('s')}") for key in KEYS}
    return parse(values, "command line")


def from_ini(config: pytest.Config) -> Settings:
    """Settings of the ini file: project defaults, which a case's own ``register()`` arguments beat."""
    values = {key: config.getini(f"gradcheck_{key}") for key in KEYS}
    return parse({key: None if value in ("", []) else value for key, value in values.items()}, "ini file")


def from_case(case: Any) -> Settings:
    """What a case's ``register()`` call declared: devices, dtypes, tolerance and rule, when given there."""
    declared = case.declared
    tolerance = case.tolerance if "tolerance" in declared else None
    preset = tolerance if isinstance(tolerance, str) else None
    rtol, atol = (None, None) if tolerance is None or preset else (tolerance.rtol, tolerance.atol)
    rule = ("tolerance" if case.rule == "tolerance" else "reference") if "rule" in declared else None
    values = {
        "devices": case.devices if "devices" in declared else None,
        "dtypes": case.dtypes if "dtypes" in declared else None,
        "rtol": rtol,
        "atol": atol,
        "tolerance": preset,
        "rule": rule,
        "timeout": case.timeout,
    }
    return checked(parse(values, f"register({case.name!r})"), f"register({case.name!r})")


def from_markers(markers: Iterable[pytest.Mark]) -> Settings:
    """Settings of ``@pytest.mark.gradcheck(...)`` markers, the closest one first."""
    merged: dict[str, Any] = {}
    for mark in markers:
        if mark.args:
            raise pytest.UsageError(f"@pytest.mark.gradcheck takes keyword options only, got {mark.args!r}")
        for key, value in mark.kwargs.items():
            merged.setdefault(key, value)
    return checked(parse(merged, "@pytest.mark.gradcheck"), "@pytest.mark.gradcheck")


def parse(values: Mapping[str, Any], where: str) -> Settings:
    """Check and normalise raw option values: lists split on commas, numbers as floats."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise pytest.UsageError(f"{where}: unknown gradcheck option(s) {unknown}; expected {list(KEYS)}")
    settings = Settings(
        devices=_names(values.get("devices")),
        dtypes=_names(values.get("dtypes")),
        rtol=_float(values.get("rtol"), "rtol", where),
        atol=_float(values.get("atol"), "atol", where),
        tolerance=values.get("tolerance"),
        check=values.get("check"),
        maxdiff=_float(values.get("maxdiff"), "maxdiff", where),
        rule=values.get("rule"),
        timeout=_float(values.get("timeout"), "timeout", where),
    )
    _usable_timeout(settings.timeout, where)
    for name in ("rtol", "atol", "maxdiff"):
        value = getattr(settings, name)
        if value is not None and not 0 <= value < math.inf:
            raise pytest.UsageError(f"{where}: gradcheck {name} must be a finite number >= 0, got {value}")
    if settings.rule is not None and settings.rule not in RULES:
        raise pytest.UsageError(f"{where}: gradcheck rule must be one of {', '.join(RULES)}, got {settings.rule!r}")
    if settings.check is not None and settings.check not in CHECKS:
        raise pytest.UsageError(f"{where}: gradcheck check must be one of {', '.join(CHECKS)}, got {settings.check!r}")
    if (settings.rtol is None) != (settings.atol is None):
        raise pytest.UsageError(f"{where}: give gradcheck rtol and atol together")
    if settings.check == "maxdiff" and settings.maxdiff is None:
        raise pytest.UsageError(f"{where}: the maxdiff check needs a threshold (gradcheck maxdiff)")
    if settings.rule == "reference" and settings.deciding != "approximate":
        raise pytest.UsageError(
            f"{where}: the {settings.deciding} check and the reference rule each decide pass/fail: give one of them"
        )
    return settings


def _usable_timeout(timeout: float | None, where: str) -> None:
    if timeout is None:
        return
    from gradcheck_kit.manual import timeout_refused  # torch: only when a timeout is given

    if timeout_refused(timeout):
        raise pytest.UsageError(f"{where}: gradcheck timeout {timeout_refused(timeout)}")


def known_names(settings: Settings, where: str) -> None:
    """Refuse a mistyped device, dtype or tolerance preset before anything runs (each check failed with it);
    asked where gradients are checked, so that a plain pytest run imports no torch."""
    if not (settings.devices or settings.dtypes or settings.tolerance):
        return
    import torch  # only when names are given: a plain pytest run imports no torch

    from gradcheck_kit.devices import parse_device, parse_dtype
    from gradcheck_kit.tolerance import resolve

    try:
        for device in settings.devices or ():
            parse_device(device)
        for dtype in settings.dtypes or ():
            parse_dtype(dtype)
        if settings.tolerance is not None:
            resolve(settings.tolerance, torch.float32)
    except ValueError as error:
        raise pytest.UsageError(f"{where}: {error}") from None


def _names(value: Any) -> tuple[str, ...] | None:
    """Names split on commas, each once: ``float32,float32`` made two items with one node id, run twice. A bare
    name is one name, a string or not (``torch.float64``, ``torch.device("cpu")``: not iterable, a TypeError)."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) or not isinstance(value, Iterable) else value
    return tuple(dict.fromkeys(part.strip() for item in items for part in str(item).split(",") if part.strip())) or None


def _float(value: Any, name: str, where: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{where}: gradcheck {name} must be a number, got {value!r}") from None
