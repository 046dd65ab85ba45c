"""How the analysis tells a researcher what is wrong with the data or the plan."""

from __future__ import annotations

from dataclasses import dataclass, field


class TrialInputError(ValueError):
    """The data or the Analysis plan cannot be analysed as given; the message says what to fix."""


@dataclass
class Warnings:
    """Collects warnings that go into results.json, the report and the console.

    A warning never replaces a number silently: whatever it is about is either estimated as
    documented in the message or left out of the table with the reason shown.
    """

    messages: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        if message not in self.messages:
            self.messages.append(message)
