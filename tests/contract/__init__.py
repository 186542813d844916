"""Contract tests: one test body, two backends (the `backend` fixture of tests/conftest.py).

Every test here runs twice: `[fake]` on fakeredis and a SQLite shared database,
which needs no services and is in the unit tier, and `[real]` on the real Redis
and PostgreSQL, in the integration tier. tests/conftest.py marks each variant.
"""
