"""The Report: results.json, report.html with its PNG figures, and LaTeX tables in one folder.

HTML is built here with escaping (no template engine); figures are matplotlib PNGs written next
to it and linked relatively, so the folder can be zipped and opened anywhere.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tertulia.trials.analysis import latex  # noqa: E402
from tertulia.trials.analysis.tables import (  # noqa: E402
    adjusted_label,
    balance_rows,
    num,
    p_text,
    pvalue,
    result_rows,
)

PALETTE = ("#1b6ca8", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#555555")
FIGURES = "figures"


def write_report(results: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write every artefact of the Report into `out_dir`; returns their paths by name."""
    out = Path(out_dir)
    (out / FIGURES).mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["results"] = out / "results.json"
    paths["results"].write_text(
        json.dumps(results, indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    figures = {
        "coefficients": coefficient_plot(results, out / FIGURES / "coefficients.png"),
        "balance": balance_plot(results, out / FIGURES / "balance.png"),
        "attrition": attrition_plot(results, out / FIGURES / "attrition.png"),
    }
    paths.update({k: v for k, v in figures.items() if v is not None})
    paths.update(latex.write_tables(results, out / "tables"))
    paths["report"] = out / "report.html"
    paths["report"].write_text(render_html(results, figures, out), encoding="utf-8")
    return paths


def _family_colours(results: dict[str, Any]) -> dict[str, str]:
    families = list(dict.fromkeys(o["family"] for o in results["outcomes"]))
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(families)}


def _family_labels(results: dict[str, Any]) -> dict[str, str]:
    plan = results["provenance"]["plan"]
    return {f["name"]: f["label"] or f["name"] for f in plan.get("families", [])}


def coefficient_plot(results: dict[str, Any], path: Path) -> Path | None:
    """ITT and 95% CI per outcome in control-group SDs, so outcomes share one axis."""
    rows = [o for o in results["outcomes"] if not o.get("skipped") and o.get("control_sd")]
    if not rows:
        return None
    colours = _family_colours(results)
    family_labels = _family_labels(results)
    height = 1.2 + 0.42 * len(rows)
    fig, ax = plt.subplots(figsize=(8.5, height), dpi=130)
    labels = []
    for i, row in enumerate(reversed(rows)):
        sd = row["control_sd"]
        itt = row["itt"]
        est, lo, hi = itt["estimate"] / sd, itt["ci_low"] / sd, itt["ci_high"] / sd
        colour = colours[row["family"]]
        ax.plot([lo, hi], [i, i], color=colour, linewidth=2.2 if row["is_index"] else 1.6)
        ax.plot(
            est,
            i,
            marker="D" if row["is_index"] else "o",
            color=colour,
            markersize=8 if row["is_index"] else 6,
        )
        labels.append(row["label"] if row["higher_is_better"] else f"{row['label']} (↓ better)")
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels)
    for tick, row in zip(ax.get_yticklabels(), reversed(rows), strict=True):
        if row["is_index"]:
            tick.set_fontweight("bold")
    ax.set_xlabel("ITT effect in SDs of the control group, 95% CI (indices: higher = better)")
    ax.set_title("Intention-to-treat effects", loc="left", fontsize=12)
    handles = [
        plt.Line2D([], [], color=c, marker="o", linewidth=1.6, label=family_labels.get(f, f))
        for f, c in colours.items()
    ]
    # In a strip reserved below the axis label, so it never covers an interval or the title.
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8.5, frameon=False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def balance_plot(results: dict[str, Any], path: Path) -> Path | None:
    rows = results["balance"]["variables"]
    if not rows:
        return None
    height = 1.2 + 0.32 * len(rows)
    fig, ax = plt.subplots(figsize=(7.5, height), dpi=130)
    values = [r["normalized_difference"] for r in reversed(rows)]
    ax.axvspan(-0.1, 0.1, color="#e8f3e8", zorder=0)
    for edge in (-0.25, 0.25):
        ax.axvline(edge, color="#c0392b", linestyle="--", linewidth=0.8)
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.scatter(values, range(len(rows)), color=PALETTE[0], zorder=3, s=28)
    ax.set_yticks(range(len(rows)), [r["variable"] for r in reversed(rows)])
    limit = max(0.3, max(abs(v) for v in values) * 1.15)
    ax.set_xlim(-limit, limit)
    ax.set_xlabel("Normalized difference, treatment − control (shaded: |d| < 0.1)")
    joint = results["balance"].get("joint_test")
    title = "Baseline balance"
    if joint:
        title += f"  (joint F = {joint['f']:.2f}, {p_text(joint['p'])})"
    ax.set_title(title, loc="left", fontsize=12)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def attrition_plot(results: dict[str, Any], path: Path) -> Path | None:
    attrition = results.get("attrition")
    if not attrition:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=130)
    arms = ["Control", "Treatment"]
    rates = [attrition["rate_control"], attrition["rate_treatment"]]
    sizes = [attrition["n_control"], attrition["n_treatment"]]
    errors = [1.96 * (r * (1 - r) / n) ** 0.5 for r, n in zip(rates, sizes, strict=True)]
    bars = ax.bar(
        arms,
        [100 * r for r in rates],
        yerr=[100 * e for e in errors],
        color=[PALETTE[5], PALETTE[0]],
        capsize=6,
        width=0.55,
    )
    for bar, rate in zip(bars, rates, strict=True):
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height() / 2,
            f"{100 * rate:.1f}%",
            ha="center",
            va="center",
            color="white",
            fontweight="bold",
        )
    ax.set_ylabel("Not surveyed at endline (%)")
    ax.set_ylim(0, max(100 * (r + e) for r, e in zip(rates, errors, strict=True)) * 1.25)
    ax.set_title(
        f"Attrition by arm: difference {100 * attrition['difference']:+.1f} pp, "
        f"{p_text(attrition['p'])}",
        loc="left",
        fontsize=11,
    )
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _table(headers: list[str], rows: list[list[str]], *, classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1150px;
color:#222;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.86rem;margin:.6rem 0}
th,td{padding:.3rem .55rem;border-bottom:1px solid #e4e4e4;text-align:right}
th:first-child,td:first-child{text-align:left} th{background:#f4f6f8}
tr.index td{font-weight:600;background:#f7fbff}
.warn{background:#fff7e0;border-left:4px solid #e0a800;padding:.5rem 1rem}
.muted{color:#666;font-size:.85rem} img{max-width:100%;border:1px solid #eee;margin:.4rem 0}
code{background:#f4f4f4;padding:0 .2rem}
"""


def render_html(results: dict[str, Any], figures: dict[str, Path | None], out: Path) -> str:
    design = results["design"]
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Trial results: {esc(results['trial'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Trial results: {esc(results['trial'])}</h1>",
        "<p class='muted'>"
        + esc(
            f"{design['n']:,} randomized units ({design['n_treatment']:,} treatment, "
            f"{design['n_control']:,} control); strata: {design['strata'] or 'none'}; "
            f"cluster: {design['cluster'] or 'none'}; headline SEs: {design['se_type']}; "
            f"generated {results['provenance']['generated_at']}."
        )
        + "</p>",
    ]
    if results["warnings"]:
        items = "".join(f"<li>{esc(w)}</li>" for w in results["warnings"])
        parts.append(f"<div class='warn'><strong>Warnings</strong><ul>{items}</ul></div>")

    parts.append("<h2>Effects (intention to treat)</h2>")
    parts.append(
        "<p class='muted'>OLS of each endline outcome on assignment with strata fixed effects, "
        "the baseline value of the outcome (ANCOVA) and the plan's covariates. "
        f"{esc(adjusted_label(results))} adjusts within each outcome family; RI p is the "
        "randomization-inference p-value; TOT instruments take-up with assignment (2SLS); "
        "Lee bounds trim the arm with the higher response rate. Indices (bold) are Anderson "
        "(2008) inverse-covariance-weighted, in control-group SDs.</p>"
    )
    headers = [
        "Outcome",
        "N",
        "Control mean",
        "ITT",
        "SE",
        "95% CI",
        "% of control",
        "p",
        adjusted_label(results),
        "RI p",
        "TOT (SE)",
        "Lee bounds",
    ]
    body, classes = [], []
    for row in result_rows(results):
        if row.get("note"):
            body.append([row["outcome"], row["n"], row["note"]] + [""] * 9)
        else:
            body.append(
                [
                    row["outcome"],
                    row["n"],
                    row["control_mean"],
                    row["itt"],
                    row["se"],
                    row["ci"],
                    row["pct"],
                    row["p"],
                    row["adjusted"],
                    row["ri_p"],
                    row["tot"],
                    row["lee"],
                ]
            )
        classes.append("index" if row["is_index"] else "")
    parts.append(_table(headers, body, classes=classes))
    parts.append("<p class='muted'>* p&lt;0.10, ** p&lt;0.05, *** p&lt;0.01 (unadjusted).</p>")
    alt_rows = []
    for outcome in results["outcomes"]:
        if outcome.get("skipped"):
            continue
        alt = outcome["se_alternatives"]
        alt_rows.append(
            [outcome["label"]] + [num(alt.get(k)) for k in ("classical", "HC1", "HC2", "cluster")]
        )
    parts.append(
        "<details><summary>Standard errors by type</summary>"
        + _table(["Outcome", "Classical", "HC1", "HC2", "Cluster (CR1)"], alt_rows)
        + "</details>"
    )
    if (figure := figures.get("coefficients")) is not None:
        parts.append(_img(figure, out, "Coefficient plot"))

    parts.append("<h2>Baseline balance</h2>")
    bal_rows = balance_rows(results)
    parts.append(
        _table(
            [
                "Variable",
                "Control mean",
                "Control SD",
                "Treatment mean",
                "Treatment SD",
                "Difference",
                "p",
                "Normalized diff.",
            ],
            bal_rows,
        )
    )
    for key, label in (
        ("joint_test", "all randomized units"),
        ("joint_test_respondents", "endline respondents"),
    ):
        joint = results["balance"].get(key)
        if joint:
            parts.append(
                "<p>"
                + esc(
                    f"Joint test of orthogonality ({label}): F({joint['df_num']}, "
                    f"{joint['df_denom']:.0f}) = {joint['f']:.2f}, {p_text(joint['p'])}, "
                    f"N = {joint['n']:,} ({joint['cov_type']})."
                )
                + "</p>"
            )
    if (figure := figures.get("balance")) is not None:
        parts.append(_img(figure, out, "Balance plot"))

    attrition = results.get("attrition")
    if attrition:
        parts.append("<h2>Attrition</h2>")
        parts.append(
            _table(
                ["", "Control", "Treatment", "Difference", "SE", "p"],
                [
                    [
                        "Not surveyed at endline",
                        f"{100 * attrition['rate_control']:.1f}%",
                        f"{100 * attrition['rate_treatment']:.1f}%",
                        f"{100 * attrition['difference']:+.1f} pp",
                        num(attrition["se"]),
                        pvalue(attrition["p"]),
                    ]
                ],
            )
        )
        selective = attrition.get("selective")
        if selective:
            parts.append(
                "<p>"
                + esc(
                    f"Selective attrition (assignment × baseline interactions jointly zero): "
                    f"F = {selective['f']:.2f}, {p_text(selective['p'])}."
                )
                + "</p>"
            )
        if (figure := figures.get("attrition")) is not None:
            parts.append(_img(figure, out, "Attrition plot"))

    if results["indices"]:
        parts.append("<h2>Index weights</h2>")
        index_rows = [
            [family, component, num(weight)]
            for family, info in results["indices"].items()
            for component, weight in info["weights"].items()
        ]
        parts.append(_table(["Family", "Component", "Weight"], index_rows))

    provenance = results["provenance"]
    parts.append(
        "<h2>Provenance</h2><p class='muted'>"
        + esc(
            f"tertulia {provenance['tertulia_version']}; data {provenance['data_file']} "
            f"(sha256 {provenance['data_sha256']}); {provenance['n_rows']:,} rows; seed "
            f"{provenance['seed']}; {provenance['permutations']:,} permutations; packages "
            + ", ".join(f"{k} {v}" for k, v in provenance["packages"].items())
            + ". The full Analysis plan is in results.json."
        )
        + "</p></body></html>"
    )
    return "\n".join(parts)


def _img(path: Path, out: Path, alt: str) -> str:
    return f"<img src='{html.escape(path.relative_to(out).as_posix())}' alt='{html.escape(alt)}'>"
