from __future__ import annotations

from pathlib import Path

import pytest

from tertulia.messaging.channels.whatsapp.errors import (
    ERROR_TABLE,
    TRANSPORT_RULES,
    Action,
    action_for,
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


# Issue 5's list, as the issue states it: code -> action.
ISSUE_LIST = {
    130429: Action.RETRY,
    131056: Action.RETRY,
    131000: Action.RETRY,
    131016: Action.RETRY,
    131047: Action.RESEND_AS_TEMPLATE,
    131026: Action.UNDELIVERABLE,
    131049: Action.UNDELIVERABLE,
    131050: Action.UNDELIVERABLE,
    131051: Action.UNDELIVERABLE,
    131030: Action.UNDELIVERABLE,
    368: Action.PAUSE_CHANNEL,
    131048: Action.PAUSE_CHANNEL,
    131031: Action.PAUSE_CHANNEL,
    190: Action.PAUSE_CHANNEL,
}


def test_the_table_and_its_doc_hold_the_issues_list() -> None:
    """Every code the issue names has its action, in the code and in the doc's table; 132xxx
    template errors pause the channel; HTTP 429/5xx and timeouts retry; unknown codes fail."""
    doc = DOC.read_text(encoding="utf-8")
    for code, action in ISSUE_LIST.items():
        assert action_for(code) is action, code
        assert (
            f"| {code} | " in doc
            and f"`{action.value}`" in doc.split(f"| {code} | ")[1].split("\n")[0]
        )
    for code in (132000, 132001, 132005, 132007, 132012, 132015, 132016, 132999):
        assert action_for(code) is Action.PAUSE_CHANNEL
    assert "| 132xxx | Template error | `pause_channel` |" in doc
    assert action_for(None, http_status=429) is Action.RETRY
    assert all(action_for(None, http_status=s) is Action.RETRY for s in (500, 502, 503, 504))
    assert action_for(None, transport_error=True) is Action.RETRY
    assert action_for(999_999) is Action.FAIL_VISIBLY
    assert action_for(None, http_status=400) is Action.FAIL_VISIBLY
    failures = {failure: action for failure, action, _ in TRANSPORT_RULES}
    assert failures["HTTP 429"] is failures["HTTP 5xx"] is Action.RETRY
    assert failures["timeout / connection dropped"] is Action.RETRY
    assert failures["any other code"] is Action.FAIL_VISIBLY
    # The table adds only retryable throttling codes (4, 80007) to the issue's list.
    extra = {
        rule.low: rule.action
        for rule in ERROR_TABLE
        if rule.low == rule.high and rule.low not in ISSUE_LIST
    }
    assert extra == {4: Action.RETRY, 80007: Action.RETRY}


def test_docs_table_agrees_with_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/whatsapp-errors.md is stale: run "
        "python -m tertulia.messaging.channels.whatsapp.errors > docs/whatsapp-errors.md"
    )
    for rule in ERROR_TABLE:
        assert f"| {rule.label} |" in DOC.read_text(encoding="utf-8")
