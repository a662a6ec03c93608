"""Docker Swarm: the project as a stack file that `docker stack deploy` reads.

Input is Compose's own model of the flattened project (`docker compose config`: variables
interpolated, env files inlined into `environment`, paths absolute, ports and volumes in long
syntax; its YAML, as the JSON drops services' `x-` keys), so what Swarm runs is what Compose
would have run. What Swarm does
not accept, or does differently, is translated, and each translation is told in one line
(`up --swarm --dry-run` prints them):

- `build`, `container_name`, `pull_policy`, `depends_on`, `links`: dropped (images must exist
  on the node; ordering comes from compose-tunnel's own waits and bootstraps; names resolve on
  the stack's overlay network).
- `restart` -> `deploy.restart_policy`; `scale` -> `deploy.replicas`.
- files of the workdir mounted into a service -> Swarm configs (secrets for the files only
  their owner may read), named by their content's digest: a changed file is a new config, and
  the service is updated to it.
- published ports: Swarm binds every interface, never one address: a port published on
  127.0.0.1 only (a local convenience) is not published; the others are published in `host`
  mode, on the node the task runs on (the edge node for Caddy and LiveKit).
- GPU device reservations -> Swarm generic resources (`gpu`), which the GPU node advertises.
- placement: a service's `x-swarm-node` (edge, data, gpu; profile data) pins it to the nodes
  carrying that label.
- `deploy.endpoint_mode: dnsrr` unless set: a name resolves to its tasks' addresses, not to a
  virtual IP (which needs IPVS in the kernel); ports are published in host mode anyway.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import UserError

STACK_FILE = "stack.yml"
NODE_KEY = "x-swarm-node"
NODE_ROLES = ("edge", "data", "gpu")
LABEL_PREFIX = "compose-tunnel."  # node labels: compose-tunnel.edge=true, ...
STACK_VERSION = "3.9"

# Keys Swarm's stack files know (schema 3.9) and take as they are.
KEPT = (
    "image", "command", "entrypoint", "environment", "healthcheck", "labels", "user",
    "working_dir", "stop_grace_period", "stop_signal", "ulimits", "hostname",
    "cap_add", "cap_drop", "tmpfs", "init", "logging", "tty", "stdin_open", "read_only",
    "sysctls", "dns", "dns_search", "domainname", "isolation", "expose", "networks",
)
DROPPED = {
    "build": "images must exist on the nodes (--build builds them here)",
    "container_name": "Swarm names the tasks",
    "pull_policy": "Swarm pulls what a node lacks",
    "depends_on": "compose-tunnel starts and waits in order",
    "links": "names resolve on the stack's network",
    "profiles": "compose-tunnel deploys the services it selected",
}
REFUSED = {  # no Swarm equivalent: deploying without them would run something else
    "privileged": "Swarm services cannot run privileged",
    "devices": "Swarm services get no devices (GPUs: use deploy.resources.reservations.devices)",
    "network_mode": "Swarm services join networks, never another's namespace or the host's",
    "security_opt": "Swarm services take no security options",
    "pid": "Swarm services share no PID namespace",
    "ipc": "Swarm services share no IPC namespace",
    "volumes_from": "Swarm services share no volumes this way (use a named volume)",
}
RESTART = {"always": "any", "unless-stopped": "any", "on-failure": "on-failure", "no": "none"}
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class StackFile:
    """The translated project: the stack file's model and what was translated, in words."""

    model: dict[str, Any]
    translations: dict[str, list[str]] = field(default_factory=dict)  # what -> the services it concerns
    nodes: dict[str, str] = field(default_factory=dict)  # service -> node role it is pinned to
    built: list[str] = field(default_factory=list)  # services whose image is built here

    def note(self, service: str, what: str) -> None:
        self.translations.setdefault(what, []).append(service)

    @property
    def notes(self) -> list[str]:
        """One line per translation, naming the services it concerns."""
        return [f"{what}: {', '.join(services)}" for what, services in self.translations.items()]


def translate(project: Mapping[str, Any], stack: str, workdir: str,
              files: Mapping[str, tuple[str, bool]]) -> StackFile:
    """The stack file for Compose's model `project` of the workdir's compose file.

    `files`: the workdir's generated files, relative path -> (content, readable by its owner
    only); the ones mounted into a service travel as configs or secrets."""
    out = StackFile({"version": STACK_VERSION, "services": {}})
    configs: dict[str, dict] = {}
    secrets: dict[str, dict] = {}
    for name, service in (project.get("services") or {}).items():
        out.model["services"][name] = _service(name, service, stack, workdir, files, out, configs, secrets)
    volumes = {name: _volume(volume) for name, volume in (project.get("volumes") or {}).items()}
    if volumes:
        out.model["volumes"] = volumes
    out.model["networks"] = {name: _network(network) for name, network in
                             (project.get("networks") or {"default": {}}).items()}
    if configs:
        out.model["configs"] = configs
    if secrets:
        out.model["secrets"] = secrets
    return out


