"""The Hatchet bootstraps against a recorded fake of psql and hatchet-admin (no Docker).

The fake answers like the real tools where the bootstrap reads them: psql -tA prints bare rows
and "ERROR: ..." on stderr with exit 1; hatchet-admin prints the token alone on stdout.
"""

from __future__ import annotations

import base64
import json

import pytest

from compose_tunnel import hatchet
from compose_tunnel.bootstrap import BootstrapError, CommandResult
from compose_tunnel.state import Secrets
from compose_tunnel.workflows.steps import steps_for

TENANT = "707d0855-80ab-4e1f-a156-f1c4546cbf52"
OTHER_TENANT = "11111111-2222-4333-8444-555555555555"


def jwt(claims: dict) -> str:
    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'ES256', 'kid': 'k'})}.{part(claims)}.{part({'sig': 'x' * 40})}"


class FakeStack:
    """postgres (psql) and hatchet (/hatchet-admin) as the bootstrap sees them."""

    def __init__(self, *, databases=("reflector",), tenant: str | None = TENANT) -> None:
        self.databases = set(databases)
        self.tenant = tenant
        self.calls: list[tuple[str, list[str]]] = []
        self.psql_failures = 0  # the next N psql calls fail to connect (a restarting server)
        self.admin_result: CommandResult | None = None
        self.tokens_created = 0

    def __call__(self, service: str, args: list[str]) -> CommandResult:
        self.calls.append((service, args))
        if service == "postgres":
            return self.psql(args)
        if service == "hatchet":
            return self.admin(args)
        return CommandResult(1, "", f"service {service} is not running")

    def psql(self, args: list[str]) -> CommandResult:
        assert args[:3] == ["psql", "-U", "reflector"] and "-tAc" in args
        if self.psql_failures:
            self.psql_failures -= 1
            return CommandResult(2, "", 'psql: error: connection to server on socket failed\n')
        database, sql = args[args.index("-d") + 1], args[-1]
        if database not in self.databases:
            return CommandResult(2, "", f'psql: error: FATAL:  database "{database}" does not exist\n')
        if sql.startswith("SELECT 1 FROM pg_database"):
            return CommandResult(0, "1\n" if "hatchet" in self.databases else "", "")
        if sql.startswith("CREATE DATABASE"):
            self.databases.add("hatchet")
            return CommandResult(0, "", "")
        if 'FROM "Tenant"' in sql:
            if self.tenant is None:
                return CommandResult(1, "", 'ERROR:  relation "Tenant" does not exist\n')
            return CommandResult(0, f"{self.tenant}\n", "")
        raise AssertionError(f"unexpected SQL {sql!r}")

    def admin(self, args: list[str]) -> CommandResult:
        if self.admin_result is not None:
            return self.admin_result
        assert args[:5] == ["/hatchet-admin", "token", "create", "--config", "/config"]
        tenant = args[args.index("--tenant-id") + 1]
        if tenant != self.tenant:
            return CommandResult(1, "", f"Error: tenant {tenant} not found\n")
        self.tokens_created += 1
        return CommandResult(0, jwt({"sub": tenant, "n": self.tokens_created}) + "\n", "")


def no_sleep(_seconds: float) -> None:
    pass


RETRY = {"attempts": 3, "delay": 0, "sleep": no_sleep}


def test_database_created_when_missing_and_left_alone_when_present():
    stack = FakeStack()
    assert hatchet.ensure_database(stack, **RETRY) == ["database hatchet created"]
    assert "hatchet" in stack.databases
    calls = len(stack.calls)
    assert hatchet.ensure_database(stack, **RETRY) == []
    assert len(stack.calls) == calls + 1  # one query, nothing created


def test_database_check_retries_while_postgres_restarts_after_its_first_init():
    stack = FakeStack()
    stack.psql_failures = 2
    assert hatchet.ensure_database(stack, **RETRY) == ["database hatchet created"]


def test_database_creation_cut_by_the_restart_after_the_first_init_is_looked_at_again():
    """The query answered by the init's temporary server, the CREATE cut by its shutdown, and
    meanwhile the init script made the database: found on the next look, nothing created."""
    stack = FakeStack()
    original = stack.psql

    def psql(args):
        if args[-1].startswith("CREATE DATABASE"):
            stack.databases.add("hatchet")  # the init script's, just before the shutdown
            return CommandResult(2, "", "server closed the connection unexpectedly\n")
        return original(args)

    stack.psql = psql
    assert hatchet.ensure_database(stack, **RETRY) == []
    assert "hatchet" in stack.databases


