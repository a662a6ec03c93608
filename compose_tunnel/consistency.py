"""The checks Compose makes on a whole project once its files are merged, in Compose's words.

In compose-go's order (v2.9, Compose 2.40): the resources' own rules (`validation.Validate`),
then the project normalised (links, `network_mode: service:`, `volumes_from` become
dependencies; services without networks join `default`), then the services that no profile
disables checked against each other (`checkConsistency`) and the values Compose decodes (sizes,
durations). Each refusal is a ModelError with the path of what it is about. The model is the
canonical one (module `canonical`); values holding a variable are left to `docker compose`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

from .model import ModelError, go_value, unknown

INVALID = "invalid compose project"


def check_resources(model: dict) -> None:
    """compose-go's validation.Validate."""
    for name, volume in _items(model.get("volumes")):
        if volume is None:
            continue
        if not isinstance(volume, dict):
            raise ModelError(("volumes", name), f"expected volume, got {go_value(volume)}")
        if volume.get("external") is True:
            for key in volume:
                if key not in ("name", "external") and not key.startswith("x-"):
                    raise ModelError(("volumes", name, key), f'volumes.{name}: conflicting parameters '
                                                               f'"external" and "{key}" specified')
    for kind, keys in (("configs", ("file", "environment", "content")), ("secrets", ("file", "environment"))):
        for name, resource in _items(model.get(kind)):
            present = [key for key in keys if key in (resource or {})]
            if len(present) > 1:
                raise ModelError((kind, name), f"{kind}.{name}: {'|'.join(keys)} attributes are mutually exclusive")
            if not present and "driver" not in (resource or {}) and "external" not in (resource or {}):
                raise ModelError((kind, name), f"{kind}.{name}: one of {'|'.join(keys)} must be set")
    for name, service in _services(model):
        at = ("services", name)
        for index, port in enumerate(service.get("ports") or []):
            ip = port.get("host_ip") if isinstance(port, dict) else None
            if ip is not None and not unknown(ip) and not _is_ip(ip):
                raise ModelError((*at, "ports", index), f"services.{name}.ports.[]: invalid ip address: {ip}")
        develop = service.get("develop")
        for index, rule in enumerate(develop.get("watch") or [] if isinstance(develop, dict) else []):
            if isinstance(rule, dict) and rule.get("path") == "":
                raise ModelError((*at, "develop", "watch", index, "path"),
                                 f"services.{name}.develop.watch.[].path: value can't be blank")
        reservations = ((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
        requests = [(("deploy", "resources", "reservations", "devices"), "deploy.resources.reservations.devices",
                     reservations.get("devices")), (("gpus",), "gpus", service.get("gpus"))]
        for parts, dotted, entries in requests:
            for index, request in enumerate(entries if isinstance(entries, list) else []):
                if isinstance(request, dict) and "count" in request and "device_ids" in request:
                    raise ModelError((*at, *parts, index), f'services.{name}.{dotted}.[]: "count" and '
                                                           '"device_ids" attributes are exclusive')


def _items(value: Any) -> list:
    return list(value.items()) if isinstance(value, dict) else []


def _services(model: dict) -> list[tuple[str, dict]]:
    return [(name, s) for name, s in _items(model.get("services")) if isinstance(s, dict)]


def _is_ip(text: Any) -> bool:
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return "%" not in str(text)


# --- the project ------------------------------------------------------------------------------

def check_project(model: dict) -> None:
    """Normalize, then checkConsistency on the services no profile disables (none is active, as
    for `docker compose config`), then the values Compose decodes."""
    services = dict(_services(model))
    for name, service in services.items():
        _check_values(name, service)
    enabled = {name: s for name, s in services.items() if not s.get("profiles")}
    networks = dict(_items(model.get("networks")))
    for service in services.values():
        if "network_mode" not in service and "provider" not in service and not service.get("networks"):
            networks.setdefault("default", None)
        elif isinstance(service.get("networks"), dict) and "default" in service["networks"]:
            networks.setdefault("default", None)
    for name, service in services.items():
        _check_service(name, service, services, enabled, networks, model)
    for name, secret in _items(model.get("secrets")):  # `file: ""` is the project directory by then
        if isinstance(secret, dict) and not secret.get("external") and "file" not in secret \
                and not secret.get("environment"):
            raise ModelError(("secrets", name), f'secret "{name}" must declare either `file` or `environment`: '
                                                f"{INVALID}")
    _check_cycles(enabled)
    named: dict[str, str] = {}
    for name, service in enabled.items():  # docker compose's own check (CheckContainerNameUnicity)
        container = service.get("container_name")
        if isinstance(container, str) and container and not unknown(container):
            if container in named:
                raise ModelError(("services", name, "container_name"), f'services.{name}: container name '
                                 f'"{container}" is already in use by service {{}}"',
                                 also=[("services", named[container], "container_name")])
            named[container] = name


def dependencies(service: dict) -> dict:
    """A service's depends_on with what Compose's Normalize adds (links, shared namespaces,
    volumes_from), each {required: bool}."""
    depends = dict(service.get("depends_on") or {}) if isinstance(service.get("depends_on"), dict) else {}
    for link in service.get("links") or []:
        parts = str(link).split(":")
        depends.setdefault(parts[0] if len(parts) == 2 else str(link), {"required": True, "via": "links"})
    for key in ("network_mode", "ipc", "pid", "uts", "cgroup"):
        value = service.get(key)
        if isinstance(value, str) and value.startswith("service:"):
            depends.setdefault(value[8:], {"required": True, "via": key})
    for entry in service.get("volumes_from") or []:
        if isinstance(entry, str) and not entry.startswith("container:"):
            depends.setdefault(entry.split(":")[0], {"required": True, "via": "volumes_from"})
    return depends


def _check_service(name: str, service: dict, services: dict, enabled: dict, networks: dict,
                   model: dict) -> None:
    at = ("services", name)
    if "pid" in service and service["pid"] is None:  # the schema takes it; Compose's Normalize stops on it
        raise ModelError((*at, "pid"), f"services.{name}.pid: null is not a pid mode (Compose 2.40 stops "
                                       "on it: panic: interface conversion: interface {} is nil, not string)")
    if name not in enabled:
        return
    build = service.get("build")
    if build is None and not service.get("image") and "provider" not in service:
        raise ModelError(at, f'service "{name}" has neither an image nor a build context specified: {INVALID}')
    if isinstance(build, dict):
        if build.get("dockerfile_inline") and build.get("dockerfile"):
            raise ModelError((*at, "build", "dockerfile_inline"), f'service "{name}" declares mutualy '
                             f"exclusive dockerfile and dockerfile_inline: {INVALID}",
                             also=[(*at, "build", "dockerfile")])
        for context_name, context in _items(build.get("additional_contexts")):
            if isinstance(context, str) and context.startswith("service:"):
                target = context[8:]
                if target not in enabled:
                    raise ModelError((*at, "build", "additional_contexts"), f'service "{name}" declares unknown '
                                     f'service "{target}" as additional contexts {context_name}')
                if enabled[target].get("build") is None:
                    raise ModelError((*at, "build", "additional_contexts"), f'service "{name}" declares '
                                     f'non-buildable service "{target}" as additional contexts {context_name}')
        platforms = build.get("platforms") or []
        if platforms and service.get("platform") and service["platform"] not in platforms \
                and not unknown(service["platform"]):
            raise ModelError((*at, "platform"), "service.build.platforms MUST include service.platform "
                                                f'"{service["platform"]}": {INVALID}')
    own = service.get("networks")
    if service.get("network_mode") and own:
        raise ModelError((*at, "network_mode"), f"service {name} declares mutually exclusive `network_mode` "
                         f"and `networks`: {INVALID}", also=[(*at, "networks")])
    for network in (own if isinstance(own, dict) else {}):
        if network not in networks and not (network == "default" and not own):
            raise ModelError((*at, "networks"), f'service "{name}" refers to undefined network {network}: {INVALID}')
    test = (service.get("healthcheck") or {}).get("test") if isinstance(service.get("healthcheck"), dict) else None
    if isinstance(test, list) and test and test[0] not in ("CMD", "CMD-SHELL", "NONE") and not unknown(test[0]):
        raise ModelError((*at, "healthcheck", "test"),
                         'healthcheck.test must start either by "CMD", "CMD-SHELL" or "NONE"')
    for other, condition in dependencies(service).items():
        if other in enabled or unknown(other):
            continue
        if other in services and not (condition or {}).get("required", True):
            continue
        field = (condition or {}).get("via", "depends_on")
        raise ModelError((*at, field), f'service "{name}" depends on undefined service "{other}": {INVALID}')
    mode = service.get("network_mode")
    if isinstance(mode, str) and mode.startswith("service:") and mode[8:] not in enabled:
        raise ModelError((*at, "network_mode"),
                         f"service \"{mode[8:]}\" not found for network_mode 'service:{mode[8:]}'")
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict) and volume.get("type") == "volume" and volume.get("source") \
                and not unknown(volume["source"]) and volume["source"] not in (model.get("volumes") or {}):
            raise ModelError((*at, "volumes"), f'service "{name}" refers to undefined volume {volume["source"]}: '
                                               f"{INVALID}")
    for kind, label, entries in (("secrets", "build secret", (build or {}).get("secrets") if isinstance(build, dict)
                                  else None), ("configs", "config", service.get("configs")),
                                 ("secrets", "secret", service.get("secrets"))):
        for entry in entries or []:
            source = entry.get("source", "") if isinstance(entry, dict) else entry
            if not unknown(source) and source not in (model.get(kind) or {}):
                field = ("build", "secrets") if label == "build secret" else (kind,)
                raise ModelError((*at, *field), f'service "{name}" refers to undefined {label} {source}: {INVALID}')
    for model_name in (service.get("models") or {}):
        if model_name not in (model.get("models") or {}):
            raise ModelError((*at, "models"), f'service "{name}" refers to undefined model {model_name}: {INVALID}')
    _check_scale(name, service)
    _check_mounts(name, service)


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_scale(name: str, service: dict) -> None:
    at = ("services", name)
    scale = _number(service.get("scale"))
    deploy = service.get("deploy") if isinstance(service.get("deploy"), dict) else None
    replicas = _number(deploy.get("replicas")) if deploy else None
    if scale is not None and replicas is not None and scale != replicas:
        raise ModelError((*at, "scale"), f"services.{name}: can't set distinct values on 'scale' and "
                                         f"'deploy.replicas': {INVALID}", also=[(*at, "deploy", "replicas")])
    limits = ((deploy or {}).get("resources") or {}).get("limits") if deploy else None
    reservations = ((deploy or {}).get("resources") or {}).get("reservations") if deploy else None
    for own, other, where, convert in (("cpus", "cpus", limits, _cpus), ("mem_limit", "memory", limits, size),
                                       ("mem_reservation", "memory", reservations, size),
                                       ("pids_limit", "pids", limits, _int64)):
        mine = convert(service.get(own))
        if not mine or not isinstance(where, dict):
            continue
        theirs = convert(where.get(other))
        if other in where and theirs is None and unknown(where.get(other)):
            continue
        if mine != (theirs or 0):
            section = "limits" if where is limits else "reservations"
            raise ModelError((*at, own), f"services.{name}: can't set distinct values on '{own}' and "
                                         f"'deploy.resources.{section}.{other}': {INVALID}",
                             also=[(*at, "deploy", "resources", section)])
    if scale is not None and scale < 0:
        raise ModelError((*at, "scale"), f"services.{name}.scale: must be greater than or equal to 0")
    if replicas is not None and replicas < 0:
        raise ModelError((*at, "deploy", "replicas"), f"services.{name}.deploy.replicas: must be greater than "
                                                      "or equal to 0")
    count = scale if scale is not None else replicas
    if count is not None and count > 1 and service.get("container_name"):
        attribute = "scale" if scale is not None else "deploy.replicas"
        raise ModelError((*at, "container_name"), f"services.{attribute}: can't set container_name and {name} as "
                                                  f"container name must be unique: {INVALID}")
    develop = service.get("develop") if isinstance(service.get("develop"), dict) else {}
    for index, rule in enumerate(develop.get("watch") or []):
        if isinstance(rule, dict) and not rule.get("target") and rule.get("action") not in ("rebuild", "restart"):
            raise ModelError((*at, "develop", "watch", index), f"services.{name}.develop.watch: target is required "
                                                               f"for non-rebuild actions: {INVALID}")


def _int64(value: Any) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value):
        return int(value)
    return _number(value)


