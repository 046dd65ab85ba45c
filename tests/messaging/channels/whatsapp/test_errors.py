from __future__ import annotations

import random
from pathlib import Path

import pytest

from tertulia.messaging.channels.whatsapp.errors import (
    ERROR_TABLE,
    Action,
    action_for,
    backoff,
    render_markdown,
)

DOC = Path(__file__).resolve().parents[4] / "docs" / "whatsapp-errors.md"


@pytest.mark.parametrize("code", [130429, 131056, 131000, 131016])
def test_transient_codes_retry(code: int) -> None:
    assert action_for(code, http_status=400) is Action.RETRY


def test_closed_window_resends_as_template() -> None:
    assert action_for(131047) is Action.RESEND_AS_TEMPLATE


@pytest.mark.parametrize("code", [131026, 131049, 131050, 131051, 131030])
def test_undeliverable_codes(code: int) -> None:
    assert action_for(code) is Action.UNDELIVERABLE


@pytest.mark.parametrize("code", [368, 131048, 131031, 190, 132000, 132001, 132015, 132999])
def test_channel_level_codes_pause_the_channel(code: int) -> None:
    assert action_for(code, http_status=401) is Action.PAUSE_CHANNEL


def test_transport_failures_retry() -> None:
    assert action_for(None, http_status=429) is Action.RETRY
    assert action_for(None, http_status=503) is Action.RETRY
    assert action_for(None, transport_error=True) is Action.RETRY
    # An unknown code with a 5xx is still a server failure.
    assert action_for(2, http_status=503) is Action.RETRY


def test_unknown_codes_fail_visibly() -> None:
    assert action_for(999999, http_status=400) is Action.FAIL_VISIBLY
    assert action_for(100, http_status=400) is Action.FAIL_VISIBLY
    assert action_for(None) is Action.FAIL_VISIBLY
    assert action_for(133000) is Action.FAIL_VISIBLY


def test_table_has_no_overlapping_rules() -> None:
    for i, a in enumerate(ERROR_TABLE):
        for b in ERROR_TABLE[i + 1 :]:
            assert a.high < b.low or b.high < a.low, (a.label, b.label)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        samples = [backoff(attempt, base=0.5, cap=60.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole interval
    assert backoff(10_000, base=1, cap=5, rng=rng) <= 5
    assert backoff(0, base=1, cap=5, rng=rng) <= 1


def test_docs_table_agrees_with_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/whatsapp-errors.md is stale: run "
        "python -m tertulia.messaging.channels.whatsapp.errors > docs/whatsapp-errors.md"
    )
    for rule in ERROR_TABLE:
        assert f"| {rule.label} |" in DOC.read_text(encoding="utf-8")
