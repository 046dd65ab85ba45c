"""`tertulia recruit`: campaigns, ad variants and their links.

    tertulia recruit campaign create --program guy-talk --name Lanzamiento \\
        --channel facebook --number +51900000001 --landing-url https://example.org/patas
    tertulia recruit campaign list
    tertulia recruit variant add --campaign Lanzamiento --name "A humor" --cost 300
    tertulia recruit links --campaign Lanzamiento --out links/
    tertulia recruit report --campaign Lanzamiento --compare HEP-AAAA HEP-BBBB --out funnel/

`links` prints, per variant, its code, click-to-WhatsApp link and UTM-tagged landing link, and
writes its QR codes (PNG and SVG) into --out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _django() -> None:
    from tertulia.cli import setup_django

    setup_django(migrate=True)


def _campaign(name: str, program: str | None) -> Any:
    from tertulia.recruitment.models import Campaign

    found = Campaign.objects.filter(name=name).select_related("program")
    if program:
        found = found.filter(program__slug=program)
    campaigns = list(found)
    if not campaigns:
        known = ", ".join(Campaign.objects.values_list("name", flat=True)) or "none yet"
        raise click.ClickException(f"no campaign named '{name}' (known: {known})")
    if len(campaigns) > 1:
        raise click.ClickException(f"several programs have a campaign '{name}': add --program")
    return campaigns[0]


@click.group()
def recruit() -> None:
    """Recruitment: campaigns, ad variants, links and QR codes."""


@recruit.group()
def campaign() -> None:
    """Create and list campaigns."""


@campaign.command("create")
@click.option("--program", "program_slug", required=True, help="Program slug, e.g. guy-talk.")
@click.option("--name", required=True)
@click.option("--channel", required=True, help="Where the ads run: facebook, instagram, ...")
@click.option("--number", required=True, help="The WhatsApp number men write to, +51...")
@click.option("--landing-url", default="", help="Optional landing page for UTM links.")
@click.option("--currency", default="PEN", show_default=True)
def campaign_create_command(
    program_slug: str, name: str, channel: str, number: str, landing_url: str, currency: str
) -> None:
    """Create a campaign for a program."""
    _django()
    from tertulia.programs.models import Program
    from tertulia.recruitment.services import RecruitmentError, campaign_create

    program = Program.objects.filter(slug=program_slug).first()
    if program is None:
        known = ", ".join(Program.objects.values_list("slug", flat=True)) or "none"
        raise click.ClickException(
            f"no program '{program_slug}' (known: {known}); import its content first "
            "with 'tertulia content import'"
        )
    try:
        created = campaign_create(
            program=program,
            name=name,
            channel=channel,
            whatsapp_number=number,
            landing_url=landing_url,
            currency=currency,
        )
    except RecruitmentError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created campaign '{created}' ({created.channel}) for {program.slug}.")


@campaign.command("list")
def campaign_list() -> None:
    """List campaigns with their variants and costs."""
    _django()
    from tertulia.recruitment.models import Campaign

    campaigns = Campaign.objects.select_related("program").prefetch_related("variants")
    if not campaigns:
        click.echo("No campaigns yet: create one with 'tertulia recruit campaign create'.")
    for item in campaigns.order_by("id"):
        click.echo(f"{item.name} [{item.program.slug}, {item.channel}, {item.whatsapp_number}]")
        for variant in item.variants.order_by("id"):
            click.echo(f"  {variant.code}  {variant.name}  {variant.cost} {item.currency}")


@recruit.group()
def variant() -> None:
    """Add ad variants to a campaign."""


@variant.command("add")
@click.option("--campaign", "campaign_name", required=True)
@click.option("--program", "program_slug", default=None, help="When two programs share a name.")
@click.option("--name", required=True)
@click.option("--creative", default="", help="What the ad shows.")
@click.option("--cost", default="0", show_default=True, help="What the ad cost, e.g. 350.00")
@click.option("--ad-id", default="", help="The ad's id at Meta (click-to-WhatsApp source_id).")
@click.option("--code", default="", help="Its code, e.g. HEP-7K3Q (made up when left out).")
def variant_add(
    campaign_name: str,
    program_slug: str | None,
    name: str,
    creative: str,
    cost: str,
    ad_id: str,
    code: str,
) -> None:
    """Add an ad variant; prints its code."""
    _django()
    from tertulia.recruitment.services import RecruitmentError, variant_create

    found = _campaign(campaign_name, program_slug)
    try:
        created = variant_create(
            campaign=found, name=name, creative=creative, cost=cost, ad_id=ad_id, code=code
        )
    except RecruitmentError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Added variant '{created.name}' with code {created.code}.")


@recruit.command()
@click.option("--campaign", "campaign_name", default=None, help="Only this campaign.")
@click.option("--program", "program_slug", default=None)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the QR codes (PNG and SVG); none written without it.",
)
def links(campaign_name: str | None, program_slug: str | None, out: Path | None) -> None:
    """Print each variant's click-to-WhatsApp link and UTM landing link; write its QR codes."""
    _django()
    from tertulia.recruitment.models import AdVariant
    from tertulia.recruitment.services import variant_links

    variants = AdVariant.objects.select_related("campaign__program").order_by("id")
    if campaign_name:
        variants = variants.filter(campaign=_campaign(campaign_name, program_slug))
    if not variants:
        raise click.ClickException(
            "no ad variants yet: add one with 'tertulia recruit variant add'"
        )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for item in variants:
        found = variant_links(item)
        click.echo(f"{item.code}  {item.campaign.name} / {item.name}")
        click.echo(f"  WhatsApp: {found.whatsapp}")
        if found.landing:
            click.echo(f"  Landing:  {found.landing}")
        if out is not None:
            png, svg = out / f"{item.code}.png", out / f"{item.code}.svg"
            png.write_bytes(found.qr_png)
            svg.write_text(found.qr_svg, encoding="utf-8")
            click.echo(f"  QR:       {png} {svg}")


