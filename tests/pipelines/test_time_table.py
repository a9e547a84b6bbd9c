"""The closing "where the time went" table of ``gbench reproduce`` / ``gbench demo``."""
from __future__ import annotations

import io

from rich.console import Console

from gbench.pipelines.reproduce import time_table


def _render(table: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=100).print(table)
    return buf.getvalue()


def test_time_table_rows_shares_and_other() -> None:
    # a cached stage counts the time this run spent on it (spent_s), not its original run (seconds)
    stages = [{"stage": "data preview", "spent_s": 5.0}, {"stage": "train-sharp-gan", "seconds": 75.0},
              {"stage": "segment-unet-R-seed0", "seconds": 300.0, "spent_s": 20.0, "skipped": True}]
    text = _render(time_table(stages, total_s=125.0))
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") >= 3}
    assert "train-sharp-gan" in lines and "1 min 15 s" in lines["train-sharp-gan"] and "60.0%" in lines["train-sharp-gan"]
    assert "segment-unet-R-seed0 (cached)" in lines and "16.0%" in lines["segment-unet-R-seed0 (cached)"]
    # the 25 s outside the listed stages show as "other"; the total is the whole run
    assert "20.0%" in lines["other"] and "2 min 05 s" in lines["total"] and "100%" in lines["total"]
    # without a total, the shares are of the listed stages
    text = _render(time_table(stages))
    assert "other" not in text and "75.0%" in text


def test_grouped_time_table_sums_families() -> None:
    stages = [{"stage": "train-sharp-gan", "spent_s": 40.0}, {"stage": "quality-sharp-gan", "spent_s": 1.0},
              {"stage": "quality-gan-dist", "spent_s": 2.0, "skipped": True},
              {"stage": "segment-unet-R-seed0", "spent_s": 20.0},
              {"stage": "segment-unet-R-and-S3k-seed0", "spent_s": 30.0},
              {"stage": "segment-segnet-R-seed0", "spent_s": 7.0, "skipped": True}]
    text = _render(time_table(stages, total_s=100.0, group=True))
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") >= 3}
    assert "segment unet (2 stages)" in lines and "50.0 s" in lines["segment unet (2 stages)"]
    assert "50.0%" in lines["segment unet (2 stages)"]
    assert "quality (2 stages) (1 cached)" in lines and "3.0%" in lines["quality (2 stages) (1 cached)"]
    assert "segment segnet (cached)" in lines and "train-sharp-gan" in lines
    assert not any(k.startswith("segment-") for k in lines)  # no per-cell rows
