"""The long syntax Compose writes out for every short one (compose-go's transform.Canonical,
then OmitEmpty), the defaults it sets once every file is in, and its reading of a short volume.

compose-go (v2.9, in Compose 2.40) loads file after file: it interpolates the file (module
`interpolation`), resolves its `extends` and `include`, merges it into what the earlier files
made, de-duplicates (module `unicity`), validates the result against the schema, then turns it
into its canonical form and de-duplicates again; once every file is in, it sets defaults and
checks the project (module `consistency`). Validation (module `validate`) follows the same
steps on plain dicts; the merged file compose-tunnel writes keeps the files' own syntax (module
`merge`).
"""

from __future__ import annotations

import posixpath
from typing import Any

from .model import PORT_HINT, ModelError, Path, dotted, go_type, go_value, unknown


def canonical(model: dict) -> dict:
    """compose-go's Canonical then OmitEmpty, in place: the long syntax of every short one.
    ModelError for what Compose cannot read (an invalid port or volume, ...)."""
    services = model.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict):
                _service(service, ("services", name))
    for kind in ("volumes", "networks", "secrets", "configs"):
        resources = model.get(kind)
        if isinstance(resources, dict):
            for name, resource in resources.items():
                resources[name] = _maybe_external(resource, (kind, name))
    if isinstance(model.get("include"), list):
        model["include"] = [{"path": entry} if isinstance(entry, str) else entry for entry in model["include"]]
    return model


def _string_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _service(service: dict, at: Path) -> None:
    for key, value in list(service.items()):
        path = (*at, key)
        if key == "build":
            service[key] = _build(value, path)
        elif key == "depends_on":
            service[key] = _depends_on(value, path)
        elif key == "env_file":
            service[key] = _env_files(value, path)
        elif key in ("label_file", "dns"):
            service[key] = _string_or_list(value)
        elif key == "extends":
            service[key] = {"service": value} if isinstance(value, str) else value
        elif key == "gpus":
            service[key] = [{"count": "all"}] if isinstance(value, str) else value
        elif key in ("networks", "models"):
            service[key] = {str(v): None for v in value} if isinstance(value, list) else value
        elif key == "volumes" and isinstance(value, list):
            service[key] = [_volume(entry, (*path, i)) for i, entry in enumerate(value)]
        elif key == "devices" and isinstance(value, list):
            service[key] = [_device(entry, (*path, i)) for i, entry in enumerate(value)]
        elif key in ("secrets", "configs") and isinstance(value, list):
            service[key] = [_file_mount(entry, (*path, i)) for i, entry in enumerate(value)]
        elif key == "ports":
            service[key] = _ports(value, path)
        elif key == "ulimits" and isinstance(value, dict):
            for name, limit in value.items():
                _ulimit(limit, (*path, name))
        elif key == "develop" and isinstance(value, dict) and isinstance(value.get("watch"), list):
            for rule in value["watch"]:
                if isinstance(rule, dict):
                    for field in ("ignore", "include"):
                        if field in rule:
                            rule[field] = _string_or_list(rule[field])
    if isinstance(service.get("dns"), list):  # OmitEmpty
        service["dns"] = [entry for entry in service["dns"] if entry not in (None, "")]


def _build(value: Any, path: Path) -> Any:
    if isinstance(value, str):
        return {"context": value}
    if not isinstance(value, dict):
        return value
    for index, secret in enumerate(value.get("secrets") or [] if isinstance(value.get("secrets"), list) else []):
        value["secrets"][index] = _file_mount(secret, (*path, "secrets", index))
    for key in ("provenance", "sbom"):
        if key in value and not isinstance(value[key], str):
            value[key] = _go_print(value[key])
    if isinstance(value.get("additional_contexts"), list):
        value["additional_contexts"] = _key_values(value["additional_contexts"], (*path, "additional_contexts"))
    if isinstance(value.get("ssh"), list):
        value["ssh"] = _ssh(value["ssh"], (*path, "ssh"))
    if isinstance(value.get("ulimits"), dict):
        for name, limit in value["ulimits"].items():
            _ulimit(limit, (*path, "ulimits", name))
    return value