@recruit.command()
@click.option("--campaign", "campaign_name", default=None, help="Only this campaign.")
@click.option("--program", "program_slug", default=None, help="When two programs share a name.")
@click.option(
    "--compare",
    nargs=2,
    default=None,
    metavar="CODE_A CODE_B",
    help="Test whether two variants convert differently, stage by stage.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the funnel plots (one PNG per variant and overall).",
)
def report(
    campaign_name: str | None,
    program_slug: str | None,
    compare: tuple[str, str] | None,
    out: Path | None,
) -> None:
    """The recruitment funnel per ad variant and overall, with Wilson 95% intervals and costs."""
    _django()
    from tertulia.randomization.funnel_stats import FunnelError
    from tertulia.recruitment.report import funnel_echo
    from tertulia.recruitment.selectors import funnel_counts

    found = _campaign(campaign_name, program_slug) if campaign_name else None
    counts = funnel_counts(found)
    if not counts.by_variant:
        raise click.ClickException(
            "no ad variants and no screenings yet: "
            "add a variant with 'tertulia recruit variant add'"
        )
    if compare:
        unknown = [code for code in compare if code not in counts.by_variant]
        if unknown:
            raise click.ClickException(
                f"unknown variant code {', '.join(unknown)} (known: {', '.join(counts.by_variant)})"
            )
    try:
        funnel_echo(counts, compare=compare, out=out)
    except FunnelError as exc:
        raise click.ClickException(str(exc)) from exc


