"""The real Reflector app under compose-tunnel, used through the tunnel in a real browser.

Reflector's own server, worker, beat and web, built from its source (reflector_backend.py,
reflector_frontend.py), replace the stand-ins (a second --profiles-dir, profiles-real-app/).
Real: Docker Engine, Compose v2, Caddy, PostgreSQL, Redis, dnsmasq, chromium (Playwright), and
Reflector. Stand-ins where no binary exists: Hatchet (so the Hatchet workers, which need its gRPC
API), LiveKit, Garage. The tunnel is a TCP relay on loopback (a non-443 public port, as
playit.gg gives) and the browser resolves the tunnel's host name to it.

The module runs one project through the modes a user goes through: public mode (the tunnel
guide's stack), then password mode, then a replayed `up` and a `rebuild`, each seen in the
browser. COMPOSE_TUNNEL_SKIP_REAL_APP=1 skips it (a developer's fast run; CI never sets it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.browser import BrowserUnavailable, Chromium, Recorder
from engine.reflector_source import reflector_snapshot
from engine.relays import TcpRelay
from engine.wsclient import https_request
from engine.test_stack import (  # noqa: F401 - dns_server is a fixture (dnsmasq answering UDP_HOST)
    TEST_PROFILES, UDP_HOST, dns_server)

ROOT = Path(__file__).resolve().parents[2]
REAL_APP_PROFILES = ROOT / "tests" / "engine" / "profiles-real-app"
PROJECT = "ct-test-real-app"
TCP_HOST, TCP_PUBLIC = "reflector.tunnel.test", 19057
UDP_PORT = 19143
URL = f"https://{TCP_HOST}:{TCP_PUBLIC}"
ADMIN_EMAIL = "admin@localhost"
PASSWORD = "correct horse $battery \"staple\""
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UI_TIMEOUT_MS = 60_000

# What the browser may report without anything being broken, each with its reason (substring
# of the problem -> why). A participant who clicked through the certificate warning:
CLICKED_THROUGH = {
    "An SSL certificate error occurred when fetching the script":
        "chromium registers no service worker (Reflector's /service-worker.js) from a site whose "
        "certificate was only clicked through; the app does not depend on it (audio requests "
        "carry their token in the URL). A browser that trusts Caddy's root CA registers it.",
}
# What a stand-in explains: the upload's last step asks Hatchet to start the file pipeline.
_NO_PIPELINE = ("the server stores the upload, then asks Hatchet to start the file pipeline; the "
                "Hatchet stand-in has no workflow API (404), so the request ends 500")
HATCHET_STANDIN = {"/record/upload": _NO_PIPELINE,
                   "Error Internal Server Error": _NO_PIPELINE + ", which the page logs"}
# The wrong password of the sign-in test: the app's own refusal.
WRONG_PASSWORD = {"/api/auth/callback/credentials": "NextAuth answers the wrong password 401"}

pytestmark = pytest.mark.engine


def tool(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def up_args(dns_port: int, *extra: str) -> list[str]:
    """The tunnel guide's stack (`--cpu --livekit --garage --tunnels TCP,UDP`) on the test
    images, the real app's overlay last."""
    return [
        "up", "--cpu", "--livekit", "--garage",
        "--tunnels", f"{TCP_HOST}:{TCP_PUBLIC},{UDP_HOST}:{UDP_PORT}",
        "--dns-server", f"127.0.0.1:{dns_port}",
        "--profiles-dir", str(TEST_PROFILES), "--profiles-dir", str(REAL_APP_PROFILES),
        "--project-name", PROJECT, "--publish-ip", "127.0.0.1", "--wait-timeout", "300", *extra,
    ]


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


def in_service(service: str, *args: str, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess:
    return docker("exec", f"{PROJECT}-{service}-1", *args, check=check, timeout=timeout)


def psql(sql: str, database: str = "reflector") -> str:
    return in_service("postgres", "psql", "-X", "-U", "reflector", "-d", database, "-tAc",
                      sql).stdout.strip()


def started_at(service: str) -> str:
    return docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}}",
                  f"{PROJECT}-{service}-1").stdout.strip()


