"""What one command asks of the saved settings and secrets: the options it was given, read
into a `Change` the saved settings go through (`apply_change`), and the secret options.

Given options override the saved ones and the rest is kept; `describe_change` says the
difference in words. The command line hands over what was given; what it means is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .choices import BACKEND_CHOICES
from .errors import UserError
from .options import ASK, OPTIONS
from .settings import Settings, ml_mode, parse_scale, turned_on_by_name

ML_PROFILES = ("cpu", "gpu")
LLM_PROFILES = ("ollama-cpu", "ollama-gpu")
TUNNEL_KEYS = ("tunnel_tcp", "tunnel_udp", "tunnel_udp_local")


@dataclass(frozen=True)
class Change:
    """What one command asks of the saved settings: options given (their `profiles` are turned
    on), profiles turned off (`--no-X`), password auth turned off, or a fresh start (`--reset`).

    Given options override the saved ones and the rest is kept, except where a choice replaces
    another: a tunnel replaces --ip/--domain (and the reverse), each ML mode (--cpu, --gpu,
    --hosted) the others with what belonged to them, each LLM source (--ollama-cpu,
    --ollama-gpu, --llm-url) the others and their model."""

    given: Mapping[str, Any] = field(default_factory=dict)
    profiles_off: tuple[str, ...] = ()
    public: bool = False
    reset: bool = False

    @property
    def empty(self) -> bool:
        return not (self.given or self.profiles_off or self.public or self.reset)


def apply_change(saved: Settings | None, change: Change) -> Settings:
    """The settings `change` makes of `saved` (None: nothing saved), validated."""
    base = {} if change.reset or saved is None else saved.to_options()
    given = dict(change.given)
    on = list(dict.fromkeys(given.pop("profiles", None) or ()))
    for profile in ("tunnel", "tunnel-udp"):
        if profile in on:
            raise turned_on_by_name(profile)
    both = [name for name in on if name in change.profiles_off]
    if both:
        raise UserError(f"--{both[0]} and --no-{both[0]} both given", hint="keep one of them")
    profiles = [p for p in base.pop("profiles", []) if p not in change.profiles_off]

    def drop(*keys: str) -> None:
        for key in keys:
            base.pop(key, None)

    if given.get("tunnels") or given.get("tunnel_tcp") or given.get("tunnel_udp"):
        drop("ip", "domain", *(TUNNEL_KEYS if given.get("tunnels") else ()))
        if given.get("tunnel_udp"):
            drop("tunnel_udp_local")
    if given.get("ip") or given.get("domain"):
        drop("ip", "domain", *TUNNEL_KEYS)
    old_ml = ml_mode(tuple(profiles), base.get("hosted_url"))
    chosen_ml = [p for p in on if p in ML_PROFILES] + (["hosted"] if given.get("hosted_url") else [])
    if chosen_ml:
        profiles = [p for p in profiles if p not in ML_PROFILES or p in on]
        drop("hosted_url")
    if "gpu" not in profiles and "gpu" not in on:
        drop("gpu_image", "reflector_source")
    new_ml = ml_mode(tuple(profiles + on), given.get("hosted_url") or base.get("hosted_url"))
    if new_ml != old_ml:
        drop(*BACKEND_CHOICES)
    old_llm = _llm_source(profiles, base)
    if [p for p in on if p in LLM_PROFILES] or given.get("llm_url"):
        profiles = [p for p in profiles if p not in LLM_PROFILES or p in on]
        drop("llm_url")
    if _llm_source(profiles + on, {**base, **given}) != old_llm and "llm_model" not in given:
        drop("llm_model")
    if change.public:
        if given.get("auth") == "password":
            raise UserError("--password and --no-password both given", hint="keep one of them")
        drop("admin_email")
        base["auth"] = "public"
    if "scale" in given:  # a service's count replaces its saved one; the others are kept
        given["scale"] = [f"{name}={count}" for name, count in
                          {**parse_scale(base.get("scale", ())), **parse_scale(given["scale"])}.items()]
    options = {**base, **given, "profiles": list(dict.fromkeys(profiles + on))}
    return Settings.from_options(options)


def _llm_source(profiles: list[str], options: Mapping[str, Any]) -> str | None:
    """Which kind of LLM: a local Ollama (which one), an external API, or none."""
    return next((p for p in profiles if p in LLM_PROFILES), None) or (
        "external" if options.get("llm_url") else None)


def describe_change(old: Settings | None, new: Settings) -> list[str]:
    """One line per difference, e.g. `tunnel_tcp: a:1 -> c:3`, `+ ollama-cpu`, `- cpu`."""
    before = old.to_options() if old else {}
    after = new.to_options()
    lines = [f"- {p}" for p in before.get("profiles", []) if p not in after.get("profiles", [])]
    lines += [f"+ {p}" for p in after.get("profiles", []) if p not in before.get("profiles", [])]
    for key in dict.fromkeys([*before, *after]):
        if key == "profiles" or before.get(key) == after.get(key):
            continue
        shown = [", ".join(v) if isinstance(v, list) else "(none)" if v is None else str(v)
                 for v in (before.get(key), after.get(key))]
        lines.append(f"{key}: {shown[0]} -> {shown[1]}")
    return lines


# --- the options given, read --------------------------------------------------------------

# Options that change the saved settings without being one.
NOT_SETTINGS = ("profile_names", "profiles_off", "no_password", "reset")
SECRET_OPTIONS = ("hosted_api_key", "hf_token", "llm_api_key")


def change_from_options(given: Mapping[str, Any]) -> Change:
    """What the configuration options given (parameter -> value; only those given on the
    command line or through COMPOSE_TUNNEL_*) change in the saved settings; nothing given: a
    replay. The rest of the saved configuration is kept."""
    for name, value in given.items():
        if value == "" or (isinstance(value, tuple) and "" in map(str, value)):
            flag = OPTIONS[name].flag
            raise UserError(f"{flag} is empty", hint=f"give {flag} a value, or leave the option out")
    switches = {name: option.profile for name, option in OPTIONS.items() if option.profile}
    on = [switches[key] for key, value in given.items() if key in switches and value]
    off = [switches[key] for key, value in given.items() if key in switches and value is False]
    options = {key: value for key, value in given.items() if key not in switches and key not in NOT_SETTINGS}
    if "swarm" in options:
        options["target"] = "swarm" if options.pop("swarm") else "compose"
    profiles = on + list(given.get("profile_names", ()))
    if profiles:
        options["profiles"] = profiles
    if "scale" in options:
        options["scale"] = list(options["scale"])
    if "profiles_dirs" in options:
        options["profiles_dirs"] = [str(p) for p in options["profiles_dirs"]]
    if options.get("reflector_source"):
        options["reflector_source"] = str(options["reflector_source"])
    return Change(given={k: v for k, v in options.items() if v not in (None, "", ())},
                  profiles_off=tuple(off) + tuple(given.get("profiles_off", ())),
                  public=bool(given.get("no_password")), reset=bool(given.get("reset")))


def secret_options(values: Mapping[str, Any], ask: Callable[[], str] | None) -> dict[str, str]:
    """The secret options given, the password read from --password-file or asked for (`ask`;
    None where there is no terminal to ask on); never saved as settings."""
    secrets = {name: values[name] for name in SECRET_OPTIONS if values.get(name)}
    password, password_file = values.get("password"), values.get("password_file")
    if password is not None and password_file is not None:
        raise UserError("--password and --password-file exclude each other", hint="give one of them")
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--password-file: cannot read {password_file}: "
                            f"{getattr(error, 'strerror', None) or error}",
                            hint="a file holding the password alone, readable by you") from None
    elif password == ASK:
        if ask is None:
            raise UserError("--password needs a value here (no terminal to ask on)",
                            hint="use --password-file FILE, or COMPOSE_TUNNEL_PASSWORD")
        password = ask()
    if password is not None:
        if not password.strip():
            raise UserError("the admin password is empty", hint="choose a password of 8 characters or more")
        if len(password) < 8:
            raise UserError("the admin password is shorter than 8 characters",
                            hint="choose a longer one")
        secrets["password"] = password
    return secrets
