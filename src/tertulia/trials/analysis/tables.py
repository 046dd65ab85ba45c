"""The results table as rows of formatted text, shared by the console, HTML and LaTeX."""

from __future__ import annotations

from typing import Any

STARS = ((0.01, "***"), (0.05, "**"), (0.1, "*"))


def num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def pvalue(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def p_text(value: float | None) -> str:
    """'p = 0.123' or 'p < 0.001', for sentences and titles."""
    text = pvalue(value)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def stars(p: float | None) -> str:
    if p is None:
        return ""
    for threshold, mark in STARS:
        if p < threshold:
            return mark
    return ""


def result_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per outcome: the columns every rendering of the results table shows."""
    rows = []
    adjusted_key = (
        "p_romano_wolf" if results.get("multiple_testing") == "romano_wolf" else "q_sharpened"
    )
    for outcome in results["outcomes"]:
        base = {
            "outcome": outcome["label"],
            "family": outcome["family"],
            "is_index": "yes" if outcome["is_index"] else "",
            "n": f"{outcome['n']:,}",
        }
        if outcome.get("skipped"):
            rows.append({**base, "note": "not estimated: see warnings"})
            continue
        itt = outcome["itt"]
        pct = outcome.get("pct_of_control_mean")
        tot = outcome.get("tot")
        lee = outcome.get("lee_bounds")
        rows.append(
            {
                **base,
                "control_mean": num(outcome["control_mean"]),
                "itt": num(itt["estimate"]) + stars(itt["p"]),
                "se": num(itt["se"]),
                "ci": f"[{num(itt['ci_low'])}, {num(itt['ci_high'])}]",
                "pct": "—" if pct is None else f"{pct:+.1f}%",
                "p": pvalue(itt["p"]),
                "adjusted": pvalue(outcome.get(adjusted_key)),
                "ri_p": pvalue(outcome.get("ri_p")),
                "tot": "—" if not tot else f"{num(tot['estimate'])} ({num(tot['se'])})",
                "lee": "—" if not lee else f"[{num(lee['lower'])}, {num(lee['upper'])}]",
                "note": "",
            }
        )
    return rows


def adjusted_label(results: dict[str, Any]) -> str:
    return "RW p" if results.get("multiple_testing") == "romano_wolf" else "q (sharpened)"


def console_table(results: dict[str, Any]) -> str:
    """The short results table printed by `tertulia trial analyze` and `demo`."""
    columns = [
        ("outcome", "Outcome", 34),
        ("n", "N", 6),
        ("control_mean", "Ctrl mean", 9),
        ("itt", "ITT", 10),
        ("se", "SE", 7),
        ("pct", "% ctrl", 8),
        ("p", "p", 7),
        ("adjusted", "q" if results.get("multiple_testing") != "romano_wolf" else "RW p", 7),
        ("ri_p", "RI p", 7),
    ]
    se_type = results["design"]["se_type"]
    lines = [
        f"Trial '{results['trial']}': ITT with strata FE and baseline outcome, {se_type} SEs",
        "  ".join(
            f"{title:<{width}}" if key == "outcome" else f"{title:>{width}}"
            for key, title, width in columns
        ),
    ]
    lines.append("-" * len(lines[-1]))
    for row in result_rows(results):
        if row.get("note"):
            lines.append(f"{row['outcome'][:34]:<34}  {row['n']:>6}  {row['note']}")
            continue
        cells = []
        for key, _, width in columns:
            text = row[key]
            if key == "outcome":
                text = (("» " if row["is_index"] else "") + text)[:width]
                cells.append(f"{text:<{width}}")
            else:
                cells.append(f"{text:>{width}}")
        lines.append("  ".join(cells))
    lines.append(
        "* p<0.10, ** p<0.05, *** p<0.01 (unadjusted); q within family; RI p by "
        f"{results['provenance']['permutations']:,} re-randomizations."
    )
    return "\n".join(lines)


def balance_rows(results: dict[str, Any]) -> list[list[str]]:
    """The balance table's rows: variable, control mean and SD, treatment mean and SD,
    difference, p and normalized difference."""
    return [
        [
            r["variable"],
            num(r["mean_control"]),
            num(r["sd_control"]),
            num(r["mean_treatment"]),
            num(r["sd_treatment"]),
            num(r["difference"]),
            pvalue(r["p"]),
            num(r["normalized_difference"]),
        ]
        for r in results["balance"]["variables"]
    ]