def _cpus(value: Any) -> float | None:
    """CPUs as Compose compares them: float32."""
    import struct

    if isinstance(value, str):
        value = None if unknown(value) else _float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return struct.unpack("f", struct.pack("f", value))[0]


def _check_mounts(name: str, service: dict) -> None:
    mounts: dict[str, tuple[str, tuple]] = {}
    tmpfs = service.get("tmpfs")
    for index, entry in enumerate([tmpfs] if isinstance(tmpfs, str) else tmpfs or []):
        where = f"services.{name}.tmpfs[{index}]"
        path = str(entry).split(":", 1)[0]
        if path in mounts:
            raise ModelError(("services", name, "tmpfs", index), f"{where}: target {path} already mounted as "
                                                                 f"{mounts[path][0]}", also=[mounts[path][1]])
        mounts[path] = (where, ("services", name, "tmpfs", index))
    for index, volume in enumerate(service.get("volumes") or []):
        if not isinstance(volume, dict) or unknown(volume.get("target")):
            continue
        where = f"services.{name}.volumes[{index}]"
        target = _clean(str(volume.get("target", "")))
        if target in mounts:
            raise ModelError(("services", name, "volumes", index), f"{where}: target {target} already mounted as "
                                                                   f"{mounts[target][0]}", also=[mounts[target][1]])
        mounts[target] = (where, ("services", name, "volumes", index))


