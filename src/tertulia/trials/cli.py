"""`tertulia trial`: analyse a Trial's survey data, plan its power, or run the demo.

No Django here: these commands work on data files, so a researcher can run them on a laptop
without the platform's database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

if TYPE_CHECKING:
    from tertulia.trials.analysis import power as pw
    from tertulia.trials.analysis.plan import SeType

DEFAULT_DEMO_DIR = Path("var/reports/trial-demo")


def _parse_baselines(values: tuple[str, ...]) -> dict[str, str]:
    baselines = {}
    for value in values:
        outcome, sep, column = value.partition("=")
        if not sep or not outcome or not column:
            raise click.BadParameter(
                f"{value!r}: write it as OUTCOME=COLUMN", param_hint="--baseline"
            )
        baselines[outcome] = column
    return baselines


def _write_and_print(results: dict, out: Path) -> None:
    from tertulia.trials.analysis.report import write_report
    from tertulia.trials.analysis.tables import console_table

    paths = write_report(results, out)
    click.echo(console_table(results))
    for message in results["warnings"]:
        click.secho(f"warning: {message}", fg="yellow", err=True)
    click.echo(f"\nReport: {paths['report']}\nResults: {paths['results']}")


@click.group()
def trial() -> None:
    """Trial analysis: results table, power, and a demo on synthetic data."""


@trial.command()
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Survey data: .csv, .parquet or Stata .dta",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for results.json, report.html, figures and LaTeX tables",
)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(path_type=Path),
    help="Analysis plan YAML (docs/analysis-plan.md); replaces the flags below",
)
@click.option("--treatment", help="0/1 assignment column")
@click.option("--outcome", "outcomes", multiple=True, help="Endline outcome column (repeatable)")
@click.option("--covariate", "covariates", multiple=True, help="Baseline covariate (repeatable)")
@click.option("--strata", help="Randomization strata (blocks) column")
@click.option("--cluster", help="Cluster column (e.g. community) for cluster-robust SEs")
@click.option("--takeup", help="Take-up column, instrumented by assignment for the TOT")
@click.option("--attrition", help="1 = not surveyed at endline; enables Lee bounds")
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    metavar="OUTCOME=COL",
    help="Baseline value of an outcome (ANCOVA), repeatable",
)
@click.option(
    "--se-type",
    type=click.Choice(["auto", "classical", "HC1", "HC2", "cluster"]),
    default=None,
    help="Headline standard errors (default: HC2, or cluster if given)",
)
@click.option("--seed", type=int, default=None, help="Seed for randomization inference")
@click.option(
    "--permutations",
    type=int,
    default=None,
    help="Re-randomizations for RI p-values (0 = off; default 2000)",
)
def analyze(
    data_path: Path,
    out: Path,
    plan_path: Path | None,
    treatment: str | None,
    outcomes: tuple[str, ...],
    covariates: tuple[str, ...],
    strata: str | None,
    cluster: str | None,
    takeup: str | None,
    attrition: str | None,
    baselines: tuple[str, ...],
    se_type: str | None,
    seed: int | None,
    permutations: int | None,
) -> None:
    """Analyse a Trial: balance, attrition, ITT/TOT, indices, q-values, Lee bounds, RI."""
    from dataclasses import replace

    from tertulia.trials.analysis import TrialInputError, load_plan, plan_from_flags, run_analysis
    from tertulia.trials.analysis.io import file_sha256, read_data

    try:
        if plan_path:
            flags = [treatment, outcomes, covariates, strata, cluster, takeup, attrition, baselines]
            if any(flags):
                raise click.UsageError("give either --plan or the column flags, not both")
            plan = load_plan(plan_path)
            if seed is not None:
                plan = replace(plan, seed=seed)
            if permutations is not None:
                plan = replace(plan, permutations=permutations)
            if se_type is not None:
                plan = replace(plan, se_type=cast("SeType", se_type))
        else:
            if not treatment or not outcomes:
                raise click.UsageError("without --plan, --treatment and --outcome are required")
            plan = plan_from_flags(
                treatment=treatment,
                outcomes=list(outcomes),
                covariates=list(covariates),
                strata=strata,
                cluster=cluster,
                takeup=takeup,
                attrition=attrition,
                baselines=_parse_baselines(baselines),
                seed=seed,
                permutations=permutations,
                se_type=se_type or "auto",
            )
        data = read_data(data_path)
        results = run_analysis(
            data, plan, data_name=data_path.name, data_sha256=file_sha256(data_path)
        )
    except TrialInputError as exc:
        raise click.ClickException(str(exc)) from None
    _write_and_print(results, out)


@trial.command()
@click.option("--n", "n", type=int, required=True, help="Total number randomized")
@click.option("--effect", type=float, help="Effect to detect (outcome units); gives power")
@click.option(
    "--power",
    "power_target",
    type=float,
    default=None,
    help="Target power; with --effect gives the sample size, alone gives the MDE",
)
@click.option("--sd", type=float, default=None, help="Outcome SD (default 1: effects in SDs)")
@click.option(
    "--control-rate",
    type=float,
    default=None,
    help="For a 0/1 outcome: control-group rate (sets the SD)",
)
@click.option("--treated-share", type=float, default=0.5, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option(
    "--r2",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of outcome variance explained by baseline covariates",
)
@click.option("--cluster-size", type=float, default=1.0, show_default=True)
@click.option("--icc", type=float, default=0.0, show_default=True)
@click.option(
    "--clustered-arms",
    type=click.Choice(["both", "treatment"]),
    default="both",
    show_default=True,
    help="'treatment' when only the program arm meets in groups (as in the reference)",
)
def power(
    n: int,
    effect: float | None,
    power_target: float | None,
    sd: float | None,
    control_rate: float | None,
    treated_share: float,
    alpha: float,
    r2: float,
    cluster_size: float,
    icc: float,
    clustered_arms: str,
) -> None:
    """Power for an effect, or the minimum detectable effect (MDE) for a power."""
    from tertulia.trials.analysis import power as pw

    if sd is not None and control_rate is not None:
        raise click.UsageError("give --sd or --control-rate, not both")
    if control_rate is not None:
        if not 0 < control_rate < 1:
            raise click.BadParameter("must be between 0 and 1", param_hint="--control-rate")
        sd = (control_rate * (1 - control_rate)) ** 0.5
    try:
        design = pw.Design(
            n=n,
            sd=sd or 1.0,
            treated_share=treated_share,
            alpha=alpha,
            r2=r2,
            cluster_size=cluster_size,
            icc=icc,
            clustered_arms=cast("pw.ClusteredArms", clustered_arms),
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    treat_deff = design.design_effect("treatment")
    click.echo(
        f"n = {n:,} ({treated_share:.0%} treated), SD = {design.sd:.4g}, alpha = {alpha}, "
        f"R² = {r2}, design effect treatment/control = {treat_deff:.2f}/"
        f"{design.design_effect('control'):.2f}; SE of the effect = {design.se():.4g}"
    )
    if effect is not None and power_target is not None:
        needed = pw.sample_size(effect, design, power_target=power_target)
        click.echo(f"Sample size for power {power_target:.0%} at effect {effect:g}: {needed:,}")
        return
    if effect is not None:
        click.echo(f"Power to detect {effect:g}: {pw.power(effect, design):.1%}")
        return
    target = power_target or 0.8
    value = pw.mde(design, power_target=target)
    line = f"MDE at power {target:.0%}: {value:.4g} ({value / design.sd:.3f} SD)"
    if control_rate is not None:
        line += f", {100 * value / control_rate:.1f}% of the control rate"
    click.echo(line)


@trial.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULT_DEMO_DIR,
    show_default=True,
    help="Folder for the demo report",
)
@click.option(
    "--seed", type=int, default=2022, show_default=True, help="Seed of the synthetic data"
)
@click.option(
    "--n", "n", type=int, default=2710, show_default=True, help="Men in the synthetic trial"
)
@click.option("--permutations", type=int, default=2000, show_default=True)
def demo(out: Path, seed: int, n: int, permutations: int) -> None:
    """Analyse a synthetic Trial shaped like the reference study, with known true effects."""
    import yaml

    from tertulia.trials.analysis import run_analysis
    from tertulia.trials.analysis.io import file_sha256
    from tertulia.trials.analysis.synthetic import DEMO_PLAN, demo_plan, generate

    synthetic = generate(n, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    data_path = out / "synthetic-trial.csv"
    synthetic.data.to_csv(data_path, index=False)
    (out / "plan.yaml").write_text(
        yaml.safe_dump({**DEMO_PLAN, "permutations": permutations}, sort_keys=False),
        encoding="utf-8",
    )
    results = run_analysis(
        synthetic.data,
        demo_plan(permutations=permutations),
        data_name=data_path.name,
        data_sha256=file_sha256(data_path),
    )
    _write_and_print(results, out)
    truths = ", ".join(f"{k} {v:+g}" for k, v in synthetic.true_itt.items())
    click.echo(f"True ITT effects in this synthetic trial: {truths}")
    click.echo(
        f"Re-run the analysis: tertulia trial analyze --data {data_path} "
        f"--plan {out / 'plan.yaml'} --out {out}"
    )