def _go_print(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "<nil>" if value is None else str(value)


def _key_values(entries: list, path: Path) -> Any:
    mapping: dict = {}
    for entry in entries:
        if unknown(entry):
            return entries
        key, separator, rest = str(entry).partition("=")
        if not separator:
            raise ModelError(path, f"{dotted(path)}: invalid value {entry}, expected key=value")
        mapping[key] = rest
    return mapping


def _ssh(entries: list, path: Path) -> Any:
    mapping: dict = {}
    for entry in entries:
        if not isinstance(entry, str):
            raise ModelError(path, f"invalid ssh key type {go_type(entry)}")
        key, separator, rest = entry.partition("=")
        if not separator:
            if key != "default":
                raise ModelError(path, f'invalid ssh key "{entry}"')
            mapping[key] = None
            continue
        mapping[key] = rest
    return mapping


def _ulimit(value: Any, path: Path) -> None:
    if not isinstance(value, (dict, int)) or isinstance(value, bool):
        if not unknown(value):
            raise ModelError(path, f"{dotted(path)}: invalid type {go_type(value)} for external")


def _depends_on(value: Any, path: Path) -> Any:
    if isinstance(value, dict):
        for name, entry in value.items():
            if not isinstance(entry, dict):
                raise ModelError((*path, name), f"{dotted(path)}.{name}: unsupported value map[{name}:{entry}]")
            entry.setdefault("condition", "service_started")
            entry.setdefault("required", True)
        return value
    if isinstance(value, list):
        return {str(name): {"condition": "service_started", "required": True} for name in value}
    raise ModelError(path, f"{dotted(path)}: invalid type {go_type(value)} for depend_on")


def _env_files(value: Any, path: Path) -> Any:
    def entry(item: Any) -> Any:
        if isinstance(item, str):
            return {"path": item, "required": True}
        if isinstance(item, dict):
            item.setdefault("required", True)
            return item
        return None

    if isinstance(value, str):
        return [entry(value)]
    if isinstance(value, list):
        return [entry(item) for item in value]
    raise ModelError(path, f"{dotted(path)}: invalid type {go_type(value)} for env_file")


def _file_mount(value: Any, path: Path) -> Any:
    if isinstance(value, str):
        return {"source": value}
    if isinstance(value, dict):
        return value
    raise ModelError(path, f"{dotted(path)}: unsupported type {go_type(value)}")


def _device(value: Any, path: Path) -> Any:
    if isinstance(value, dict) or unknown(value):
        return value
    if not isinstance(value, str):
        raise ModelError(path, f"{dotted(path)}: invalid type {go_type(value)} for service volume mount")
    parts = value.split(":")
    if len(parts) > 3:
        raise ModelError(path, f"confusing device mapping, please use long syntax: {value}")
    source = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1] else source
    permissions = parts[2] if len(parts) > 2 else "rwm"
    return {"source": source, "target": target, "permissions": permissions}


def _volume(value: Any, path: Path) -> Any:
    if isinstance(value, dict) or unknown(value):
        return value
    if not isinstance(value, str):
        raise ModelError(path, f"{dotted(path)}: invalid type {go_type(value)} for service volume mount")
    volume = parse_volume(value, path)
    if volume.get("target"):
        volume["target"] = posixpath.normpath(volume["target"])
    return volume


def _ports(value: Any, path: Path) -> Any:
    from .ports import parse_port

    if not isinstance(value, list):
        raise ModelError(path, f"{dotted(path)}: invalid type {go_type(value)} for port")
    ports: list = []
    for index, entry in enumerate(value):
        if isinstance(entry, dict) or unknown(entry):
            ports.append(entry)
            continue
        if isinstance(entry, bool) or not isinstance(entry, (int, str)):
            raise ModelError(path, f"{dotted(path)}: invalid type {go_type(entry)} for port")
        try:
            ip, published, first, last, proto = parse_port(str(entry))
        except ValueError as error:
            shown = f'"{entry}"' if isinstance(entry, str) else str(entry)
            where = ".".join(map(str, path))
            raise ModelError((*path, index), f"{where}[{index}]: invalid port {shown} ({error})",
                             hint=PORT_HINT) from None
        host = published.split("-")
        for offset in range(last - first + 1):
            port = {"mode": "ingress", "target": first + offset, "protocol": proto.lower()}
            if ip:
                port["host_ip"] = ip
            if published:
                shown = str(int(host[0]) + offset)
                if first == last and len(host) == 2 and host[0] != host[1]:
                    shown += f"-{int(host[1])}"
                port["published"] = shown
            ports.append(port)
    return ports