def _clean(path: str) -> str:
    import posixpath

    return posixpath.normpath(path) if path else path


def _check_cycles(enabled: dict) -> None:
    """graph.CheckCycle: the first cycle its depth-first search meets, from the services in name
    order (a service already searched whole is not searched again: no cycle goes through it)."""
    children = {name: sorted(d for d in dependencies(s) if d in enabled) for name, s in enabled.items()}
    done: set[str] = set()
    for root in sorted(children):
        if root in done:
            continue
        path, on_path, stack = [root], {root}, [iter(children[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
                continue
            if child in on_path:
                cycle = path[path.index(child):]
                raise ModelError(("services", path[0], "depends_on"),
                                 f"dependency cycle detected: {' -> '.join(cycle)} -> {child}")
            if child not in done:
                path.append(child)
                on_path.add(child)
                stack.append(iter(children[child]))


# --- values Compose decodes ----------------------------------------------------------------------

# Where Compose decodes a service's value into a Go type that refuses some of what the schema
# lets through, named as mapstructure names them (`[*]`: a map's key, `[]`: a list's index).
_SIZES = ("mem_limit", "memswap_limit", "mem_reservation", "mem_swappiness", "shm_size", "build.shm_size",
          "deploy.resources.limits.memory", "deploy.resources.reservations.memory", "volumes[].tmpfs.size",
          "blkio_config.device_read_bps[].rate", "blkio_config.device_write_bps[].rate")
_DURATIONS = ("stop_grace_period", "healthcheck.interval", "healthcheck.timeout", "healthcheck.start_period",
              "healthcheck.start_interval", "deploy.update_config.delay", "deploy.update_config.monitor",
              "deploy.rollback_config.delay", "deploy.rollback_config.monitor", "deploy.restart_policy.delay",
              "deploy.restart_policy.window")
_CPUS = ("deploy.resources.limits.cpus", "deploy.resources.reservations.cpus")
_BOOLEANS = ("attach", "depends_on[*].restart", "depends_on[*].required", "build.no_cache", "build.pull",
             "build.privileged", "volumes[].bind.create_host_path", "post_start[].privileged",
             "pre_stop[].privileged", "env_file[].required")
_UNSIGNED = {"blkio_config.weight": "uint16", "blkio_config.weight_device[].Weight": "uint16",
             "volumes[].tmpfs.mode": "uint32"}
_MODES = ("secrets[].mode", "configs[].mode")
_COUNTS = ("deploy.resources.reservations.devices[].count", "gpus[].count")
_COMMANDS = ("command", "entrypoint")
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DURATION_UNITS = ("ns", "us", "µs", "μs", "ms", "s", "m", "h", "d", "w")
_TRUTHS = ("true", "false", "y", "yes", "on", "n", "no", "off")


@functools.lru_cache(maxsize=None)
def _parts(pattern: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\[\*?\]|[^.\[\]]+", pattern))


def _values(service: dict, pattern: str, name: str) -> list[tuple[tuple, str, Any]]:
    """(path in the model, mapstructure's name, value) of each value a pattern names."""
    found = [(("services", name), f"services[{name}]", service)]
    for part in _parts(pattern):
        step = []
        for at, shown, node in found:
            if part == "[]" and isinstance(node, list):
                step += [((*at, i), f"{shown}[{i}]", item) for i, item in enumerate(node)]
            elif part == "[*]" and isinstance(node, dict):
                step += [((*at, key), f"{shown}[{key}]", item) for key, item in node.items()]
            elif isinstance(node, dict) and part.lower() in node:
                step.append(((*at, part.lower()), f"{shown}.{part}", node[part.lower()]))
        found = step
    return found


def _problems(name: str, service: dict):
    """(path, mapstructure's name, Compose's words) of each value Compose cannot decode."""
    def each(patterns):
        for pattern in patterns:
            yield from ((at, shown, value) for at, shown, value in _values(service, pattern, name)
                        if value is not None and not unknown(value))

    for at, shown, value in each(_SIZES):
        if isinstance(value, str) and _SIZE.match(value) is None:
            yield at, shown, f"invalid size: '{value}'"
    for at, shown, value in each(_DURATIONS):
        problem = duration_problem(_go_print(value))
        if problem:
            yield at, shown, problem
    for at, shown, value in each(_CPUS):
        if isinstance(value, str) and _float(value) is None:
            yield at, shown, f'strconv.ParseFloat: parsing "{value}": invalid syntax'
    for at, shown, value in each(_BOOLEANS):
        if isinstance(value, str) and value.lower() not in _TRUTHS:
            yield at, shown, f"invalid boolean: {value}"
    for pattern, kind in _UNSIGNED.items():
        for at, shown, value in _values(service, pattern, name):
            if isinstance(value, str):
                yield at, shown, f"expected type '{kind}', got unconvertible type 'string'"
    for at, shown, value in each(_MODES):
        if isinstance(value, str) and re.fullmatch(r"[+-]?[0-7]+", value) is None:
            yield at, shown, f'strconv.ParseInt: parsing "{value}": invalid syntax'
        elif isinstance(value, float):
            yield at, shown, "unexpected value type float64 for mode"
    for at, shown, value in each(_COUNTS):
        if isinstance(value, str) and value.lower() != "all" and re.fullmatch(r"[+-]?[0-9]+", value) is None:
            yield at, shown, f"invalid value \"{value}\", the only value allowed is 'all' or a number"
    for at, shown, value in _values(service, "group_add[]", name):
        if isinstance(value, float):
            yield at, shown, "expected type 'string', got unconvertible type 'float64'"
    for at, shown, value in each(_COMMANDS):
        if isinstance(value, str) and not _shell_words(value):
            yield at, shown, "invalid command line string"
    hosts = service.get("extra_hosts")
    for entry in hosts if isinstance(hosts, list) else []:
        if not unknown(entry) and "=" not in str(entry) and ":" not in str(entry):
            yield (("services", name, "extra_hosts"), f"services[{name}].extra_hosts",
                   f"invalid additional host, missing IP: {_go_print(entry)}")
            break


def _check_values(name: str, service: dict) -> None:
    """The values Compose decodes into its types, as ModelToProject decodes them (every service,
    before the consistency checks)."""
    for at, shown, problem in _problems(name, service):
        raise ModelError(at, f"decoding failed due to the following error(s): '{shown}' {problem}")


def _shell_words(text: str) -> bool:
    """Whether go-shellwords splits a command (quotes closed, no escape left dangling)."""
    quote, escaped = "", False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif char in "'\"" and quote in ("", char):
            quote = "" if quote else char
    return not quote and not escaped


def _go_print(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _float(text: str) -> float | None:
    try:
        return float(text) if text.strip() == text and "_" not in text else None
    except ValueError:
        return None


def size(value: Any) -> int | None:
    """A size as Compose decodes it (an int as is, a string by go-units; else unset)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(value) if isinstance(value, str) and not unknown(value) else None
    if match is None:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS.get((match.group(2) or "").lower(), 1))


def duration_problem(text: str) -> str | None:
    """What Go's time.ParseDuration says of a text, or None if it reads it."""
    quoted = '"' + text + '"'
    rest = text.lstrip("+-")
    if rest == "0":
        return None
    if not rest:
        return f"time: invalid duration {quoted}"
    while rest:
        number = re.match(r"(\d*)(\.\d*)?", rest)
        if not number or number.group(0) in ("", "."):
            return f"time: invalid duration {quoted}"
        rest = rest[number.end():]
        unit = re.match(r"[^\d.]*", rest).group(0)
        if not unit:
            return f"time: missing unit in duration {quoted}"
        if unit not in _DURATION_UNITS:
            return f'time: unknown unit "{unit}" in duration {quoted}'
        rest = rest[len(unit):]
    return None