def _service(name: str, service: Mapping[str, Any], stack: str, workdir: str,
             files: Mapping[str, tuple[str, bool]], out: StackFile, configs: dict, secrets: dict) -> dict:
    for key, why in REFUSED.items():
        if service.get(key) and not (key == "network_mode" and service[key] in ("", "default")):
            raise UserError(f"service {name!r} cannot run on a swarm: {key} ({why})",
                            hint="drop it from your profile, or run this project without --swarm")
    result = {key: service[key] for key in KEPT if key in service}
    if isinstance(result.get("healthcheck"), Mapping):  # not in Swarm's stack files
        result["healthcheck"] = {key: value for key, value in result["healthcheck"].items()
                                 if key != "start_interval"}
    hosts = service.get("extra_hosts")
    if hosts:  # Swarm's stack files take a list of host:address
        items = hosts.items() if isinstance(hosts, Mapping) else (
            str(entry).replace("=", ":", 1).split(":", 1) for entry in hosts)
        result["extra_hosts"] = [f"{host}:{address}" for host, address in items]
    if isinstance(result.get("networks"), Mapping):  # aliases only; Swarm has no static addresses
        result["networks"] = {network: ({"aliases": value["aliases"]} if isinstance(value, Mapping)
                                        and value.get("aliases") else None)
                              for network, value in result["networks"].items()}
    for key, why in DROPPED.items():
        if service.get(key):
            out.note(name, f"{key} dropped ({why})")
    if service.get("build"):
        out.built.append(name)
    deploy = dict(service.get("deploy") or {})
    restart = service.get("restart")
    if restart and "restart_policy" not in deploy:
        condition = RESTART.get(str(restart).split(":")[0], "any")
        deploy["restart_policy"] = {"condition": condition}
        out.note(name, f"restart {restart} -> deploy.restart_policy {condition}")
    # Names resolve to the tasks' own addresses: no virtual IP, which needs the kernel's IPVS
    # (missing on some hosts, where a VIP takes connections and answers none).
    deploy.setdefault("endpoint_mode", "dnsrr")
    if service.get("scale") is not None and "replicas" not in deploy:
        deploy["replicas"] = service["scale"]
    _gpu(name, deploy, out)
    role = service.get(NODE_KEY)
    if role is not None:
        if role not in NODE_ROLES:
            raise UserError(f"service {name!r}: {NODE_KEY} {role!r} is not one of {', '.join(NODE_ROLES)}",
                            hint="edge: where the tunnels arrive; data: the stateful services; gpu")
        placement = dict(deploy.get("placement") or {})
        placement["constraints"] = [*placement.get("constraints", ()), f"node.labels.{LABEL_PREFIX}{role} == true"]
        deploy["placement"] = placement
        out.nodes[name] = role
    if deploy:
        result["deploy"] = deploy
    ports = [_port(name, port, out) for port in service.get("ports") or ()]
    if any(ports):
        result["ports"] = [port for port in ports if port]
    volumes, mounted_configs, mounted_secrets = [], [], []
    for volume in service.get("volumes") or ():
        mounts = _mount(name, volume, stack, workdir, files, out, configs, secrets)
        if mounts is None:
            volumes.append(_volume_mount(volume))
        else:
            for kind, entry in mounts:
                (mounted_secrets if kind == "secret" else mounted_configs).append(entry)
    if volumes:
        result["volumes"] = volumes
    if mounted_configs:
        result["configs"] = mounted_configs
    if mounted_secrets:
        result["secrets"] = mounted_secrets
    return result


def _gpu(name: str, deploy: dict, out: StackFile) -> None:
    """Compose's GPU reservation -> Swarm's generic resource `gpu` (one per device asked)."""
    reservations = dict((deploy.get("resources") or {}).get("reservations") or {})
    devices = reservations.pop("devices", None)
    if not devices:
        return
    count = 0
    for device in devices:
        if "gpu" not in (device.get("capabilities") or ()):
            raise UserError(f"service {name!r} reserves a device Swarm cannot give: {device}",
                            hint="Swarm gives GPUs only, as generic resources")
        wanted = device.get("count", 1)
        count += len(device.get("device_ids") or ()) or (1 if wanted in ("all", -1) else int(wanted))
    reservations["generic_resources"] = [{"discrete_resource_spec": {"kind": "gpu", "value": count}}]
    deploy["resources"] = {**(deploy.get("resources") or {}), "reservations": reservations}
    out.note(name, f"GPU reservation -> generic resource gpu={count} "
                     "(the GPU node advertises it: see README, More than one machine)")


