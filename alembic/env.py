"""Alembic environment: the shared tables of solo.objects.state.schema.

The database URL comes from the caller (`solo migrate` passes it in the
config's attributes) or from DATABASE_URL through Settings.
"""

from alembic import context

from solo.objects.settings import Settings
from solo.objects.state.schema import make_engine, metadata

config = context.config
url = config.attributes.get("database_url") or Settings.from_env().database_url
connection = config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            run(conn)
            conn.commit()
    finally:
        engine.dispose()
