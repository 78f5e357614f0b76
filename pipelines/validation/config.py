"""Validation settings: a small frozen, picklable dataclass (it travels to Beam workers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValidationConfig:
    """Settings that override the suite JSON files at run time."""

    # Share of patients with race_ethnicity_status = 'reported' that a batch must reach: California purchasers
    # require 80% (contract section 5). Overrides `mostly` of the completeness expectation.
    completeness_goal: float = 0.80

    def __post_init__(self) -> None:
        goal = self.completeness_goal
        if isinstance(goal, bool) or not isinstance(goal, (int, float)) or not 0.0 <= goal <= 1.0:
            raise ValueError(f"completeness_goal must be a number between 0 and 1, got {goal!r}")
