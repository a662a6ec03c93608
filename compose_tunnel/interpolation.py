"""Interpolation as Compose applies it to each file before anything else, for the values that
hold no variable: `$$` unescaped, strings cast where Compose casts them (`scale: "2"` is 2,
`privileged: "yes"` is true), and a `${...}` Compose cannot read refused.
"""

from __future__ import annotations

import re
from typing import Any

from .model import ModelError, Path, by_last, dotted, rule, unknown


def _cast_int(text: str) -> Any:
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')


def _cast_int64(text: str) -> Any:
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')


def _cast_float(text: str) -> Any:
    try:
        if text.strip() != text or "_" in text:
            raise ValueError
        return float(text)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None


def _cast_bool(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "y", "yes", "on"):
        return True
    if lowered in ("false", "n", "no", "off"):
        return False
    raise ValueError(f"invalid boolean: {text}")


# compose-go's interpolateTypeCastMapping: where a string becomes a number or a boolean.
_CASTS: dict[Path, Any] = {
    **{("services", "*", key): _cast_int64 for key in (
        "cpu_count", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares",
        "oom_score_adj", "pids_limit")},
    ("services", "*", "cpu_percent"): _cast_float,
    ("services", "*", "cpus"): _cast_float,
    **{("services", "*", *key.split(".")): _cast_int for key in (
        "deploy.replicas", "deploy.update_config.parallelism", "deploy.rollback_config.parallelism",
        "deploy.restart_policy.max_attempts", "deploy.placement.max_replicas_per_node",
        "healthcheck.retries", "scale", "ports.[].target", "ulimits.*", "ulimits.*.hard",
        "ulimits.*.soft")},
    **{("services", "*", *key.split(".")): _cast_float for key in (
        "deploy.update_config.max_failure_ratio", "deploy.rollback_config.max_failure_ratio")},
    **{("services", "*", *key.split(".")): _cast_bool for key in (
        "init", "healthcheck.disable", "oom_kill_disable", "privileged", "read_only", "stdin_open",
        "tty", "volumes.[].read_only", "volumes.[].volume.nocopy")},
    **{(kind, "*", "external"): _cast_bool for kind in ("networks", "volumes", "secrets", "configs")},
    **{("networks", "*", key): _cast_bool for key in ("internal", "attachable", "enable_ipv4", "enable_ipv6")},
}


def interpolate(value: Any, path: Path = ()) -> Any:
    """A loaded file as Compose's interpolation leaves it, for the values that hold no variable:
    `$$` unescaped, strings cast where Compose casts them (ModelError where it cannot)."""
    if isinstance(value, dict):
        return {key: interpolate(item, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, (*path, index)) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value
    if "$" in value and not _valid_template(value):
        where = ".".join("[]" if isinstance(p, int) else str(p) for p in path)
        raise ModelError(path, f"invalid interpolation format for {where}: you may need to escape any $ "
                               f"with another $ ({value})", hint="write $$ for a literal $")
    if unknown(value):
        return value
    text = value.replace("$$", "$")
    cast = rule(_CASTS_BY_LAST, path) if path[:1] in (
        ("services",), ("networks",), ("volumes",), ("secrets",), ("configs",)) else None
    if cast is None:
        return text
    try:
        return cast(text)
    except ValueError as error:
        raise ModelError(path, f"error while interpolating {dotted(path)}: failed to cast to expected "
                               f"type: {error}") from None


_BRACED = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*(?::?[-+?].*)?}", re.DOTALL)


def _valid_template(text: str) -> bool:
    """Whether compose-go's template reads every `${...}` of a text (a `$$` is a literal `$`)."""
    index = 0
    while (index := text.find("$", index)) >= 0:
        following = text[index + 1:index + 2]
        if following == "$":
            index += 2
            continue
        if following == "{" and not _BRACED.match(text, index + 2):
            return False
        index += 1
    return True


_CASTS_BY_LAST = by_last(_CASTS)
