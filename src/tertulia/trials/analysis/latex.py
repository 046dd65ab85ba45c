"""LaTeX (booktabs) versions of the results, balance and attrition tables, for papers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tertulia.trials.analysis.tables import (
    adjusted_label,
    balance_rows,
    num,
    pvalue,
    result_rows,
)

SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "—": "--",
    "−": "-",
}


def escape(text: str) -> str:
    return "".join(SPECIAL.get(ch, ch) for ch in text)


def _tabular(
    headers: list[str], rows: list[list[str]], align: str, caption: str, label: str, note: str
) -> str:
    lines = [
        r"\begin{table}[htbp]\centering\small",
        rf"\caption{{{escape(caption)}}}\label{{{label}}}",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(escape(h) for h in headers) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(escape(c) for c in row) + r" \\" for row in rows]
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\par\smallskip\footnotesize {escape(note)}",
        r"\end{table}",
        "",
    ]
    return "\n".join(lines)


def itt_table(results: dict[str, Any]) -> str:
    headers = [
        "Outcome",
        "N",
        "Control mean",
        "ITT",
        "SE",
        "% of control",
        "p",
        adjusted_label(results),
        "RI p",
    ]
    rows = []
    for row in result_rows(results):
        if row.get("note"):
            rows.append([row["outcome"], row["n"], "not estimated"] + [""] * 6)
            continue
        rows.append(
            [
                row["outcome"],
                row["n"],
                row["control_mean"],
                row["itt"],
                row["se"],
                row["pct"],
                row["p"],
                row["adjusted"],
                row["ri_p"],
            ]
        )
    note = (
        f"OLS with strata fixed effects and the baseline outcome; {results['design']['se_type']} "
        "standard errors. * p<0.10, ** p<0.05, *** p<0.01 (unadjusted)."
    )
    return _tabular(
        headers,
        rows,
        "l" + "r" * 8,
        f"Intention-to-treat effects: {results['trial']}",
        "tab:itt",
        note,
    )


def balance_table(results: dict[str, Any]) -> str:
    rows = balance_rows(results)
    joint = results["balance"].get("joint_test")
    note = "Differences with strata fixed effects, HC1 standard errors."
    if joint:
        note += f" Joint test: F = {joint['f']:.2f}, p = {pvalue(joint['p'])}."
    return _tabular(
        [
            "Variable",
            "Control mean",
            "Control SD",
            "Treatment mean",
            "Treatment SD",
            "Difference",
            "p",
            "Norm. diff.",
        ],
        rows,
        "l" + "r" * 7,
        "Baseline balance",
        "tab:balance",
        note,
    )


def attrition_table(results: dict[str, Any]) -> str | None:
    a = results.get("attrition")
    if not a:
        return None
    rows = [
        [
            "Not surveyed at endline",
            f"{100 * a['rate_control']:.1f}%",
            f"{100 * a['rate_treatment']:.1f}%",
            f"{100 * a['difference']:+.1f} pp",
            num(a["se"]),
            pvalue(a["p"]),
        ]
    ]
    return _tabular(
        ["", "Control", "Treatment", "Difference", "SE", "p"],
        rows,
        "lrrrrr",
        "Attrition by arm",
        "tab:attrition",
        "Difference with strata fixed effects.",
    )


def write_tables(results: dict[str, Any], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in (
        ("itt", itt_table(results)),
        ("balance", balance_table(results)),
        ("attrition", attrition_table(results)),
    ):
        if text is None:
            continue
        path = directory / f"{name}.tex"
        path.write_text(text, encoding="utf-8")
        written[f"latex_{name}"] = path
    return written