@dataclass
class App:
    workdir: Path  # the directory compose-tunnel runs in (its .compose-tunnel/ is inside)
    dns_port: int

    def up(self, *extra: str) -> subprocess.CompletedProcess:
        result = tool(*up_args(self.dns_port, *extra), cwd=self.workdir)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def run(self, *args: str) -> subprocess.CompletedProcess:
        result = tool(*args, cwd=self.workdir)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def secrets(self) -> dict:
        return tomllib.loads((self.workdir / ".compose-tunnel" / "secrets.toml").read_text())


@pytest.fixture(scope="module")
def chromium():
    try:
        with Chromium() as launcher:
            yield launcher
    except BrowserUnavailable as error:
        if os.environ.get("COMPOSE_TUNNEL_REQUIRE_ENGINE") == "1":
            pytest.fail(str(error), pytrace=False)
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def participant(chromium):
    """chromium as a participant who clicked through the certificate warning."""
    opened = chromium.launch({TCP_HOST: "127.0.0.1"})
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def trusting(chromium, app):
    """chromium with this install's Caddy root CA in its trust store (the README's advice for
    Safari/iOS): nothing may fail, certificate errors included."""
    root = in_service("caddy", "cat", "/data/caddy/pki/authorities/local/root.crt").stdout
    opened = chromium.launch({TCP_HOST: "127.0.0.1"}, trusted_ca=root.encode())
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def app(engine, standin_images, debian_images, reflector_images, docker_config, dns_server,  # noqa: F811
        tmp_path_factory):
    """One project in public mode (the tunnel guide's stack) with the real app; the tests below
    move it through the modes in order. Torn down, volumes included, after the module."""
    workdir = tmp_path_factory.mktemp("real-app")
    made = App(workdir, dns_server.port)
    with TcpRelay(listen=("127.0.0.1", TCP_PUBLIC), target=("127.0.0.1", 443)):
        try:
            made.first = made.up()
            # What a participant gets the moment `up` says ready.
            made.health_at_ready = https_request(TCP_PUBLIC, sni=TCP_HOST,
                                                 host=f"{TCP_HOST}:{TCP_PUBLIC}", path="/health")
            yield made
        finally:
            tool("down", "--volumes", cwd=workdir)


@pytest.fixture(scope="module")
def signed_in(trusting):
    """The browser profile that signs in during the password-mode test, kept for the later ones
    (the same session must survive a replayed up and a rebuild)."""
    context = trusting.context()
    yield context
    context.close()


def open_page(context, recorder: Recorder, path: str = "/"):
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    recorder.attach(page)
    page.goto(URL + path, wait_until="networkidle")
    return page


def assert_nothing_failed(recorder: Recorder, explained: dict[str, str] | None = None) -> None:
    unexplained = recorder.unexplained(explained or {})
    assert not unexplained, "the browser saw:\n" + "\n".join(map(str, unexplained))


def create_transcript_from_the_ui(page) -> str:
    """Clicks "Upload File" on the new-recording page: the UI creates the transcript through the
    API and goes to its upload page. Returns its id."""
    upload = page.get_by_role("button", name="Upload File")
    with page.expect_response(lambda r: r.url == f"{URL}/v1/transcripts"
                              and r.request.method == "POST") as created:
        upload.click()
    assert created.value.status == 200, created.value.text()
    transcript_id = created.value.json()["id"]
    page.wait_for_url(re.compile(rf"/transcripts/{transcript_id}/upload$"))
    return transcript_id


