"""Which containers an `upgrade` (or `rebuild`) replaces, and how: a plan made of facts (what
Compose would run now, what runs) without touching the engine; `rollout` carries it out.

How a service is replaced is profile data, its `x-rollout` (Compose ignores `x-` keys and
Swarm's translation drops them):

    x-rollout: {kind: rolling}                      # server, web, the workers
    x-rollout: {kind: rolling, migrate: [CMD...]}   # the server: CMD runs once, before it serves
    x-rollout: {kind: rolling, drain: 600}          # seconds an old one may take to finish
    x-rollout: {kind: singleton}                    # beat: must never run twice

- rolling: a new container starts beside the old one (the same service, scaled up), is waited
  for until ready, and only then is the old one stopped (told to finish first) and removed. A
  service that publishes a fixed host port cannot have two containers holding it: its first
  new container runs without those ports (a bridge); once the old one is gone the final one
  starts with them beside the bridge, which then goes the same way. Without Caddy in front
  the host ports are the way in, and such a service is recreated.
- singleton: stopped, then started.
- recreate (no `x-rollout`: Postgres, Redis, Garage, Hatchet, Caddy, ...): stopped and started
  again, a short gap; only when its image or configuration changed, like every kind.

A container counts as changed when Compose's hash of its service's configuration differs from
the one it was created with, or when its image is no longer the one its tag points to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import UserError

KEY = "x-rollout"
ROLLING, SINGLETON, RECREATE = "rolling", "singleton", "recreate"
KINDS = (ROLLING, SINGLETON)  # what `kind` may say; RECREATE is having no x-rollout

# What happens to a service, in the order a plan runs them.
START, ROLL, RESTART = "start", "roll", "restart"  # RECREATE as above

PROXY = "caddy"  # the service in front of the others: without it, host ports are the way in
NEW_IMAGE, CONFIGURATION, NOT_RUNNING, NO_IMAGE = (
    "new image", "configuration changed", "not running", "image not here yet")


@dataclass(frozen=True)
class Policy:
    """How one service is replaced (its `x-rollout`, read by `policies`)."""

    service: str
    kind: str = RECREATE
    migrate: tuple[str, ...] = ()  # run once in a new container of it before any new one serves
    drain: float | None = None  # seconds an old container may take to finish; None: its stop timeout
    fixed_ports: tuple[str, ...] = ()  # host ports it publishes ("127.0.0.1:1250", "40000/udp")
    stateful: bool = False  # keeps data in a named volume


@dataclass(frozen=True)
class Running:
    """A container of the project, as Docker inspects it."""

    name: str
    service: str
    image_id: str
    config_hash: str
    running: bool
    oneoff: bool = False  # `docker compose run`'s, never a service's own


@dataclass(frozen=True)
class Image:
    """An image on this machine."""

    id: str
    published: bool  # it came from a registry (it has a repository digest): a pull can renew it


@dataclass(frozen=True)
class Replacement:
    """One service to replace: how, why, and the containers it replaces."""

    service: str
    how: str  # START, ROLL, RESTART, RECREATE
    why: tuple[str, ...]
    old: tuple[str, ...]
    policy: Policy

    @property
    def bridged(self) -> bool:
        """Rolled through a bridge container without the fixed host ports it publishes."""
        return self.how == ROLL and bool(self.policy.fixed_ports) and bool(self.old)

    def describe(self) -> str:
        """One line for --dry-run and for the progress of an upgrade."""
        reason = ", ".join(self.why)
        if self.how == START:
            return f"{self.service}: {reason} -> started"
        if self.how == ROLL:
            line = (f"{self.service}: {reason} -> rolled without a gap: a new container beside the "
                    "old one, ready, then the old one finishes and goes")
            if self.bridged:
                line += (f" (it publishes fixed host ports {', '.join(self.policy.fixed_ports)}: a "
                         "bridge container without them carries the traffic while the final one "
                         "takes them over)")
            return line
        if self.how == RESTART:
            return f"{self.service}: {reason} -> stopped, then started (it must never run twice)"
        cost = "a short gap while it restarts" + (" (its data stays in its volume)" if self.policy.stateful else "")
        if self.policy.kind == ROLLING:
            cost += f" (no {PROXY} in front: it is reached on its host ports, which one container holds)"
        return f"{self.service}: {reason} -> recreated: {cost}"


@dataclass
class Plan:
    """The services to replace, in three groups run in this order (each in dependency order):
    `first` the recreated services others depend on (the data: Postgres, Redis, Hatchet, ...),
    then the migrations, then `rolled`, then `last` (singletons, the edge, the rest)."""

    first: list[Replacement] = field(default_factory=list)
    rolled: list[Replacement] = field(default_factory=list)
    last: list[Replacement] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def replacements(self) -> list[Replacement]:
        return self.first + self.rolled + self.last

    @property
    def migrations(self) -> list[Replacement]:
        """The replaced services whose new image migrates first (the server's `alembic`); one
        that only starts (nothing of it runs) migrates in its own entrypoint, as on `up`."""
        return [r for r in self.replacements if r.policy.migrate and r.how != START]

    def lines(self) -> list[str]:
        lines = [r.describe() for r in self.first]
        lines += [f"{m.service}: migrations first, once, in a one-off container of the new image: "
                  + " ".join(m.policy.migrate) for m in self.migrations]
        lines += [r.describe() for r in self.rolled + self.last]
        if self.unchanged:
            lines.append("unchanged (kept running as they are): " + ", ".join(self.unchanged))
        return lines


def policies(model: Mapping[str, Any]) -> dict[str, Policy]:
    """Each service's policy, from Compose's model of the project (`docker compose config`:
    ports in long syntax, volumes resolved). UserError for an `x-rollout` it cannot use."""
    result = {}
    for name, service in (model.get("services") or {}).items():
        service = service or {}
        spec = service.get(KEY)
        kind, migrate, drain = RECREATE, (), None
        if spec is not None:
            if not isinstance(spec, Mapping):
                raise UserError(f"service {name!r}: {KEY} must be a mapping, like {{kind: rolling}}",
                                hint=f"kind: one of {', '.join(KINDS)}; migrate: a command; drain: seconds")
            unknown = sorted(set(spec) - {"kind", "migrate", "drain"})
            if unknown:
                raise UserError(f"service {name!r}: {KEY} has unknown key(s) {', '.join(unknown)}",
                                hint="known: kind, migrate, drain")
            kind = spec.get("kind", RECREATE)
            if kind not in KINDS:
                raise UserError(f"service {name!r}: {KEY} kind {kind!r} is not one of {', '.join(KINDS)}",
                                hint="leave x-rollout out to have it recreated")
            migrate = spec.get("migrate") or ()
            if not (isinstance(migrate, (list, tuple)) and all(isinstance(w, str) for w in migrate)):
                raise UserError(f"service {name!r}: {KEY} migrate must be a list of words",
                                hint='e.g. migrate: ["uv", "run", "alembic", "upgrade", "head"]')
            drain = spec.get("drain")
            if drain is not None and (isinstance(drain, bool) or not isinstance(drain, (int, float))
                                      or drain <= 0):
                raise UserError(f"service {name!r}: {KEY} drain must be a number of seconds",
                                hint="e.g. drain: 600")
        # `docker compose config` writes a `$` as `$$` (what it prints is read again); Compose
        # runs a command with `$`, so does compose-tunnel.
        migrate = tuple(word.replace("$$", "$") for word in migrate)
        result[name] = Policy(name, kind, migrate, drain, fixed_host_ports(service),
                              uses_named_volume(service))
    return result


def fixed_host_ports(service: Mapping[str, Any]) -> tuple[str, ...]:
    """The host ports a service binds (long syntax, as `docker compose config` gives them): a
    range appears once, as its first port and how many follow."""
    ports = []
    for port in service.get("ports") or ():
        if not isinstance(port, Mapping) or not port.get("published"):
            continue
        published = str(port["published"])
        host = f"{port['host_ip']}:" if port.get("host_ip") else ""
        protocol = "" if port.get("protocol", "tcp") == "tcp" else f"/{port['protocol']}"
        ports.append(f"{host}{published}{protocol}")
    return tuple(_ranges(ports))


def _ranges(ports: list[str]) -> list[str]:
    """`40000/udp`, `40001/udp`, ... -> `40000-40100/udp` (Compose expands a range port by port)."""
    result: list[str] = []
    previous: tuple[str, int, str] | None = None
    for port in ports:
        head, _, protocol = port.partition("/")
        host, _, number = head.rpartition(":")
        parts = (host, int(number) if number.isdigit() else -1, protocol)
        if previous and parts[0] == previous[0] and parts[2] == previous[2] and parts[1] == previous[1] + 1:
            start = result[-1].partition("/")[0].rpartition(":")[2].split("-")[0]
            result[-1] = (f"{host}:" if host else "") + f"{start}-{parts[1]}" + (f"/{protocol}" if protocol else "")
        else:
            result.append(port)
        previous = parts
    return result


def uses_named_volume(service: Mapping[str, Any]) -> bool:
    return any(isinstance(v, Mapping) and v.get("type") == "volume" and v.get("source")
               for v in service.get("volumes") or ())


def image_of(project: str, name: str, service: Mapping[str, Any]) -> str:
    """The image a service runs: its `image`, or the name Compose gives what it builds."""
    return service.get("image") or f"{project}-{name}"


def dependency_order(model: Mapping[str, Any]) -> list[str]:
    """The services, each after what it depends on (Compose's `depends_on`), else by name."""
    services = model.get("services") or {}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting or name not in services:
            return
        visiting.add(name)
        for dependency in sorted((services[name] or {}).get("depends_on") or ()):
            visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in sorted(services):
        visit(name)
    return order


def plan(model: Mapping[str, Any], wanted: Mapping[str, str], images: Mapping[str, str | None],
         containers: list[Running], *, project: str) -> Plan:
    """What to replace (see Plan for the order): `wanted` is Compose's configuration hash of
    each service now, `images` the id each image name points to (None: not on this machine),
    `containers` what the project has."""
    rules = policies(model)
    services = model.get("services") or {}
    plan_of = Plan()
    changed: list[Replacement] = []
    for name in dependency_order(model):
        own = [c for c in containers if c.service == name and not c.oneoff]
        running = [c for c in own if c.running]
        policy = rules[name]
        image = images.get(image_of(project, name, services[name] or {}))
        if not running:
            changed.append(Replacement(name, START, (NOT_RUNNING,), tuple(c.name for c in own), policy))
            continue
        why = []
        if any(c.config_hash != wanted.get(name) for c in running):
            why.append(CONFIGURATION)
        if image is None:
            why.append(NO_IMAGE)
        elif any(c.image_id != image for c in running):
            why.append(NEW_IMAGE)
        if not why:
            plan_of.unchanged.append(name)
            continue
        how = {ROLLING: ROLL, SINGLETON: RESTART}.get(policy.kind, RECREATE)
        if how == ROLL and policy.fixed_ports and PROXY not in services:
            how = RECREATE  # reached on its host ports, which two containers cannot share: a gap anyway
        changed.append(Replacement(name, how, tuple(why), tuple(c.name for c in running), policy))
    depended_on = {d for s in services.values() for d in ((s or {}).get("depends_on") or ())}
    plan_of.first = [r for r in changed if r.policy.kind == RECREATE and r.service in depended_on]
    plan_of.rolled = [r for r in changed if r.policy.kind == ROLLING]
    plan_of.last = [r for r in changed if r not in plan_of.first and r not in plan_of.rolled]
    return plan_of


def images_to_pull(model: Mapping[str, Any], project: str,
                   local: Mapping[str, Image | None]) -> tuple[list[str], dict[str, str]]:
    """The images a pull may renew, and those it leaves alone with the reason: `pull_policy:
    never` (or `build`), an image the project builds, one that exists only on this machine
    (built or loaded here: no registry digest)."""
    pulled: list[str] = []
    skipped: dict[str, str] = {}
    for name, service in (model.get("services") or {}).items():
        service = service or {}
        image = image_of(project, name, service)
        policy = service.get("pull_policy")
        if service.get("build"):
            skipped.setdefault(image, "built here from its build context")
        elif policy in ("never", "build"):
            skipped.setdefault(image, f"pull_policy: {policy}")
        elif local.get(image) is not None and not local[image].published:  # type: ignore[union-attr]
            skipped.setdefault(image, "exists only on this machine (built or loaded here)")
        elif image not in pulled:
            pulled.append(image)
    return [image for image in pulled if image not in skipped], skipped
