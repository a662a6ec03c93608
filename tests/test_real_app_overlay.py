"""The engine tests' real-app overlay (tests/engine/profiles-real-app/) runs Reflector's own
images as the product runs the published ones: its own commands, the product's health checks
(only their pace differs), nothing of the stand-ins left."""

from __future__ import annotations

from pathlib import Path

from compose_tunnel.merge import merge_files
from compose_tunnel.profiles import builtin_dir

TESTS = Path(__file__).parent / "engine"
REAL_APP = ("server", "worker", "beat", "web")


def merged() -> dict:
    return merge_files([builtin_dir() / "base.yml", TESTS / "profiles" / "base.yml",
                        TESTS / "profiles-real-app" / "base.yml"])["services"]


def test_the_real_app_runs_its_images_own_commands():
    services = merged()
    for name in REAL_APP:
        assert "command" not in services[name], name
        assert services[name]["image"].startswith("compose-tunnel-test/reflector-"), name
        assert services[name]["pull_policy"] == "never"
    # The Hatchet workers stay stand-ins: they need Hatchet's gRPC API.
    assert services["hatchet-worker-llm"]["image"] == "compose-tunnel-test/standin:1"


def test_the_real_app_is_checked_by_the_products_own_health_checks():
    product = merge_files([builtin_dir() / "base.yml"])["services"]
    services = merged()
    assert services["server"]["healthcheck"]["test"] == product["server"]["healthcheck"]["test"]
    # The web has none in the product: its image's own HEALTHCHECK is what runs, in both.
    assert "healthcheck" not in product["web"] and "healthcheck" not in services["web"]


def test_the_real_app_is_upgraded_as_the_product_says():
    """`upgrade` rolls the real app as it rolls the product's: the same x-rollout, the real
    migrations (the stand-in overlay's own record-only one replaced)."""
    product = merge_files([builtin_dir() / "base.yml"])["services"]
    services = merged()
    for name in REAL_APP:
        assert services[name]["x-rollout"] == product[name]["x-rollout"], name
    assert product["server"]["x-rollout"]["migrate"] == ["uv", "run", "alembic", "upgrade", "head"]
