"""The everyday CLI commands stay quick: they load the database code they need and not the
web server, Alembic, genai-prices or OpenTelemetry (about 2 s of imports on every call)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings
from db.engine import make_engine, make_sessionmaker
from server.bootstrap import bootstrap

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("fastapi", "uvicorn", "starlette", "alembic", "genai_prices", "opentelemetry", "jinja2")
PROBE = f"""
import sys
from server.cli import main
status = main(sys.argv[1:])
print("loaded:", ",".join(sorted(m for m in {HEAVY!r} if m in sys.modules)))
sys.exit(status)
"""


@pytest.mark.parametrize("command", [["keys", "list"], ["prices", "list"], ["users", "list"],
                                     ["keys", "create", "--name", "x"], ["redaction", "list"]])
def test_everyday_commands_do_not_load_the_server_stack(pg, command):
    url = pg.fresh_database()
    try:
        engine = make_engine(url, pool_size=1)
        with make_sessionmaker(engine).begin() as session:
            bootstrap(session, Settings(database_url=url))
        engine.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAUSELINE_")}
        result = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=REPO, capture_output=True, text=True,
                                timeout=120, env={**env, "DATABASE_URL": url})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "loaded:"
    finally:
        pg.drop(url)


def test_help_loads_no_database_code():
    result = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom server.cli import main\ntry:\n    main(['--help'])\n"
         "except SystemExit:\n    pass\n"
         "print(sorted(m for m in ('sqlalchemy', 'pydantic', 'psycopg') if m in sys.modules))"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
