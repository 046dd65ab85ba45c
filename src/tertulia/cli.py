"""The `tertulia` command. Each area adds its own click group in <app>/cli.py; this module
only assembles them, so that importing the CLI stays cheap and Django starts only when a
command needs it."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

# Sub-command groups, as "module:attribute". Loaded lazily by TertuliaCLI.
SUBCOMMANDS = {
    "content": "tertulia.programs.cli:content",
    "demo": "tertulia.simulation.cli:demo",
    "serve": "tertulia.dashboard.cli:serve",
    "web": "tertulia.webserver:web",
    "worker": "tertulia.messaging.cli:worker",
    "schedule": "tertulia.messaging.cli:schedule",
    "enroll": "tertulia.cohorts.cli:enroll",
    "manage": "tertulia.core.cli:manage",
    "trial": "tertulia.trials.cli:trial",
    "safety": "tertulia.safety.cli:safety",
    "recruit": "tertulia.recruitment.cli:recruit",
    "fake-whatsapp": "tertulia.messaging.channels.whatsapp.cli:fake_whatsapp",
    "channel": "tertulia.messaging.channels.whatsapp.cli:channel",
    "community": "tertulia.community.cli:community",
    "prices": "tertulia.dashboard.prices_cli:prices",
    "randomization": "tertulia.randomization.cli:randomization",
}


def config_save(config: Any) -> None:
    """Validate a channel's configuration and save it, or stop with the problems as a usage
    error. The messages name fields and rules, never a secret's value."""
    from django.core.exceptions import ValidationError

    try:
        config.full_clean()
    except ValidationError as exc:
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise click.UsageError(problems) from None
    config.save()


def setup_django(*, migrate: bool = False) -> None:
    """Configure Django for a CLI command; optionally bring the database schema up to date."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tertulia.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)


class TertuliaCLI(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A sub-command whose module is not there yet is simply not offered.
            if exc.name and module_name.startswith(exc.name):
                return None
            raise
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


@click.command(cls=TertuliaCLI)
@click.version_option(package_name="tertulia")
def main() -> None:
    """tertulia: run a chat-delivered program for men, and measure whether it works."""


if __name__ == "__main__":
    sys.exit(main())
