"""The contract the sender builds on: with faults injected, a sender that retries by the error
table and reconciles maybe-accepted requests through status webhooks delivers every message
exactly once, as the fake's own log shows."""

from __future__ import annotations

import random
import time

from tertulia.messaging.channels.whatsapp.client import CloudAPIClient, CloudAPIError, text_payload
from tertulia.messaging.channels.whatsapp.errors import Action, backoff
from tertulia.messaging.channels.whatsapp.fake_server import run_fake_whatsapp
from tertulia.messaging.channels.whatsapp.webhook import parse_envelope

from ..conftest import Received, Receiver


def references_seen(requests: list[Received]) -> set[str]:
    return {
        s.biz_opaque_callback_data
        for request in requests
        for s in parse_envelope(request.body).statuses
        if s.biz_opaque_callback_data
    }


def test_faults_never_duplicate_or_lose_a_message(receiver: Receiver) -> None:
    rng = random.Random(5)
    with run_fake_whatsapp(
        token="t",
        webhook_url=receiver.url,
        fault_429=0.06,
        fault_5xx=0.06,
        fault_timeout=0.04,
        fault_timeout_accepted=0.04,
        hang_seconds=1.0,
        statuses=("sent",),
        seed=11,
    ) as fake:
        client = CloudAPIClient(
            phone_number_id=fake.phone_number_id, access_token="t", base_url=fake.base_url,
            timeout=0.2,
        )  # fmt: skip
        outcomes: dict[str, str] = {}
        with client:
            for n in range(150):
                reference = f"outbox:{n}"
                payload = text_payload(f"5198{n:07d}", f"Día {n}", reference=reference)[0]
                for attempt in range(1, 20):
                    try:
                        outcomes[reference] = client.send(payload).provider_id
                        break
                    except CloudAPIError as error:
                        assert error.action is Action.RETRY
                        if error.maybe_accepted:
                            # Reconcile: a status naming our reference means Meta has it.
                            if receiver.wait_for(
                                lambda requests, r=reference: r in references_seen(requests), 0.5
                            ):
                                outcomes[reference] = "reconciled"
                                break
                        time.sleep(backoff(attempt, base=0.001, cap=0.01, rng=rng))
        assert fake.wait_idle()
    assert len(outcomes) == 150
    assert fake.log.duplicate_references() == {}
    assert {e.reference for e in fake.log.entries()} == set(outcomes)
    assert "reconciled" in outcomes.values()  # the maybe-accepted path was exercised
