"""The Hatchet workflow engine's two bootstraps: its database, then a client token.

Every Reflector pipeline runs as a Hatchet workflow, and every Hatchet client (server, worker,
the hatchet workers) needs HATCHET_CLIENT_TOKEN. Reflector's own setup creates the token after
the whole stack is up and then restarts the clients; here the token exists before they start.

- database: Hatchet needs a `hatchet` database next to Reflector's. An initdb script covers only
  a new Postgres volume, so the step asks Postgres and creates the database when it is missing.
- token: the default tenant's id from the `Tenant` table, then
  `/hatchet-admin token create --config /config --tenant-id ID` inside the hatchet container.
  A stored token is kept while it belongs to that tenant (its JWT `sub` claim): a replayed `up`
  runs one query and creates nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import TYPE_CHECKING, Callable

from .bootstrap import BootstrapError, CommandResult, Exec, Step
from .errors import last_line
from .services import HATCHET, HATCHET_DATABASE, POSTGRES, POSTGRES_DB, POSTGRES_USER

if TYPE_CHECKING:
    from .state import Secrets

ADMIN = "/hatchet-admin"
CONFIG_DIR = "/config"  # the hatchet_config volume: the engine's keys, which sign tokens
TENANT_SLUG = "default"
TOKEN_SECRET = "hatchet_token"
ATTEMPTS = 30  # right after start: Postgres's first-init restart, Hatchet's migrations
DELAY_SECONDS = 1.0

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")

Sleep = Callable[[float], None]


def psql(exec_: Exec, database: str, sql: str) -> CommandResult:
    """One statement through psql in the postgres container, unaligned rows without headers."""
    return exec_(POSTGRES, ["psql", "-U", POSTGRES_USER, "-d", database, "-v", "ON_ERROR_STOP=1",
                            "-tAc", sql])


def _reason(result: CommandResult) -> str:
    return last_line(result.stderr) or f"exit code {result.exit_code}"


def _retry(attempt: Callable[[], CommandResult], done: Callable[[CommandResult], bool],
           attempts: int, delay: float, sleep: Sleep) -> tuple[bool, CommandResult]:
    result = attempt()
    for _ in range(max(attempts, 1) - 1):
        if done(result):
            break
        sleep(delay)
        result = attempt()
    return done(result), result


def ensure_database(exec_: Exec, *, attempts: int = ATTEMPTS, delay: float = DELAY_SECONDS,
                    sleep: Sleep = time.sleep) -> list[str]:
    """Create the `hatchet` database unless it exists; return what was done."""
    query = f"SELECT 1 FROM pg_database WHERE datname = '{HATCHET_DATABASE}'"
    for _ in range(max(attempts, 1)):  # a Postgres restarting after its first init drops both
        ok, found = _retry(lambda: psql(exec_, POSTGRES_DB, query), lambda r: r.ok, attempts, delay, sleep)
        if not ok:
            raise BootstrapError(f"cannot query Postgres for the {HATCHET_DATABASE} database: {_reason(found)}",
                                 "see `compose-tunnel logs postgres`")
        if found.stdout.strip() == "1":
            return []
        created = psql(exec_, POSTGRES_DB, f'CREATE DATABASE "{HATCHET_DATABASE}"')
        if created.ok:
            return [f"database {HATCHET_DATABASE} created"]
        sleep(delay)  # then look again: it may exist now (an init script), or the server be back
    raise BootstrapError(f"cannot create the {HATCHET_DATABASE} database: {_reason(created)}",
                         "see `compose-tunnel logs postgres`")


def default_tenant(exec_: Exec, *, attempts: int = ATTEMPTS, delay: float = DELAY_SECONDS,
                   sleep: Sleep = time.sleep) -> str:
    """The id of the tenant Hatchet creates on its first start (slug `default`)."""
    query = f"SELECT id FROM \"Tenant\" WHERE slug = '{TENANT_SLUG}'"
    ok, result = _retry(lambda: psql(exec_, HATCHET_DATABASE, query),
                        lambda r: r.ok and bool(r.stdout.strip()), attempts, delay, sleep)
    if not ok:
        reason = _reason(result) if not result.ok else "the Tenant table has no such row"
        raise BootstrapError(f"no default tenant in the {HATCHET_DATABASE} database: {reason}",
                             "Hatchet creates it on its first start; see `compose-tunnel logs hatchet`")
    tenant = result.stdout.strip().splitlines()[0].strip()
    if not _UUID.match(tenant):
        raise BootstrapError(f"the default tenant's id is not a UUID: {tenant[:40]!r}",
                             "is the hatchet database Hatchet's own? see `compose-tunnel logs hatchet`")
    return tenant


def token_tenant(token: str) -> str | None:
    """The tenant a Hatchet token was issued for (its JWT `sub` claim), or None if unreadable."""
    if not _JWT.match(token):
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None


def create_token(exec_: Exec, tenant: str) -> str:
    """`hatchet-admin token create` for the tenant; the token is the JWT line it prints."""
    args = [ADMIN, "token", "create", "--config", CONFIG_DIR, "--tenant-id", tenant]
    result = exec_(HATCHET, args)
    if not result.ok:
        raise BootstrapError(f"hatchet-admin token create failed: {_reason(result)}",
                             "see `compose-tunnel logs hatchet`")
    tokens = [line.strip() for line in result.stdout.splitlines() if _JWT.match(line.strip())]
    if not tokens:
        raise BootstrapError("hatchet-admin token create printed no token",
                             "see `compose-tunnel logs hatchet`")
    return tokens[-1]


def ensure_token(exec_: Exec, known: str | None, **retry) -> tuple[str, list[str]]:
    """The client token for the default tenant: the known one when it belongs to it, else new."""
    tenant = default_tenant(exec_, **retry)
    if known and token_tenant(known) == tenant:
        return known, []
    token = create_token(exec_, tenant)
    if token_tenant(token) not in (tenant, None):
        raise BootstrapError("hatchet-admin created a token for another tenant than the default one",
                             "see `compose-tunnel logs hatchet`; `compose-tunnel up` tries again")
    return token, ["client token " + ("replaced: the stored one was for another tenant" if known
                                      else "created for the default tenant")]


def run_database_step(exec_: Exec, secrets: "Secrets") -> list[str]:
    return ensure_database(exec_)


def run_token_step(exec_: Exec, secrets: "Secrets") -> list[str]:
    token, actions = ensure_token(exec_, secrets.get(TOKEN_SECRET))
    secrets.values[TOKEN_SECRET] = token
    return actions


STEPS = (
    Step(
        name="hatchet database",
        services=(POSTGRES,),
        run=run_database_step,
        describe=f"create the {HATCHET_DATABASE} database in Postgres if it is missing",
    ),
    Step(
        name="hatchet token",
        services=(HATCHET,),
        run=run_token_step,
        describe="create a Hatchet client token for the default tenant (HATCHET_CLIENT_TOKEN in server.env)",
        owns=(TOKEN_SECRET,),
        after_previous=True,  # Hatchet exits when its database is missing
    ),
)
