"""Simulated men: how each one behaves, drawn once from a seed so that a run can be repeated
exactly. The defaults are shaped like the reference program (about two in three men stay to
the end)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FREE_TEXTS = [
    "Gracias, me sirvió lo de hoy",
    "Hoy se lo conté a mi jerma y nos reímos un montón",
    "No pude hacer el reto, chamba hasta tarde",
    "Una pregunta, esto se puede hacer con los chibolos también?",
    "Está bravo esto de contar hasta tres jaja",
    "Buenazo el audio",
]


@dataclass(frozen=True)
class Behaviour:
    """A population's behaviour. Probabilities are per man per day unless said otherwise."""

    reply_probability: float = 0.6  # mean chance of answering a day's check-in
    read_probability: float = 0.85  # chance of opening a day's messages
    daily_dropout_hazard: float = 0.012  # chance of going silent for good
    optout_rate: float = 0.08  # chance of writing BAJA at some point in the program
    reply_delay_minutes: float = 90.0  # mean delay before reading or answering
    free_text_probability: float = 0.03  # chance of writing something to the group
    help_probability: float = 0.003  # chance of writing AYUDA
    # How much more or less than usual men answer on each topic's days.
    topic_affinity: dict[str, float] = field(
        default_factory=lambda: {
            "welcome": 1.15,
            "communication": 1.05,
            "emotions": 1.0,
            "consent": 0.85,
            "finances": 1.05,
            "home": 0.95,
        }
    )

    def daily_optout(self, days: int) -> float:
        return 1 - (1 - self.optout_rate) ** (1 / max(days, 1))


@dataclass
class SimulatedMan:
    index: int
    phone: str
    reply_probability: float
    rng: random.Random
    silent: bool = False
    opted_out: bool = False


def population(*, seed: int, size: int, behaviour: Behaviour, first: int = 0) -> list[SimulatedMan]:
    """`size` men with phone numbers from a fictitious block and their own propensity to answer
    (men differ: a Beta distribution around the population's mean)."""
    men = []
    for i in range(first, first + size):
        rng = random.Random(f"{seed}:{i}")
        mean = behaviour.reply_probability
        k = 4.0
        propensity = rng.betavariate(max(mean * k, 0.01), max((1 - mean) * k, 0.01))
        men.append(
            SimulatedMan(index=i, phone=f"+51900{i:06d}", reply_probability=propensity, rng=rng)
        )
    return men