def _maybe_external(resource: Any, path: Path) -> Any:
    if not isinstance(resource, dict):
        return resource
    external = resource.get("external")
    if isinstance(external, dict):
        resource["external"] = True
        if "name" in external:
            if "name" in resource and resource["name"] != external["name"]:
                raise ModelError(path, f"{dotted(path)}: name and external.name conflict; only use name")
            resource.setdefault("name", external["name"])
    return resource


# --- format.ParseVolume -----------------------------------------------------------------------

_BIND_OPTIONS = {"rprivate", "private", "rshared", "shared", "rslave", "slave"}


def parse_volume(spec: str, path: Path) -> dict:
    """compose-go's ParseVolume of a short volume: `[SOURCE:]TARGET[:OPTIONS]`, as its long form."""
    if not spec:
        raise ModelError(path, "invalid empty volume spec")
    if len(spec) <= 2:
        return {"type": "volume", "target": spec, "volume": {}}
    fields: dict = {}
    options: dict = {}
    buffer = ""
    depth = 0
    for index, char in enumerate(spec + "\0"):
        if char == "$" and spec[index + 1:index + 2] == "{":
            depth += 1
            buffer += char
            continue
        if char == "}" and depth > 0:
            depth -= 1
            buffer += char
            continue
        if char == ":" and len(buffer) == 1 and buffer.isalpha():  # a Windows drive letter
            buffer += char
        elif char in ":\0" and depth == 0:
            problem = _volume_field(char, buffer, fields, options)
            if problem:
                raise ModelError(path, f"invalid spec: {spec}: {problem}")
            buffer = ""
        else:
            buffer += char
    volume = {"type": "volume"}
    source = fields.get("source", "")
    if source:
        volume["source"] = source
    if fields.get("target"):
        volume["target"] = fields["target"]
    if options.get("read_only"):
        volume["read_only"] = True
    if _is_file_path(source):
        volume["type"] = "bind"
        volume["bind"] = {**options.get("bind", {}), "create_host_path": True}
    else:
        volume["volume"] = options.get("volume", {})
        if "bind" in options:
            volume["bind"] = options["bind"]
    return volume


def _volume_field(char: str, buffer: str, fields: dict, options: dict) -> str | None:
    if not buffer:
        return "empty section between colons"
    if not fields.get("source") and char == "\0":
        fields["target"] = buffer
    elif not fields.get("source"):
        fields["source"] = buffer
    elif not fields.get("target"):
        fields["target"] = buffer
    elif char == ":":
        return "too many colons"
    else:
        for option in buffer.split(","):
            if option in ("ro", "rw"):
                options["read_only"] = option == "ro"
            elif option == "nocopy":
                options["volume"] = {"nocopy": True}
            elif option in _BIND_OPTIONS:
                options.setdefault("bind", {})["propagation"] = option
            elif option in ("z", "Z"):
                options.setdefault("bind", {})["selinux"] = option
    return None


def _is_file_path(source: str) -> bool:
    if not source:
        return False
    if source[0] in "./~" or source.startswith("\\\\"):
        return True
    return len(source) > 1 and source[0].isalpha() and source[1] == ":"


# --- transform.SetDefaultValues -----------------------------------------------------------------

def set_defaults(model: dict) -> dict:
    """The defaults Compose sets once every file is merged, in place."""
    for service in (model.get("services") or {}).values():
        if not isinstance(service, dict):
            continue
        if isinstance(service.get("build"), dict):
            service["build"].setdefault("context", ".")
        for secret in service.get("secrets") or []:
            if isinstance(secret, dict):
                secret.setdefault("target", f"/run/secrets/{go_value(secret.get('source'))}")
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "tcp")
                port.setdefault("mode", "ingress")
        devices = ((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
        for request in [*(devices.get("devices") or []), *(service.get("gpus") or [])]:
            if isinstance(request, dict) and "count" not in request and "device_ids" not in request:
                request["count"] = "all"
    return model
