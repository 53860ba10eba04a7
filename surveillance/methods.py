"""The detectors by name, with their parameters as data.

One table maps each method name (as the ``linkwatch detect`` command and the
alerting configuration spell it) to its parameters, their types and the function
that runs it. Parameter names are the R package's control names in snake_case.
Values arrive as text (from a command line or a settings file) and are parsed and
checked here, so that an unknown method, an unknown parameter or a malformed
value is reported with its name and never replaced by a default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from linkwatch.surveillance.detection import DetectionError, DetectionTable
from linkwatch.surveillance.ears import ears_c
from linkwatch.surveillance.farrington import (
    POWER_TRANSFORMS,
    THRESHOLD_METHODS,
    FarringtonControl,
    farrington_flexible,
)
from linkwatch.surveillance.glrnb import GlrNbControl, glrnb

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DetectionError(f"parameter {name}={text!r}: expected a whole number") from None


def _parse_float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DetectionError(f"parameter {name}={text!r}: expected a number") from None


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise DetectionError(f"parameter {name}={text!r}: expected true or false")


def _parse_pair(name: str, text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise DetectionError(f"parameter {name}={text!r}: expected two whole numbers, e.g. 5,4")
    return _parse_int(name, parts[0].strip()), _parse_int(name, parts[1].strip())


def _choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        if text not in options:
            raise DetectionError(f"parameter {name}={text!r}: expected one of {', '.join(options)}")
        return text

    return parse


@dataclass(frozen=True)
class Parameter:
    """One parameter: its public name, the field it sets and how its text is read."""

    name: str
    field: str
    parse: Callable[[str, str], Any]
    help: str


_FARRINGTON_PARAMETERS = (
    Parameter("b", "b", _parse_int, "years of history (default 5)"),
    Parameter("w", "w", _parse_int, "half-window in weeks around each past week (default 3)"),
    Parameter("alpha", "alpha", _parse_float, "one-sided level of the threshold (default 0.05)"),
    Parameter("no_periods", "no_periods", _parse_int, "levels of the seasonal factor (default 1)"),
    Parameter(
        "weights_threshold",
        "weights_threshold",
        _parse_float,
        "Anscombe residual above which a past week is down-weighted (default 2.58)",
    ),
    Parameter(
        "past_weeks_not_included",
        "past_weeks_not_included",
        _parse_int,
        "most recent weeks left out of the fit (default w)",
    ),
    Parameter(
        "p_threshold_trend",
        "p_threshold_trend",
        _parse_float,
        "p-value below which the trend is kept (default 0.05)",
    ),
    Parameter(
        "threshold_method",
        "threshold_method",
        _choice(THRESHOLD_METHODS),
        "delta, nbPlugin or muan (default delta)",
    ),
    Parameter("trend", "trend", _parse_bool, "fit a linear trend (default true)"),
    Parameter("reweight", "reweight", _parse_bool, "down-weight past outbreaks (default true)"),
    Parameter("limit54", "limit54", _parse_pair, "cases,weeks needed for an alarm (default 5,4)"),
    Parameter(
        "power_trans",
        "power_trans",
        _choice(tuple(POWER_TRANSFORMS)),
        "power transform of the delta threshold: none, 1/2 or 2/3 (default 2/3)",
    ),
)

_EARS_PARAMETERS = (
    Parameter("alpha", "alpha", _parse_float, "level (default 0.001 for C1/C2, 0.025 for C3)"),
    Parameter("baseline", "baseline", _parse_int, "weeks in the baseline (default 7)"),
    Parameter(
        "min_sigma", "min_sigma", _parse_float, "floor of the standard deviation (default 0)"
    ),
)

_GLRNB_PARAMETERS = (
    Parameter("c_arl", "c_arl", _parse_float, "alarm threshold of the GLR statistic (default 5)"),
    Parameter(
        "alpha",
        "alpha",
        _parse_float,
        "negative-binomial dispersion (default: estimated on the weeks before the range)",
    ),
    Parameter(
        "m", "m", _parse_int, "how far back a change may start, -1 for no limit (default -1)"
    ),
    Parameter("mtilde", "mtilde", _parse_int, "weeks needed to estimate the change (default 1)"),
    Parameter("dir", "direction", _choice(("inc", "dec")), "inc or dec (default inc)"),
    Parameter("s", "harmonics", _parse_int, "seasonal harmonics of the baseline (default 1)"),
    Parameter("trend", "trend", _parse_bool, "linear trend in the baseline (default false)"),
)


@dataclass(frozen=True)
class Method:
    """A detector by name: its parameters and how to run it."""

    name: str
    parameters: tuple[Parameter, ...]
    run: Callable[[Any, dict[str, Any], tuple[int, int] | None], DetectionTable]
    summary: str

    def parse(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Parse text parameters into typed field values; unknown names are errors."""
        known = {p.name: p for p in self.parameters}
        values: dict[str, Any] = {}
        for name, text in params.items():
            if name not in known:
                raise DetectionError(
                    f"unknown parameter {name!r} for method {self.name}; known: "
                    + ", ".join(sorted(known))
                )
            parameter = known[name]
            values[parameter.field] = parameter.parse(name, text)
        return values


def _run_farrington(
    observed: Any, values: dict[str, Any], week_range: tuple[int, int] | None
) -> DetectionTable:
    return farrington_flexible(observed, FarringtonControl(**values), week_range)


def _ears(method: str) -> Callable[[Any, dict[str, Any], tuple[int, int] | None], DetectionTable]:
    def run(
        observed: Any, values: dict[str, Any], week_range: tuple[int, int] | None
    ) -> DetectionTable:
        return ears_c(observed, method, week_range=week_range, **values)

    return run


def _run_glrnb(
    observed: Any, values: dict[str, Any], week_range: tuple[int, int] | None
) -> DetectionTable:
    return glrnb(observed, GlrNbControl(**values), week_range)


METHODS: dict[str, Method] = {
    "farrington-flexible": Method(
        "farrington-flexible",
        _FARRINGTON_PARAMETERS,
        _run_farrington,
        "quasi-Poisson GLM on past years (Farrington 1996, Noufaily 2013)",
    ),
    "ears-c1": Method("ears-c1", _EARS_PARAMETERS, _ears("C1"), "EARS C1, 7-week baseline"),
    "ears-c2": Method("ears-c2", _EARS_PARAMETERS, _ears("C2"), "EARS C2, 2-week guard band"),
    "ears-c3": Method("ears-c3", _EARS_PARAMETERS, _ears("C3"), "EARS C3, sums C2 exceedances"),
    "glrnb": Method("glrnb", _GLRNB_PARAMETERS, _run_glrnb, "negative-binomial GLR CUSUM"),
}


def run_detector(
    method: str,
    observed: Any,
    params: Mapping[str, str] | None = None,
    week_range: tuple[int, int] | None = None,
) -> DetectionTable:
    """Run the detector named ``method`` with text parameters on one series."""
    if method not in METHODS:
        raise DetectionError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    chosen = METHODS[method]
    return chosen.run(observed, chosen.parse(params or {}), week_range)