def test_postgres_never_answering_is_a_bootstrap_error_quoting_psql():
    stack = FakeStack()
    stack.psql_failures = 10
    with pytest.raises(BootstrapError, match="cannot query Postgres .*connection to server"):
        hatchet.ensure_database(stack, **RETRY)


def test_token_created_for_the_default_tenant_then_reused():
    stack = FakeStack(databases=("reflector", "hatchet"))
    token, actions = hatchet.ensure_token(stack, None, **RETRY)
    assert hatchet.token_tenant(token) == TENANT
    assert actions == ["client token created for the default tenant"]
    again, actions = hatchet.ensure_token(stack, token, **RETRY)
    assert (again, actions) == (token, [])
    assert stack.tokens_created == 1
    assert stack.calls[-1][0] == "postgres"  # the replay only asked for the tenant id


def test_a_stored_token_of_another_tenant_is_replaced():
    stack = FakeStack(databases=("reflector", "hatchet"))
    stale = jwt({"sub": OTHER_TENANT})
    token, actions = hatchet.ensure_token(stack, stale, **RETRY)
    assert token != stale and hatchet.token_tenant(token) == TENANT
    assert actions == ["client token replaced: the stored one was for another tenant"]


def test_no_default_tenant_yet_is_retried_then_a_clear_error():
    stack = FakeStack(databases=("reflector", "hatchet"), tenant=None)
    with pytest.raises(BootstrapError) as caught:
        hatchet.ensure_token(stack, None, **RETRY)
    assert str(caught.value).startswith('no default tenant in the hatchet database: ERROR:  relation "Tenant"')
    assert "compose-tunnel logs hatchet" in str(caught.value)
    tenant_queries = [args for service, args in stack.calls if service == "postgres"]
    assert len(tenant_queries) == 3


def test_hatchet_admin_failing_or_printing_no_token_is_a_clear_error():
    stack = FakeStack(databases=("reflector", "hatchet"))
    stack.admin_result = CommandResult(1, "", "Error: could not load config from /config\n")
    with pytest.raises(BootstrapError, match="token create failed: Error: could not load config"):
        hatchet.ensure_token(stack, None, **RETRY)
    stack.admin_result = CommandResult(0, "\n", "")
    with pytest.raises(BootstrapError, match="printed no token"):
        hatchet.ensure_token(stack, None, **RETRY)


def test_the_token_is_the_jwt_line_even_after_log_lines():
    stack = FakeStack(databases=("reflector", "hatchet"))
    token = jwt({"sub": TENANT})
    stack.admin_result = CommandResult(0, f"loading config from /config\n{token}\n", "")
    assert hatchet.ensure_token(stack, None, **RETRY)[0] == token


def test_errors_never_carry_the_token():
    stack = FakeStack(databases=("reflector", "hatchet"))
    token = jwt({"sub": OTHER_TENANT})
    stack.admin_result = CommandResult(0, token + "\n", "")  # a token for the wrong tenant
    with pytest.raises(BootstrapError) as caught:
        hatchet.ensure_token(stack, None, **RETRY)
    assert token not in str(caught.value) and "another tenant" in str(caught.value)


@pytest.mark.parametrize("text", ["", "not-a-token", "a.b", "a.!!!.c", "a." + "e30" + ".c",
                                  "a." + base64.urlsafe_b64encode(b"[1]").decode().rstrip("=") + ".c"])
def test_token_tenant_of_unreadable_tokens_is_none(text):
    assert hatchet.token_tenant(text) is None


def test_the_token_step_stores_the_token_and_owns_it():
    stack = FakeStack(databases=("reflector", "hatchet"))
    database_step, token_step = hatchet.STEPS
    assert database_step.services == ("postgres",) and token_step.services == ("hatchet",)
    secrets = Secrets()
    actions = token_step.run(stack, secrets)
    assert actions and hatchet.token_tenant(secrets.values["hatchet_token"]) == TENANT
    assert token_step.owns == ("hatchet_token",)
    assert secrets.forget(token_step.owns) == ["hatchet_token"] and "hatchet_token" not in secrets.values


class PlanWith:
    def __init__(self, *names: str) -> None:
        self.names = names

    def has(self, name: str) -> bool:
        return name in self.names


def test_steps_run_garage_first_and_hatchet_always():
    assert [s.name for s in steps_for(PlanWith("base", "garage"))] == [
        "garage", "hatchet database", "hatchet token"]
    assert [s.name for s in steps_for(PlanWith("base"))] == ["hatchet database", "hatchet token"]
