"""`tertulia serve`: the web app and the worker in one process, on the embedded default."""

from __future__ import annotations

import secrets
import threading

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--no-worker", is_flag=True, help="Do not run background tasks in this process.")
def serve(host: str, port: int, no_worker: bool) -> None:
    """Start the web app (dashboard and admin) with the worker and the scheduler."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    users = get_user_model()
    if not users.objects.filter(is_superuser=True).exists():
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser("admin", "", password)
        # Printed once so a new operator can log in; change it in the admin.
        password_file = settings.VAR_DIR / "admin-password.txt"
        password_file.write_text(password + "\n")
        click.echo(f"Created user 'admin' with password: {password} (also in {password_file})")
    if not no_worker:
        from tertulia import clockwork
        from tertulia.messaging.worker import run_forever, start_ticker

        start_ticker(clockwork.tick, 60)
        threading.Thread(target=run_forever, name="tertulia-worker", daemon=True).start()
    click.echo(f"tertulia on http://{host}:{port}/  (admin: http://{host}:{port}/admin/)")
    call_command("runserver", f"{host}:{port}", use_reloader=False, use_threading=True)
