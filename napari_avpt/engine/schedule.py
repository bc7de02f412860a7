"""The learning-rate schedule of a training run, and what a time budget
(`TrainConfig.minutes`) makes of its number of epochs."""

from __future__ import annotations

import math


class WarmupCosine:
    """Linear warm-up over the first 5 % of the steps, then cosine decay, as
    a `LambdaLR` factor; `total` may change while training (a time budget)."""

    def __init__(self, total_steps: int):
        self.total = total_steps

    def __call__(self, step: int) -> float:
        warmup = max(1, self.total // 20)
        return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step / self.total, 1.0)))


def epochs_that_fit(minutes: float, most: int, done: int, seconds: float) -> int:
    """The epochs `minutes` hold at the pace of the `done` epochs that took
    `seconds`: at least those done, at most `most`."""
    pace = max(seconds / done, 1e-6)  # seconds per epoch; never zero on a coarse clock
    return max(done, min(most, int(minutes * 60 / pace)))