@recruit.command("redact-webhooks")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Only bodies received in the last DAYS days [default: all].",
)
def redact_webhooks(days: int | None) -> None:
    """Remove partner-contact answers from stored raw webhook bodies (run it daily: Meta's
    re-deliveries can come days later; each answer is also removed as it is taken)."""
    import datetime as dt

    _django()
    from tertulia.core import clock
    from tertulia.recruitment.retention import partner_answers_redact_webhooks

    since = clock.now() - dt.timedelta(days=days) if days else None
    read, rewritten = partner_answers_redact_webhooks(since=since)
    click.echo(f"Read {read} webhook bodies; removed partner-contact answers from {rewritten}.")


def demo_recruit_run(*, men: int, seed: int, content: Path | None) -> None:
    """`tertulia demo --recruit`: a campaign of three ad variants through the WhatsApp channel,
    then the funnel per variant as `tertulia recruit report` prints it."""
    import time

    started = time.perf_counter()
    _django()
    from django.conf import settings

    from tertulia.recruitment.demo import VARIANTS, demo_recruit
    from tertulia.recruitment.models import Campaign
    from tertulia.recruitment.report import funnel_echo
    from tertulia.recruitment.selectors import funnel_counts

    folder = content or Path(settings.TERTULIA_CONTENT_DIR) / "guy-talk" / "es-PE"
    if not folder.is_dir():
        raise click.ClickException(
            f"curriculum folder '{folder}' not found; run from the repository root or pass "
            "--content PATH"
        )
    click.echo(
        f"Recruitment demo: about {men} simulated men answer three ads through the fake "
        "WhatsApp Cloud API"
    )
    for spec in VARIANTS:
        click.echo(
            f"  {spec.name}: cost {spec.cost} PEN, {spec.response_rate:.1%} of those reached "
            f"write; {spec.eligible:.0%} eligible, {spec.consent:.0%} consent"
        )
    try:
        report = demo_recruit(
            men=men,
            seed=seed,
            content=content,
            on_round=lambda n, done: (
                click.echo(f"  minute {n}: {done} webhooks, answers and sends handled")
                if n == 1 or n % 5 == 0
                else None
            ),
        )
    except ValueError as exc:  # a program without a recruitment conversation or demo trial
        raise click.ClickException(str(exc)) from exc
    if report.duplicates:
        raise click.ClickException("a message reached the fake twice")
    campaign = Campaign.objects.get(pk=report.campaign_id)
    click.echo(
        f"Each ad reached {report.reach:,} people (simulated); {report.men} men wrote. "
        f"Fake accepted {report.accepted:,} messages; {report.webhook_posts:,} webhooks posted."
    )
    states = ", ".join(f"{state} {n}" for state, n in sorted(report.states.items()))
    click.echo(f"Screenings: {states}.")
    click.echo(
        f"Answers not understood and asked again: {report.reasked} men "
        f"({report.needs_person} handed to a person). Partner contacts stored apart: "
        f"{report.partner_contacts}. Randomized men who wrote the ad code again, refused "
        f"kindly and not randomized again: {report.refused_again}."
    )
    arms = ", ".join(f"{arm} {n}" for arm, n in sorted(report.arms.items()))
    click.echo(f"Trial '{report.trial}': {arms or 'nobody randomized'}.")
    for name, size in report.cohorts:
        click.echo(f"  cohort '{name}' opened, full: {size} men")
    click.echo(
        f"{len(report.cohorts)} cohort(s) opened. Waiting (tertulia randomization waitlist):"
    )
    for arm, region, send_time, size, opens_on in report.waiting:
        when = (
            f"opens by {opens_on:%Y-%m-%d} if not full before"
            if opens_on
            else ("offered the program after the endline")
        )
        who = "man" if size == 1 else "men"
        click.echo(f"  {arm:8} {region:7} {send_time}  {size:>3} {who}, {when}")
    click.echo("")
    funnel_echo(funnel_counts(campaign))
    click.echo(
        f"Campaign '{campaign.name}'. Again with plots: tertulia recruit report --campaign "
        f"'{campaign.name}' --out var/reports/recruit; live: tertulia serve"
    )
    click.echo(f"Done in {time.perf_counter() - started:.1f} s.")
