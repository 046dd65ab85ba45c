"""Funnel statistics against values computed by hand (formulas written out here)."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from tertulia.randomization.funnel_stats import (
    FunnelError,
    compare,
    cost_per,
    funnel_png,
    funnel_table,
    rate,
)

Z = 1.959963984540054  # the 97.5% normal quantile

A = {
    "started": 200,
    "eligible": 150,
    "consented": 120,
    "baseline_done": 100,
    "randomized": 100,
    "active_day7": 45,
    "completed": 30,
}
B = {
    "started": 100,
    "eligible": 80,
    "consented": 50,
    "baseline_done": 40,
    "randomized": 40,
    "active_day7": 20,
    "completed": 10,
}


def wilson(x: int, n: int) -> tuple[float, float]:
    p = x / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


def test_wilson_interval_matches_the_formula_and_the_textbook_value() -> None:
    r = rate(40, 100)
    assert r.rate == 0.4
    assert (r.low, r.high) == pytest.approx(wilson(40, 100), abs=1e-12)
    assert (round(r.low, 4), round(r.high, 4)) == (0.3094, 0.4980)
    zero = rate(0, 20)  # Wilson stays inside [0, 1] where the normal interval would not
    assert zero.low == pytest.approx(0, abs=1e-12)
    assert zero.high == pytest.approx(Z**2 / (20 + Z**2), abs=1e-12)


def test_no_trials_gives_no_rate_rather_than_an_error() -> None:
    assert math.isnan(rate(0, 0).rate)


def test_the_table_has_each_variant_and_the_overall_funnel() -> None:
    table = funnel_table({"A": A, "B": B}, costs={"A": 1500.0, "B": 400.0})
    assert list(table["variant"].unique()) == ["A", "B", "overall"]
    row = table.set_index(["variant", "stage"]).loc[("A", "consented")]
    assert row["count"] == 120
    assert row["step_rate"] == pytest.approx(120 / 150)
    assert (row["step_low"], row["step_high"]) == pytest.approx(wilson(120, 150), abs=1e-12)
    assert row["from_start"] == pytest.approx(120 / 200)
    overall = table.set_index(["variant", "stage"]).loc[("overall", "completed")]
    assert overall["count"] == 40
    assert overall["step_rate"] == pytest.approx(40 / 65)
    # Costs: A spent 1,500 for 100 randomized and 30 completers; overall 1,900 for 140 and 40.
    assert row["cost_per_enrolled"] == 15.0
    assert row["cost_per_completer"] == 50.0
    assert overall["cost_per_enrolled"] == pytest.approx(1900 / 140)
    assert overall["cost_per_completer"] == 47.5


def test_cost_per_nobody_is_none() -> None:
    assert cost_per(100.0, 0) is None
    assert cost_per(100.0, 8) == 12.5
    with pytest.raises(FunnelError, match="negative"):
        cost_per(-1.0, 3)


def test_counts_that_grow_down_the_funnel_are_refused_by_stage() -> None:
    with pytest.raises(FunnelError) as caught:
        funnel_table({"A": {**A, "completed": 60}})
    assert str(caught.value) == (
        "variant 'A': 'completed' (60) is more than 'active_day7' (45); each stage counts men "
        "who also reached the one before"
    )
    with pytest.raises(FunnelError, match="unknown stages \\['clicked'\\]"):
        funnel_table({"A": {"clicked": 3}})
    with pytest.raises(FunnelError, match="'eligible' is -1"):
        funnel_table({"A": {"started": 3, "eligible": -1}})


def test_two_variants_are_compared_with_a_z_test_when_counts_are_large() -> None:
    result = compare((60, 200), (40, 200))
    pooled = 100 / 400
    z = (0.3 - 0.2) / math.sqrt(pooled * (1 - pooled) * (1 / 200 + 1 / 200))
    p = math.erfc(z / math.sqrt(2))  # two-sided
    assert result.method == "z-test"
    assert result.statistic == pytest.approx(z, rel=1e-9)  # 2.3094
    assert result.p_value == pytest.approx(p, rel=1e-9)  # 0.0209
    assert round(result.p_value, 4) == 0.0209
    assert result.difference == pytest.approx(0.1)
    assert result.low < 0.1 < result.high and result.low > 0


def test_small_counts_use_fishers_exact_test() -> None:
    """3/10 against 0/10: P(X=3) = C(3,3)·C(17,7)/C(20,10) and the table as extreme the other
    way has the same probability, so p = 2 · 19448/184756."""
    result = compare((3, 10), (0, 10))
    assert result.method == "fisher"
    assert result.p_value == pytest.approx(2 * math.comb(17, 7) / math.comb(20, 10), rel=1e-9)
    assert math.isinf(result.statistic)


def test_impossible_comparisons_say_why() -> None:
    with pytest.raises(FunnelError, match="12 out of 10 is not a proportion"):
        compare((12, 10), (1, 10))
    with pytest.raises(FunnelError, match="at least one man"):
        compare((0, 0), (1, 10))


def test_the_funnel_plot_is_a_png_with_a_bar_per_stage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    png = funnel_png(A, title="Variant A — video testimonial")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > 800 and image.height > 400
    (tmp_path / "funnel.png").write_bytes(png)
    empty = funnel_png({}, title="Variant C — no clicks yet")
    assert Image.open(io.BytesIO(empty)).format == "PNG"


def test_a_label_wider_than_its_bar_goes_beside_it() -> None:
    """The last stages' bars are narrow: their count goes to the right of the bar, not over
    its edges; a label that fits stays centred in its bar."""
    import matplotlib.pyplot as plt

    from tertulia.randomization.funnel_stats import funnel_figure

    counts = {**A, "active_day7": 70, "completed": 3}
    fig = funnel_figure(counts, title="B")
    texts = {t.get_text(): t for t in fig.axes[0].texts}
    widest = counts["started"]
    narrow = texts["3  (2%)"]
    assert narrow.get_horizontalalignment() == "left"
    assert narrow.get_position()[0] > (widest + 3) / 2  # right of the bar's right edge
    wide = texts["200  (100%)"]
    assert (wide.get_horizontalalignment(), wide.get_position()[0]) == ("center", widest / 2)
    plt.close(fig)
