"""Apply the shared database's Alembic migrations (`solo migrate`, the Procfile's release step).

solo's own migrations live in `alembic/versions` (the package `solo.alembic`). An application adds tables of its
own to the shared database with Alembic migrations in a `shared_migrations/`
directory next to a module it serves (`SOLO_OBJECTS`): for `myapp.objects`, in
`myapp/shared_migrations/`. Each application starts its own branch
(`down_revision = None`, `branch_labels = ("myapp",)`), and every branch is
upgraded to its head.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

import solo.objects
from solo.objects.errors import UnknownRevisions

APP_MIGRATIONS_DIR = "shared_migrations"


def app_migration_dirs(object_modules: Iterable[str]) -> list[Path]:
    """The `shared_migrations/` directories next to the given modules, in order, without repeats."""
    found: list[Path] = []
    for module in object_modules:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"object module {module!r} not found")
        candidate = Path(spec.origin).resolve().parent / APP_MIGRATIONS_DIR
        if candidate.is_dir() and candidate not in found:
            found.append(candidate)
    return found


def solo_migrations_dir() -> Path:
    """The folder of solo's Alembic environment (`solo.alembic`, a namespace package).

    It sits beside `solo.objects` both in the repository (`alembic/` next to `objects/`)
    and in an installed wheel (`solo/alembic/` next to `solo/objects/`).
    """
    return Path(solo.objects.__file__).resolve().parents[1] / "alembic"


def alembic_config(database_url: str, object_modules: Iterable[str] = ()) -> Config:
    config = Config()
    config.set_main_option("path_separator", "os")  # version_locations below are joined with os.pathsep
    script_location = solo_migrations_dir()
    config.set_main_option("script_location", str(script_location))
    locations = [script_location / "versions", *app_migration_dirs(object_modules)]
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, object_modules: Iterable[str] = ()) -> None:
    """Bring solo's tables, and those of the applications in `object_modules`, to their latest revision."""
    object_modules = tuple(object_modules)
    config = alembic_config(database_url, object_modules)
    try:
        command.upgrade(config, "heads")
    except CommandError:
        unknown = unknown_revisions(config, database_url)
        if not unknown:
            raise
        where = sa.engine.make_url(database_url).render_as_string(hide_password=True)
        raise UnknownRevisions(
            f"the shared database {where} holds migrations of modules not served now"
            f" ({', '.join(unknown)}; SOLO_OBJECTS={','.join(object_modules)}): serve those modules too,"
            " or use another database (under `solo dev`: another folder, or remove ./var)"
        ) from None


def unknown_revisions(config: Config, database_url: str) -> list[str]:
    """The revisions the database is at that none of the migration folders in `config` has."""
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    return sorted(head for head in heads if head not in known)
