"""A worker opens no more SQLite databases than its open-file limit holds."""

from solo.objects.settings import Settings
from solo.workers.process import FILES_PER_DATABASE, FILES_RESERVED, fit_open_databases


def test_the_open_database_cap_follows_the_open_file_limit():
    fitted = fit_open_databases(Settings(max_open_databases=4000), file_limit=1024)  # a common default
    assert fitted.max_open_databases == (1024 - FILES_RESERVED) // FILES_PER_DATABASE
    assert fit_open_databases(Settings(max_open_databases=100), file_limit=1024).max_open_databases == 100
    assert fit_open_databases(Settings(max_open_databases=4000), file_limit=20_000).max_open_databases == 4000
