"""What a backup holds, in one table: each Postgres database, each volume (which service's
container reaches it, and where), and the workdir's files. `backup` takes them in this order;
`restore` puts them back from the same table.

Not taken: Redis (Celery's queue and caches, made anew), Caddy's data (its local CA and
certificates, which it makes again on start) and the rendered files (made again from the saved
configuration and secrets).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import state
from .services import HATCHET_DATABASE, POSTGRES, POSTGRES_DB


@dataclass(frozen=True)
class Database:
    name: str

    @property
    def member(self) -> str:
        return f"postgres/{self.name}.dump"


@dataclass(frozen=True)
class VolumeCopy:
    volume: str  # the compose volume's name
    service: str  # whose container mounts it
    path: str  # where, in that container
    what: str
    profile: str | None = None  # taken only when this profile is applied

    @property
    def member(self) -> str:
        return f"volumes/{self.volume}.tar"

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0] or "/"


DATABASES = (Database(POSTGRES_DB), Database(HATCHET_DATABASE))
POSTGRES_SERVICE = POSTGRES
GARAGE_META = VolumeCopy("garage_meta", "garage", "/var/lib/garage/meta",
                         "Garage's metadata (node key, layout, buckets, keys) from its own snapshot",
                         profile="garage")
VOLUMES = (
    VolumeCopy("server_data", "server", "/app/data", "the server's data volume"),
    VolumeCopy("hatchet_config", "hatchet", "/config",
               "Hatchet's configuration and keys (its client tokens are checked against them)"),
    GARAGE_META,
    VolumeCopy("garage_data", "garage", "/var/lib/garage/data",
               "Garage's data blocks (the recordings)", profile="garage"),
)
WORKDIR_FILES = (
    (state.CONFIG, "the saved configuration"),
    (state.SECRETS, "the secrets (database password, Garage key, Hatchet token, SECRET_KEY, admin hash)"),
    (state.APPLIED, "what `up` last applied"),
)


def workdir_member(name: str) -> str:
    return f"workdir/{name}"


def volumes_for(profiles: tuple[str, ...] | list[str]) -> list[VolumeCopy]:
    return [v for v in VOLUMES if v.profile is None or v.profile in profiles]
