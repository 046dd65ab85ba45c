"""Reads the deployment's configuration from the environment, with embedded defaults.

On a laptop nothing needs to be set: the database is SQLite under ./var/ and the keys are
generated there on first use. A country deployment sets DATABASE_URL, REDIS_URL, SECRET_KEY
and TERTULIA_DATA_KEY instead.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def var_dir() -> Path:
    path = Path(os.environ.get("TERTULIA_VAR_DIR", Path.cwd() / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _key_file(name: str, make: Callable[[], str]) -> str:
    """Return the key stored in var/<name>, creating it (mode 0600) when missing."""
    path = var_dir() / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


def secret_key() -> str:
    return os.environ.get("SECRET_KEY") or _key_file(
        "secret_key", lambda: secrets.token_urlsafe(50)
    )


def data_keys() -> list[str]:
    """Data-encryption keys, newest first. TERTULIA_DATA_KEY may hold several, comma-separated,
    so that a key can be rotated without losing what older keys encrypted."""
    configured = os.environ.get("TERTULIA_DATA_KEY", "")
    if configured:
        return [k.strip() for k in configured.split(",") if k.strip()]
    return [
        _key_file("data_key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    ]


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir() / 'tertulia.sqlite3'}"


def redis_url() -> str | None:
    return os.environ.get("REDIS_URL") or None