def _port(name: str, port: Mapping[str, Any], out: StackFile) -> dict | None:
    host_ip = port.get("host_ip") or ""
    published = port.get("published")
    label = f"{host_ip + ':' if host_ip else ''}{published}:{port.get('target')}/{port.get('protocol', 'tcp')}"
    if published in (None, ""):
        return {"target": port["target"], "protocol": port.get("protocol", "tcp")}
    if host_ip in LOOPBACK:
        out.note(f"{name} {label}", "not published, as Swarm binds every interface and never 127.0.0.1 "
                                    "alone (local conveniences)")
        return None
    if host_ip and host_ip not in ("0.0.0.0", "::"):
        out.note(f"{name} {label}", "published on every interface of its node (Swarm binds no single "
                                    "address)")
    entry = {"target": int(port["target"]), "protocol": port.get("protocol", "tcp"), "mode": "host"}
    if "-" in str(published):
        start, end = (int(part) for part in str(published).split("-"))
        if start != end:
            raise UserError(f"service {name!r}: the port range {label} cannot be published on a swarm "
                            "(one entry per port, each its own host port)",
                            hint="publish single ports, or run this project without --swarm")
        published = start
    entry["published"] = int(published)
    return entry


def _mount(name: str, volume: Mapping[str, Any], stack: str, workdir: str, files: Mapping[str, tuple[str, bool]],
           out: StackFile, configs: dict, secrets: dict) -> list[tuple[str, dict]] | None:
    """A bind mount of a workdir file or folder as configs/secrets; None for other mounts."""
    if volume.get("type") != "bind":
        return None
    source = posixpath.normpath(volume.get("source", ""))
    root = posixpath.normpath(workdir)
    if source != root and not source.startswith(root + "/"):
        out.note(f"{name} {source}", "bind mounts kept: the path must exist on every node the task may run on")
        return None
    relative = posixpath.relpath(source, root)
    target = volume["target"]
    chosen = {path: target if path == relative else posixpath.join(target, posixpath.relpath(path, relative))
              for path in files if path == relative or relative == "." or path.startswith(relative + "/")}
    if not chosen:
        raise UserError(f"service {name!r} mounts {source}, which compose-tunnel does not generate",
                        hint="a swarm ships only the workdir's generated files to the nodes")
    mounts = []
    for path, path_target in sorted(chosen.items()):
        text, private = files[path]
        key = posixpath.basename(path).replace(".", "_")
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        table, kind = (secrets, "secret") if private else (configs, "config")
        table[key] = {"file": posixpath.join(root, path), "name": f"{stack}_{key}_{digest}"}
        mounts.append((kind, {"source": key, "target": path_target, "mode": 0o400 if private else 0o444}))
        out.note(f"{name} {path_target} <- {path}", f"workdir files -> Swarm {kind}s (named by content)")
    return mounts


def _volume_mount(volume: Mapping[str, Any]) -> dict:
    keep = ("type", "source", "target", "read_only", "volume", "bind", "tmpfs", "consistency")
    return {key: volume[key] for key in keep if key in volume}


def _volume(volume: Mapping[str, Any] | None) -> dict:
    volume = dict(volume or {})
    volume.pop("name", None)  # Swarm names them <stack>_<name>, as Compose does
    return {key: volume[key] for key in ("driver", "driver_opts", "external", "labels") if key in volume}


def _network(network: Mapping[str, Any] | None) -> dict:
    network = dict(network or {})
    if network.get("external"):
        return {"external": True, **({"name": network["name"]} if "name" in network else {})}
    # attachable: a one-off container (a bootstrap, a test) may join the stack's network
    return {"driver": "overlay", "attachable": True}


def select(model: Mapping[str, Any], services: list[str]) -> dict[str, Any]:
    """The stack file reduced to `services` and what they use: deployed without --prune, it
    starts or updates them and leaves the stack's other services as they are."""
    chosen = {name: model["services"][name] for name in services}
    out = {key: value for key, value in model.items() if key not in ("services", "configs", "secrets")}
    out["services"] = chosen
    for kind in ("configs", "secrets"):
        used = {entry["source"] for service in chosen.values() for entry in service.get(kind, ())}
        if used:
            out[kind] = {name: value for name, value in model[kind].items() if name in used}
    return out
