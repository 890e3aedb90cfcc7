"""Studies 3.2 to 3.4, quality against the schedule: no resampling against t_T, the amount
of resampling at fixed t_T, and resampling only early against only late at equal cost. All
run as extra methods of the quality benchmark (benchmarks.lib.runner)."""

from __future__ import annotations

from typing import Any

from benchmarks.lib.methods import Method
from repaint.errors import RepaintError
from repaint.schedule import JumpSchedule

T_T_LEVELS = (10, 25, 50, 100, 250)
RESAMPLINGS = (2, 3, 5, 10, 20)  # jump_n_sample at t_T=50, jump_length=10
EARLY_LATE = {"t_T": 50, "jump_length": 5, "jump_n_sample": 5}
GROUPS = ("t_T", "resampling", "early-late")


def quality_methods(scale: float) -> dict[str, list[Method]]:
    """The schedules of experiments t_T, resampling and early-late (`scale` < 1: shorter)."""

    def method(name: str, **params: int) -> Method:
        if scale != 1:
            params["t_T"] = max(4, round(params["t_T"] * scale))
            params["jump_length"] = max(1, round(params.get("jump_length", 10) * scale))
        schedule = JumpSchedule(**params)
        return Method(name, "repaint", schedule.summary().splitlines()[0], schedule)

    middle = max(4, round(EARLY_LATE["t_T"] * scale)) // 2
    early = method(f"early only (t >= {middle})", **EARLY_LATE, stop_resampling=middle)
    late = method(f"late only (t <= {middle - 1})", **EARLY_LATE, start_resampling=middle - 1)
    if early.evaluations != late.evaluations:
        raise RepaintError(f"early/late costs differ: {early.evaluations} vs {late.evaluations}")
    return {
        "t_T": [method(f"t_T={t}", t_T=t, jump_n_sample=1) for t in T_T_LEVELS],
        "resampling": [
            method(f"jump_n_sample={n}", t_T=50, jump_length=10, jump_n_sample=n)
            for n in RESAMPLINGS
        ],
        "early-late": [early, late, method("everywhere", **EARLY_LATE)],
    }


def quality_rows(report: dict[str, Any], methods: list[Method]) -> list[dict[str, Any]]:
    """The quality benchmark's rows of `methods`, as the study's tables read them."""
    rows = []
    for method in methods:
        row = report["methods"][method.name]
        rows.append(
            {
                "setting": method.name,
                "schedule": row["schedule"],
                "evaluations": row["evaluations_per_image"],
                "seconds_per_image": row["seconds_per_image"],
                **row["mean"],
                "per_kind_accuracy": {k: v["accuracy"] for k, v in row["per_kind"].items()},
            }
        )
    return rows
