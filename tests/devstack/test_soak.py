"""devstack/soak.py: the growth verdict, the process-tree memory and the written report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack import soak


def rows(**series: list[float]) -> list[dict[str, Any]]:
    """Samples with the given series, one row a minute."""
    length = len(next(iter(series.values())))
    return [
        {"minute": m + 1, **{name: values[m] for name, values in series.items()}}
        for m in range(length)
    ]


class TestGrowth:
    def test_a_flat_series_does_not_grow(self) -> None:
        assert not soak.growth([100, 101, 99, 100, 100, 101, 99, 100])[0]

    def test_a_series_that_keeps_rising_grows(self) -> None:
        grows, first, last = soak.growth([100 + 5 * m for m in range(10)])
        assert grows
        assert first == pytest.approx(5) and last == pytest.approx(5)

    def test_warming_up_then_levelling_off_is_not_growth(self) -> None:
        assert not soak.growth([50, 80, 95, 100, 100, 100, 101, 100, 100, 100])[0]

    def test_a_tiny_steady_rise_is_below_the_threshold(self) -> None:
        # +0.01 MB a minute on 500 MB: 0.6 MB an hour, well under 10 %.
        assert not soak.growth([500 + 0.01 * m for m in range(10)])[0]


class TestVerdicts:
    def test_expected_growth_is_named_with_its_reason_unexpected_is_flagged(self) -> None:
        lines = soak.verdicts(
            rows(
                redis_keys=[1000.0 * m for m in range(1, 9)],
                rss_web_mb=[100.0 + 10 * m for m in range(8)],
                rss_worker_mb=[200.0] * 8,
                paid=[120.0] * 8,
            )
        )
        assert any(line.startswith("redis_keys: grows, expected") for line in lines)
        assert soak.unexpected(lines) == [next(x for x in lines if x.startswith("rss_web_mb"))]
        assert all(not line.startswith(("paid", "minute")) for line in lines)


class TestProcessTree:
    def test_rss_sums_a_process_and_all_its_descendants_only(self) -> None:
        table = {10: (1, 1024), 11: (10, 2048), 12: (11, 1024), 20: (1, 99_999)}
        assert soak.tree_rss_mb(10, table) == 4.0


class TestReport:
    def test_writes_csv_png_and_markdown_and_fails_on_unexpected_growth(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        samples = rows(
            rss_web_mb=[100.0 + 10 * m for m in range(6)],
            redis_keys=[10.0] * 6,
            pg_connections=[None] * 6,  # SQLite: no PostgreSQL series
            p99_paid_s=[1.0] * 6,
            paid=[60.0] * 6,
            failed=[0.0] * 6,
        )
        status = soak.report(samples, tmp_path / "run", "test run")
        assert status == 1
        assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")
        assert (tmp_path / "run.csv").read_text().splitlines()[0].startswith("minute,rss_web_mb")
        assert "| minute | rss_web_mb |" in (tmp_path / "run.md").read_text()
        assert "unexpected growth: rss_web_mb" in capsys.readouterr().out


class TestShortRuns:
    def test_fewer_samples_than_needed_get_no_verdict(self) -> None:
        lines = soak.verdicts(rows(rss_web_mb=[100.0, 150.0, 200.0]))
        assert lines == ["rss_web_mb: no verdict (3 samples, 6 needed)"]
        assert soak.unexpected(lines) == []

    def test_redis_cost_per_paid_order(self) -> None:
        samples = rows(redis_keys=[100.0, 700.0, 1300.0], redis_memory_mb=[2.0, 2.5, 3.0],
                       paid=[100.0, 100.0, 100.0])  # fmt: skip
        assert soak.per_order(samples).startswith("Redis per paid order: 6.0 keys, 5.1 KiB")


def test_failures_are_counted_by_how_the_buyer_ended() -> None:
    outcomes = [
        soak.Outcome(1.0, 0.1, 0.2, 0.3, True),
        soak.Outcome(1.0, 0.1, 0.0, 0.0, False, "submit 429"),
        soak.Outcome(1.0, 0.1, 0.2, 0.0, False, "TimeoutError"),
        soak.Outcome(1.0, 0.1, 0.0, 0.0, False, "submit 429"),
    ]
    assert soak.failure_reasons(outcomes) == {"submit 429": 2, "TimeoutError": 1}
