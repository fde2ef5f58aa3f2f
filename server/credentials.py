"""Generated first-run secrets of an embedded install, kept beside its data (mode 0600).

The database stores only hashes; this file is what lets `make run` show the login and
key again on the next start, like a local .env. Installs with DATABASE_URL never write it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from server.bootstrap import Bootstrap

FILENAME = "credentials.json"


def save_credentials(home: Path, boot: Bootstrap) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / FILENAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"project": boot.project_slug, "api_key": boot.api_key,
                   "admin_email": boot.admin_email, "admin_password": boot.admin_password}, f, indent=2)


def load_credentials(home: Path) -> Bootstrap | None:
    try:
        data = json.loads((home / FILENAME).read_text())
        return Bootstrap(data["project"], data["api_key"], data["admin_email"], data["admin_password"], False)
    except (OSError, ValueError, KeyError):
        return None
