"""One shape of progress and one meaning of cancel, for every long task
(training, pretraining, segmenting a volume, preparing examples, scoring,
benchmark runs), used the same way by the command line and the docks.

Long work takes `progress`, a callable given a `Progress` after each unit
of work, and `cancel`, a callable asked before each unit. When `cancel()`
returns True the work stops there and raises `Cancelled`; what was
complete is kept (a training run's best prompt set is saved, and comes
back as `Cancelled.result`), and nothing half-written is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    task: str  # "train", "pretrain", "segment", "prepare", "score", "bench"
    done: int  # units done so far
    total: int | None  # units in all, when known
    unit: str = "step"  # what a unit is: step, epoch, slice, image, run
    label: str = ""  # what is being worked on: a data spec, a method
    epoch: int | None = None
    epochs: int | None = None
    loss: float | None = None
    # At an epoch's end (unit "epoch"): its validation metrics; for a
    # benchmark run, the row it measured.
    metrics: dict | None = None
    best: bool = False  # this epoch is the best so far
    seconds: float | None = None  # since the work started

    @property
    def fraction(self) -> float | None:
        return None if not self.total else self.done / self.total


ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


class Cancelled(Exception):
    """`cancel()` said stop. `result` holds what was complete and kept
    (a `TrainResult` whose best set is saved), or None."""

    def __init__(self, message: str = "cancelled", result=None):
        super().__init__(message)
        self.result = result


def check_cancel(cancel: CancelFn | None, where: str, result=None) -> None:
    """Raise `Cancelled` when `cancel()` says stop; `where` says at what point."""
    if cancel is not None and cancel():
        raise Cancelled(f"cancelled {where}", result)
