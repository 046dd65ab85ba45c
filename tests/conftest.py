"""Shared fixtures. Tests that need PostgreSQL or Redis skip on a laptop without them, and fail
in CI (CI=true), where the services must be running."""

from __future__ import annotations

import os

import pytest


def require_service(name: str, available: bool) -> None:
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is required in CI but is not reachable")
    pytest.skip(f"{name} is not reachable")
