"""A channel that delivers into the simulated provider's log instead of to a phone."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, transaction

from tertulia.messaging.channel import ChannelError, Outbound, SendResult
from tertulia.simulation.models import SimulatedDelivery


class SimulatedChannel:
    kind = "simulated"

    def send_many(self, outbounds: Sequence[Outbound]) -> list[SendResult | ChannelError]:
        rows = [
            SimulatedDelivery(
                message_id=o.message_id,
                provider_id=f"sim-{o.message_id}",
                to=o.to,
                kind=o.kind,
                buttons=o.buttons,
            )
            for o in outbounds
        ]
        try:
            with transaction.atomic():
                SimulatedDelivery.objects.bulk_create(rows)
        except IntegrityError:
            # Like a provider with idempotency keys: a message it already has is not sent again.
            for row in rows:
                SimulatedDelivery.objects.get_or_create(
                    message_id=row.message_id,
                    defaults={
                        "provider_id": row.provider_id,
                        "to": row.to,
                        "kind": row.kind,
                        "buttons": row.buttons,
                    },
                )
        return [SendResult(provider_id=r.provider_id) for r in rows]

    def reconcile(self, message_id: int) -> str | None:
        found = SimulatedDelivery.objects.filter(message_id=message_id).first()
        return found.provider_id if found else None
