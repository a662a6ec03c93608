"""Settings: what the user asked for, validated once, in a form that can be saved and replayed.

Raw options (from the CLI or the saved TOML) go through `Settings.from_options`, which applies
every rule of tunnel-setup.md. Nothing downstream re-validates user input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .choices import BACKEND_CHOICES, FLAG_PROFILES
from .errors import UserError
from .tunnel import (
    Address, parse_address, parse_dns_server, parse_ip, parse_ipv4, parse_port, parse_tunnels, parse_url,
)

DEFAULT_PROJECT = "reflector"
DEFAULT_DNS_TIMEOUT = 5.0
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
AUTH_MODES = ("public", "password")
TARGETS = ("compose", "swarm")
DEFAULT_ADMIN_EMAIL = "admin@localhost"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$")
GPU_DOCKERFILE = Path("gpu/self_hosted/Dockerfile")


@dataclass(frozen=True)
class Settings:
    profiles: tuple[str, ...] = ()
    ip: str | None = None
    domain: str | None = None
    tunnel_tcp: Address | None = None
    tunnel_udp: Address | None = None
    tunnel_udp_local: int | None = None
    node_ip: str | None = None
    dns_server: str | None = None
    dns_timeout: float = DEFAULT_DNS_TIMEOUT
    publish_ip: str | None = None
    profiles_dirs: tuple[Path, ...] = ()
    project_name: str = DEFAULT_PROJECT
    auth: str = "public"
    admin_email: str | None = None
    hosted_url: str | None = None
    transcript: str | None = None
    diarization: str | None = None
    translation: str | None = None
    padding: str | None = None
    mixdown: str | None = None
    llm_url: str | None = None
    llm_model: str | None = None
    lan_ip: str | None = None
    gpu_image: str | None = None
    reflector_source: Path | None = None
    target: str = "compose"  # where the stack runs: docker compose, or a Docker Swarm
    scale: tuple[str, ...] = ()  # "service=N": copies of a service (a swarm's replicas)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "Settings":
        """Validate raw option values (strings, lists) into Settings; None means not given."""
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise UserError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        _check_types(options)
        tunnels = options.get("tunnels")
        tcp_text, udp_text = options.get("tunnel_tcp"), options.get("tunnel_udp")
        if tunnels and (tcp_text or udp_text):
            raise UserError(
                "--tunnels cannot be combined with --tunnel-tcp/--tunnel-udp",
                hint="give both addresses with --tunnels TCP,UDP, or use the two separate flags",
            )
        if tunnels:
            tunnel_tcp, tunnel_udp = parse_tunnels(tunnels)
        else:
            tunnel_tcp = parse_address(tcp_text, "TCP tunnel") if tcp_text else None
            tunnel_udp = parse_address(udp_text, "UDP tunnel") if udp_text else None
        ip, domain = options.get("ip"), options.get("domain")
        if (tunnel_tcp or tunnel_udp) and (ip or domain):
            raise UserError(
                f"tunnel flags cannot be combined with --{'ip' if ip else 'domain'}",
                hint="tunnels serve on the tunnel address; drop --ip/--domain or the tunnel flags",
            )
        if ip and domain:
            raise UserError("--ip and --domain exclude each other", hint="pick one public address")
        if tunnel_udp and not tunnel_tcp:
            raise UserError(
                "a UDP tunnel needs a TCP tunnel too: the app, API and LiveKit signaling use it",
                hint="add --tunnel-tcp HOST:PORT, or give both with --tunnels TCP,UDP",
            )
        udp_local = options.get("tunnel_udp_local")
        if udp_local is not None:
            if not tunnel_udp:
                raise UserError("--tunnel-udp-local needs a UDP tunnel", hint="add --tunnel-udp HOST:PORT")
            udp_local = parse_port(udp_local, "--tunnel-udp-local")
        dns_server = options.get("dns_server")
        if dns_server:
            parse_dns_server(dns_server)
        project = options.get("project_name") or DEFAULT_PROJECT
        if not PROJECT_NAME.match(project):
            raise UserError(
                f"invalid project name {project!r}",
                hint="use lowercase letters, digits, '-' and '_', starting with a letter or digit",
            )
        timeout = options.get("dns_timeout")
        timeout = DEFAULT_DNS_TIMEOUT if timeout is None else float(timeout)
        if not 0 < timeout <= 120:
            raise UserError(f"--dns-timeout {timeout:g} is out of range", hint="use 0.1 to 120 seconds")
        target = options.get("target") or "compose"
        if target not in TARGETS:
            raise UserError(f"unknown deployment target {target!r}", hint="compose, or swarm (--swarm)")
        publish_ip = (parse_ip(options["publish_ip"], "--publish-ip", unspecified_ok=True)
                      if options.get("publish_ip") else None)
        if target == "swarm" and publish_ip not in (None, "0.0.0.0", "::"):
            raise UserError(f"--publish-ip {publish_ip} cannot apply on a swarm: Swarm publishes a port "
                            "on every interface of its node, never on one address",
                            hint="drop --publish-ip (--publish-ip 0.0.0.0), and firewall the edge node")
        profiles = tuple(dict.fromkeys(options.get("profiles") or ()))
        for profile, needs in (("tunnel", tunnel_tcp), ("tunnel-udp", tunnel_udp)):
            if profile in profiles and not needs:
                raise turned_on_by_name(profile)
        return cls(
            profiles=profiles,
            ip=parse_ip(ip, "--ip") if ip else None,
            domain=parse_address(f"{domain}:443", "--domain").host if domain else None,
            tunnel_tcp=tunnel_tcp,
            tunnel_udp=tunnel_udp,
            tunnel_udp_local=udp_local,
            node_ip=parse_ipv4(options["node_ip"]) if options.get("node_ip") else None,
            dns_server=dns_server or None,
            dns_timeout=timeout,
            publish_ip=publish_ip,
            profiles_dirs=tuple(Path(d).expanduser().absolute() for d in options.get("profiles_dirs") or ()),
            project_name=project,
            target=target,
            scale=tuple(f"{name}={count}" for name, count in sorted(parse_scale(options.get("scale") or ()).items())),
            **_app_options(options, profiles),
        )

    @property
    def mode(self) -> str:
        """How the stack is reached: tunnel, domain, ip, or local (localhost, no TLS)."""
        if self.tunnel_tcp:
            return "tunnel"
        if self.domain:
            return "domain"
        if self.ip:
            return "ip"
        return "local"

    @property
    def ml_mode(self) -> str:
        return ml_mode(self.profiles, self.hosted_url)

    def backend(self, name: str) -> str:
        """The effective backend of one of Reflector's five model services."""
        chosen = getattr(self, name)
        if chosen:
            return chosen
        return BACKEND_CHOICES[name][0] if self.ml_mode == "cpu" else "modal"

    def requested_profiles(self) -> list[str]:
        """Profiles asked for, explicitly or through an address flag."""
        implied = []
        if self.hosted_url:
            implied.append("hosted")
        if self.reflector_source:
            implied.append("gpu-build")
        if self.tunnel_tcp:
            implied.append("tunnel")
        if self.tunnel_udp:
            implied.append("tunnel-udp")
        if self.ip or self.domain:
            implied.append("caddy")  # browsers need HTTPS for the microphone and camera
        return list(dict.fromkeys([*self.profiles, *implied]))

    def to_options(self) -> dict[str, Any]:
        """Plain values (no None) for TOML; `from_options` reads them back unchanged."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == () or value == f.default:
                continue
            if isinstance(value, tuple):
                value = [str(v) for v in value]
            elif isinstance(value, (Address, Path)):
                value = str(value)
            out[f.name] = value
        return out

    def to_args(self) -> list[str]:
        """The command-line flags that reproduce these settings (for 'replaying ...')."""
        args: list[str] = []
        for name in self.profiles:
            args += [f"--{name}"] if name in FLAG_PROFILES else ["--profile", name]
        for key, value in self.to_options().items():
            if key == "profiles":
                continue
            flag = "--" + key.replace("_", "-")
            if key in ("profiles_dirs", "scale"):
                for item in value:
                    args += [flag.removesuffix("s"), item]
            elif key == "auth":
                args.append("--password")  # password auth; the hash is kept in the secrets
            elif key == "target":
                args.append("--swarm")  # the only value that is not the default
            else:
                args += [FLAGS.get(key, flag), str(value)]
        return args


FLAGS = {"hosted_url": "--hosted"}  # settings whose flag is not --NAME


OPTION_NAMES = {f.name for f in fields(Settings)} | {"tunnels"}


def ml_mode(profiles: tuple[str, ...], hosted_url: str | None) -> str:
    """Where the models run: gpu (a local GPU container), hosted (a remote GPU service), or
    cpu (in-process in the server and workers; the default, as it needs nothing else)."""
    if "gpu" in profiles:
        return "gpu"
    return "hosted" if hosted_url else "cpu"


LIST_OPTIONS = ("profiles", "profiles_dirs", "scale")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
MAX_COPIES = 100


def parse_scale(items: "tuple[str, ...] | list[str]") -> dict[str, int]:
    """`--scale SERVICE=N` values -> {service: N}; the last given for a service wins."""
    counts: dict[str, int] = {}
    for item in items:
        name, _, count = str(item).partition("=")
        name, count = name.strip(), count.strip()
        if not SERVICE_NAME.match(name) or not count.isdigit():
            raise UserError(f"--scale {item!r} is not SERVICE=N", hint="e.g. --scale worker=3")
        if int(count) > MAX_COPIES:
            raise UserError(f"--scale {item!r}: at most {MAX_COPIES} copies of a service",
                            hint="e.g. --scale worker=3")
        counts[name] = int(count)
    return counts
NUMBER_OPTIONS = ("dns_timeout", "tunnel_udp_local")


def _check_types(options: Mapping[str, Any]) -> None:
    """Values read back from a file are checked as strictly as flags: each has its type."""
    for key, value in options.items():
        if value is None:
            continue
        if key in LIST_OPTIONS:
            ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)
            kind = "a list of names"
        elif key in NUMBER_OPTIONS:
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
                isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value) is not None)
            kind = "a number"
        else:
            ok = isinstance(value, (str, Path))
            kind = "text"
        if not ok:
            raise UserError(f"{key} must be {kind}, not {value!r}"[:200])


def _app_options(options: Mapping[str, Any], profiles: tuple[str, ...]) -> dict[str, Any]:
    """Reflector's own modes: auth, where the models run, the LLM, the LAN address."""
    auth = options.get("auth") or "public"
    if auth not in AUTH_MODES:
        raise UserError(f"unknown auth mode {auth!r}", hint="public (no login) or password (--password)")
    admin_email = options.get("admin_email")
    if admin_email is not None and not EMAIL.match(str(admin_email).strip()):
        raise UserError(f"--admin-email: {admin_email!r} is not an e-mail address",
                        hint=f"e.g. {DEFAULT_ADMIN_EMAIL}")
    if admin_email and auth != "password":
        raise UserError("--admin-email needs password auth", hint="add --password")
    hosted = parse_url(options["hosted_url"], "--hosted") if options.get("hosted_url") else None
    values: dict[str, Any] = {
        "auth": auth,
        "admin_email": str(admin_email).strip() if admin_email else None,
        "hosted_url": hosted,
    }
    modes = [flag for flag, on in (("--cpu", "cpu" in profiles), ("--gpu", "gpu" in profiles),
                                   ("--hosted", bool(hosted))) if on]
    if len(modes) > 1:
        raise UserError(f"{' and '.join(modes)} conflict: the models run in one place",
                        hint="pick one of --cpu, --gpu and --hosted URL")
    mode = ml_mode(profiles, hosted)
    for name, choices in BACKEND_CHOICES.items():
        value = options.get(name)
        if value is None:
            values[name] = None
            continue
        value = str(value).strip().lower()
        if value not in choices:
            raise UserError(f"--{name}: {value!r} is not one of {', '.join(choices)}",
                            hint=f"--{name} {' | '.join(choices)}")
        if value == "modal" and mode == "cpu":
            raise UserError(f"--{name} modal needs a GPU service, and --cpu has none",
                            hint=f"use --hosted URL (with --{name} modal and in-process overrides for "
                                 "the others), or --gpu")
        values[name] = value
    llm_url = parse_url(options["llm_url"], "--llm-url") if options.get("llm_url") else None
    if llm_url and {"ollama-cpu", "ollama-gpu"} & set(profiles):
        raise UserError("--llm-url and --ollama-cpu/--ollama-gpu exclude each other",
                        hint="use a local Ollama or an external LLM, not both")
    llm_model = options.get("llm_model")
    if llm_model is not None and not MODEL_NAME.match(str(llm_model).strip()):
        raise UserError(f"--llm-model: {llm_model!r} is not a model name", hint="e.g. qwen2.5:14b")
    values["llm_url"] = llm_url
    values["llm_model"] = str(llm_model).strip() if llm_model else None
    values["lan_ip"] = parse_ip(options["lan_ip"], "--lan-ip") if options.get("lan_ip") else None
    gpu_image = options.get("gpu_image")
    if gpu_image is not None and not IMAGE_NAME.match(str(gpu_image).strip()):
        raise UserError(f"--gpu-image: {gpu_image!r} is not an image name",
                        hint="e.g. registry.example.com/reflector-gpu:latest")
    source = options.get("reflector_source")
    source = Path(source).expanduser().absolute() if source else None
    if source is not None:
        if "gpu" not in profiles:
            raise UserError("--reflector-source builds the GPU transcription image: it needs --gpu",
                            hint="add --gpu, or drop --reflector-source")
        if not (source / GPU_DOCKERFILE).is_file():
            raise UserError(f"--reflector-source: {source} has no {GPU_DOCKERFILE}",
                            hint="give the folder of a clone of Reflector (GreyhavenHQ/reflector)")
    if "gpu" in profiles and not (gpu_image or source):
        raise UserError("--gpu needs the GPU transcription image, which is not published",
                        hint="build it from a Reflector clone with --reflector-source DIR, "
                             "or give your own with --gpu-image IMAGE")
    if gpu_image and "gpu" not in profiles:
        raise UserError("--gpu-image is the image of --gpu", hint="add --gpu, or drop --gpu-image")
    values["gpu_image"] = str(gpu_image).strip() if gpu_image else None
    values["reflector_source"] = source
    return values


def turned_on_by_name(profile: str) -> UserError:
    """The error for a profile asked by name that only its address turns on."""
    flag = {"tunnel": "--tunnel-tcp HOST:PORT", "tunnel-udp": "--tunnel-udp HOST:PORT"}[profile]
    return UserError(f"profile {profile!r} is turned on by its address, not by name",
                     hint=f"give {flag} (or --tunnels TCP,UDP) instead of --profile {profile}")