def follows_events(page, recorder: Recorder, url: str) -> None:
    """The page opened a WebSocket to `url` (through Caddy, on the API's /v1) and keeps it open."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1000)  # lets Playwright deliver the page's events (a sleep would not)
    opened = [socket for socket in recorder.sockets if socket.url == url]
    assert opened and not any(socket.closed for socket in opened), recorder.sockets


# ---- 1. public mode: the app itself, through the tunnel -----------------------------------

def test_up_reaches_ready_with_the_real_server_workers_and_web(app):
    out = app.first.stdout
    assert re.search(r"\] ready (\d+)/\1$", out, re.MULTILINE), out
    # Ready means the app answers: the server's entrypoint migrates before it serves, and the
    # product's health check on the server makes `up` wait for that (without it: Caddy's 502).
    assert app.health_at_ready.status == 200, (app.health_at_ready.status, app.health_at_ready.text)
    # The migrations ran to head in our Postgres, by the server's own entrypoint.
    heads = in_service("server", "uv", "run", "alembic", "heads").stdout.split()[0]
    assert psql("SELECT version_num FROM alembic_version") == heads
    # The worker answers a Celery ping over our Redis.
    ping = in_service("worker", "uv", "run", "celery", "-A", "reflector.worker.app", "inspect",
                      "ping", "--timeout", "10", timeout=120)
    assert "pong" in ping.stdout, ping.stdout + ping.stderr
    assert "beat: Starting" in docker("logs", f"{PROJECT}-beat-1").stderr


def test_the_apps_health_answers_through_the_tunnel_and_caddy(app):
    response = https_request(TCP_PUBLIC, sni=TCP_HOST, host=f"{TCP_HOST}:{TCP_PUBLIC}",
                             path="/health")
    assert response.status == 200, response.text
    assert json.loads(response.body) == {"status": "healthy"}  # Reflector's own /health
    assert response.headers.get("server") == "uvicorn"  # the app's server, through Caddy:
    assert b"Caddy Local Authority" in response.peer_cert  # TLS is Caddy's internal CA


def test_public_mode_a_participant_uses_the_app_with_no_sign_in(app, participant):
    """A participant who clicked through the certificate warning: the UI renders with no
    redirect to a sign-in, and starting a new transcript from it creates it through the API."""
    recorder = Recorder()
    context = participant.context()
    try:
        page = open_page(context, recorder)
        assert page.url == f"{URL}/transcripts/new", page.url  # "/" goes there; no sign-in
        assert page.get_by_role("button", name="Log in").count() == 0
        page.get_by_text("Welcome to Reflector").wait_for()
        transcript_id = create_transcript_from_the_ui(page)
        assert psql(f"SELECT user_id IS NULL FROM transcript WHERE id = '{transcript_id}'") == "t"
        follows_events(page, recorder,
                       f"wss://{TCP_HOST}:{TCP_PUBLIC}/v1/transcripts/{transcript_id}/events")
        assert_nothing_failed(recorder, CLICKED_THROUGH)
    finally:
        context.close()


def test_public_mode_nothing_fails_in_a_browser_that_trusts_caddys_ca(app, trusting):
    recorder = Recorder()
    context = trusting.context()
    try:
        page = open_page(context, recorder)
        create_transcript_from_the_ui(page)
        page.wait_for_load_state("networkidle")
        # Reflector's service worker registers once the certificate is trusted.
        page.wait_for_function("navigator.serviceWorker.getRegistrations()"
                               ".then(found => found.length === 1)")
        assert_nothing_failed(recorder)
    finally:
        context.close()


def test_a_recording_uploaded_through_the_ui_reaches_the_servers_storage(app, trusting):
    """Stretch: the snapshot's test recording, uploaded from the transcript's upload page, is
    stored by the server in its data volume and the transcript becomes `uploaded`. Processing it
    is a Hatchet workflow: the Hatchet stand-in has no gRPC API, so it stops there."""
    recording = reflector_snapshot().server / "tests" / "records" / "test_short.wav"
    recorder = Recorder()
    context = trusting.context()
    try:
        page = open_page(context, recorder)
        transcript_id = create_transcript_from_the_ui(page)
        with page.expect_response(lambda r: "/record/upload" in r.url) as uploaded:
            page.locator("input[type=file]").set_input_files(recording)
        # One chunk (the file is under 50 MB), kept as upload.<the blob's extension>, whole.
        stored = in_service("server", "ls", f"/app/data/{transcript_id}/").stdout.split()
        assert len(stored) == 1 and stored[0].startswith("upload."), stored
        size = in_service("server", "stat", "-c", "%s", f"/app/data/{transcript_id}/{stored[0]}")
        assert int(size.stdout) == recording.stat().st_size
        assert psql(f"SELECT status FROM transcript WHERE id = '{transcript_id}'") == "uploaded"
        # Then the server asks Hatchet to start the file pipeline, which the stand-in cannot.
        assert uploaded.value.status == 500
        assert "start_workflow" in docker("logs", "--tail", "200", f"{PROJECT}-server-1").stderr
        assert_nothing_failed(recorder, HATCHET_STANDIN)
    finally:
        context.close()


# ---- 2. password mode -----------------------------------------------------------------------

def admin_hash(app: App) -> str:
    """ADMIN_PASSWORD_HASH as the server reads it (server.env is a Compose env file: $$ -> $)."""
    for line in (app.workdir / ".compose-tunnel" / "server.env").read_text().splitlines():
        if line.startswith("ADMIN_PASSWORD_HASH="):
            return line.partition("=")[2].replace("$$", "$")
    raise AssertionError("server.env has no ADMIN_PASSWORD_HASH")


def sign_in(page, password: str) -> None:
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_password_mode_signs_in_through_the_ui_and_refuses_a_wrong_password(app, signed_in,
                                                                              tmp_path):
    password_file = tmp_path / "admin-password"
    password_file.write_text(PASSWORD + "\n")
    changed = app.up("--password-file", str(password_file))
    assert re.search(r"auth: \S+ -> password", changed.stdout), changed.stdout
    secret_hash = admin_hash(app)
    recorder = Recorder()
    page = open_page(signed_in, recorder)
    # Signed out: the app offers only the way in, which leads to its sign-in page.
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/login(\?|$)"))
    sign_in(page, PASSWORD + "x")
    page.get_by_text("Invalid email or password").wait_for()
    assert "/login" in page.url
    sign_in(page, PASSWORD)
    page.wait_for_url(f"{URL}/transcripts/new")
    transcript_id = create_transcript_from_the_ui(page)
    owner = psql(f"SELECT u.email FROM transcript t JOIN \"user\" u ON u.id = t.user_id "
                 f"WHERE t.id = '{transcript_id}'")
    assert owner == ADMIN_EMAIL
    # Signed in, the page follows the user's events too, with the API token as the WebSocket's
    # subprotocol (the server closes it at once without a valid one).
    follows_events(page, recorder, f"wss://{TCP_HOST}:{TCP_PUBLIC}/v1/events")
    assert_nothing_failed(recorder, WRONG_PASSWORD)
    # No page, script or API answer carried the hash (nor its digest alone).
    digest = secret_hash.rsplit("$", 1)[-1]
    leaked = [url for url, body in recorder.bodies if digest.encode() in body]
    assert not leaked and digest not in page.content(), leaked
    page.close()


# ---- 3. it keeps working: no secret rotated under the app -----------------------------------

def assert_still_signed_in(context) -> None:
    """The browser's existing session (NextAuth's cookie, sealed with NEXTAUTH_SECRET, holding an
    API token signed with SECRET_KEY) still reaches the app and the API as the admin."""
    recorder = Recorder()
    page = open_page(context, recorder)
    transcript_id = create_transcript_from_the_ui(page)
    owner = psql(f"SELECT u.email FROM transcript t JOIN \"user\" u ON u.id = t.user_id "
                 f"WHERE t.id = '{transcript_id}'")
    assert owner == ADMIN_EMAIL
    follows_events(page, recorder, f"wss://{TCP_HOST}:{TCP_PUBLIC}/v1/events")
    assert_nothing_failed(recorder)
    page.close()


def test_a_replayed_up_keeps_the_session_and_changes_nothing(app, signed_in):
    before = {service: started_at(service) for service in ("server", "web", "worker", "beat")}
    secrets = app.secrets()
    replay = app.run("up")
    assert "replaying saved configuration" in replay.stdout
    assert {service: started_at(service) for service in before} == before
    assert app.secrets() == secrets
    assert_still_signed_in(signed_in)


def test_after_rebuild_the_same_session_still_works(app, signed_in):
    secrets = app.secrets()
    app.run("rebuild")
    assert app.secrets() == secrets
    assert_still_signed_in(signed_in)
