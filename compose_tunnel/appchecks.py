"""`doctor`'s checks of the app's own parts: Reflector's API answers /health, Hatchet accepts
the client token, Garage's stored key may read and write the bucket, and how participants'
devices trust Caddy's internal CA."""

from __future__ import annotations

from . import probes
from .checks import FAIL, HTTP_TIMEOUT, OK, SKIP, WARN, Install, Result, docker_failure, side_by_side
from .dockercli import DockerTimeout
from .errors import last_line

CA_ROOT = "/data/caddy/pki/authorities/local/root.crt"


def check_app_health(install: Install) -> Result:
    """Reflector's API answers its /health."""
    name = "app health"
    answer = probes.request(("127.0.0.1", 1250), "/health", host="localhost", tls=False, timeout=HTTP_TIMEOUT)
    if answer.ok:
        return Result(name, OK, "the API answers /health")
    return Result(name, FAIL, f"the API's /health on 127.0.0.1:1250: {answer.describe()}",
                  "`compose-tunnel logs server` shows why")


def check_hatchet_token(install: Install) -> Result:
    """Hatchet accepts the client token the server and workers use."""
    from .hatchet import TOKEN_SECRET, token_tenant
    from .services import HATCHET_DASHBOARD_PORT

    name = "hatchet token"
    token = install.secrets.get(TOKEN_SECRET)
    if not token:
        return Result(name, FAIL, "no Hatchet client token is stored", "run `compose-tunnel up`: it creates one")
    tenant = token_tenant(token)
    if not tenant:
        return Result(name, FAIL, "the stored Hatchet client token is not a token Hatchet issued",
                      "run `compose-tunnel up`: it creates one for the default tenant")
    answer = probes.request(("127.0.0.1", HATCHET_DASHBOARD_PORT), f"/api/v1/tenants/{tenant}/worker?limit=1",
                            host=f"localhost:{HATCHET_DASHBOARD_PORT}", tls=False, timeout=HTTP_TIMEOUT,
                            headers={"Authorization": f"Bearer {token}"})
    if answer.ok:
        return Result(name, OK, "Hatchet accepts the client token")
    if answer.status in (401, 403):
        return Result(name, FAIL, f"Hatchet rejects the client token ({answer.describe()})",
                      "run `compose-tunnel up`: it creates a new one for the default tenant")
    return Result(name, FAIL, f"Hatchet's API on 127.0.0.1:{HATCHET_DASHBOARD_PORT}: {answer.describe()}",
                  "`compose-tunnel logs hatchet` shows why")


def check_garage_key(install: Install) -> Result:
    """Garage knows the stored key, with its secret, allowed to read and write the bucket."""
    from .garage import BUCKET, KEY_NAME, SERVICE, has_read_write, parse_key

    name = "garage key"
    if not install.has("garage"):
        return Result(name, SKIP, "no Garage")
    key_id, secret = install.secrets.get("garage_key_id"), install.secrets.get("garage_secret_key")
    fix = "run `compose-tunnel up`: it bootstraps Garage's key and bucket again"
    if not (key_id and secret):
        return Result(name, FAIL, "no Garage key is stored", fix)
    container = install.docker.container(SERVICE)
    try:
        key, bucket = side_by_side(
            lambda: install.docker.run("exec", container, "/garage", "key", "info", KEY_NAME, "--show-secret"),
            lambda: install.docker.run("exec", container, "/garage", "bucket", "info", BUCKET))
    except DockerTimeout as error:
        return docker_failure(name, error)
    if key.returncode != 0:
        return Result(name, FAIL, f"Garage does not know the key {KEY_NAME}: {last_line(key.stderr)}", fix)
    try:
        known = parse_key(key.stdout)
    except ValueError:
        return Result(name, FAIL, "Garage's `key info` answered in an unknown format", fix)
    if (known.key_id, known.secret) != (key_id, secret):
        return Result(name, FAIL, f"Garage's key {KEY_NAME} is not the one stored for the server", fix)
    if bucket.returncode != 0 or not has_read_write(bucket.stdout, key_id):
        return Result(name, FAIL, f"the stored key may not read and write the bucket {BUCKET}", fix)
    return Result(name, OK, f"the stored key may read and write the bucket {BUCKET}")


def check_caddy_ca(install: Install) -> Result:
    """How participants' devices trust Caddy's internal CA (Safari and iOS refuse the page
    until they do); its fingerprint, to compare on the device."""
    import hashlib
    import ssl

    name = "caddy CA"
    if not install.has("caddy") or install.settings.domain:
        return Result(name, SKIP, "no internal CA (public certificate or no Caddy)")
    try:
        out = install.docker.run("exec", install.docker.container("caddy"), "cat", CA_ROOT)
    except DockerTimeout as error:
        return docker_failure(name, error)
    export = f"`compose-tunnel exec caddy cat {CA_ROOT} > caddy-root.crt`"
    if out.returncode != 0 or "BEGIN CERTIFICATE" not in out.stdout:
        return Result(name, WARN, "Caddy has no internal CA yet (it makes one on its first HTTPS request)",
                      f"open the app once, then {export}")
    try:
        digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(out.stdout.strip())).hexdigest().upper()
    except ValueError:
        return Result(name, WARN, "Caddy's root CA certificate is unreadable", f"look at it: {export}")
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, 16, 2)) + ":…"
    return Result(name, OK, f"Caddy's root CA (SHA-256 {fingerprint}): to trust it on a participant's "
                  f"device, {export}, send the file to the device and install it; on iOS also turn it on "
                  "in Settings > General > About > Certificate Trust Settings")
