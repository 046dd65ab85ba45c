"""`tertulia content lint|import`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def content() -> None:
    """Curriculum files: check them and import them as versions."""


@content.command("lint")
@click.argument("path", type=click.Path(path_type=Path))
def lint_command(path: Path) -> None:
    """Report every problem in the curriculum folder PATH (exit 1 if any)."""
    from tertulia.programs.content.lint import lint

    result = lint(path)
    for problem in result.problems:
        click.echo(str(problem))
    if result.problems:
        click.echo(f"{len(result.problems)} problem(s) found.", err=True)
        raise SystemExit(1)
    assert result.spec is not None
    steps = sum(len(d.steps) for d in result.spec.days)
    click.echo(f"OK: {len(result.spec.days)} days, {steps} steps, version {result.spec.version}.")


@content.command("import")
@click.argument("path", type=click.Path(path_type=Path))
def import_command(path: Path) -> None:
    """Import the curriculum folder PATH as a version (idempotent)."""
    from tertulia.cli import setup_django

    setup_django(migrate=True)
    from tertulia.programs.services import CurriculumInvalid, curriculum_import

    try:
        result = curriculum_import(path=path)
    except CurriculumInvalid as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        click.echo(f"{len(exc.problems)} problem(s) found; nothing was imported.", err=True)
        raise SystemExit(1) from exc
    verb = "Imported" if result.created else "Already imported"
    click.echo(f"{verb}: {result.curriculum} ({result.curriculum.days.count()} days).")
