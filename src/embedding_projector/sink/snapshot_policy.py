"""When a training adapter snapshots, under which step, and what it already wrote.

Plain Python, no framework imports: the Lightning callback asks it at every epoch end, and
saves its state in checkpoints so a resumed run never writes a step twice. Every rank holds
the same state and takes the same decisions (sharded gathers are collectives).

Example:
    >>> policy = SnapshotPolicy(every_n_epochs=2, step_mode="global_step")
    >>> [epoch for epoch in range(6) if policy.due(epoch)]
    [1, 3, 5]
    >>> policy.step(epoch=1, global_step=40)
    (40, 'epoch 1')
    >>> policy.claim(["tokens", "features"], 40)
    ['tokens', 'features']
    >>> policy.claim(["tokens"], 40)  # already written at step 40
    []
    >>> SnapshotPolicy.from_state(2, "global_step", policy.state_dict()).is_written("tokens", 40)
    True
    >>> by_steps = SnapshotPolicy(every_n_steps=50)  # instead of epoch ends
    >>> [s for s in (0, 50, 99, 100) if by_steps.due_at_step(s)], by_steps.due(0)
    ([50, 100], False)

Two snapshots besides the due epochs, both claimed like any other (so a resumed run, or an
end of training that falls on a due epoch, never writes a step twice): the starting weights
(:meth:`start_step`, step 0 of a run that has not trained yet) and the end of training
(:meth:`step` of the last epoch, whether or not it was due):

    >>> policy.start_step(epoch=0, global_step=0)
    (0, 'start')
    >>> policy.start_step(epoch=3, global_step=160) is None  # resumed: no random start
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = ["SnapshotPolicy", "StepMode"]

#: ``"global_step"``: the optimizer step (lines up with the scalar charts); ``"epoch"``.
StepMode = Literal["global_step", "epoch"]


@dataclass
class SnapshotPolicy:
    """Snapshot every n-th epoch; number it by global step or epoch; never write one twice.

    Args:
        every_n_epochs: due after epochs n-1, 2n-1, ... (0-based).
        step_mode: which counter is the projector step; the tensor name shows the other.
        written: tag -> steps already written (restored from a checkpoint).
        every_n_steps: snapshot every n-th optimizer step instead of at epoch ends
            (:meth:`due_at_step`); ``None``: at epoch ends (:meth:`due`).

    Raises:
        ValueError: ``every_n_epochs`` or ``every_n_steps`` below 1, or an unknown
            ``step_mode``.
    """

    every_n_epochs: int = 1
    step_mode: StepMode = "global_step"
    written: dict[str, set[int]] = field(default_factory=dict)
    every_n_steps: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.every_n_epochs, bool) or not isinstance(self.every_n_epochs, int):
            raise TypeError(f"every_n_epochs must be an int; got {self.every_n_epochs!r}.")
        if self.every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1; got {self.every_n_epochs}.")
        if self.step_mode not in get_args(StepMode):
            choices = ", ".join(map(repr, get_args(StepMode)))
            raise ValueError(f"step must be one of {choices}; got {self.step_mode!r}.")
        steps = self.every_n_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)):
            raise TypeError(f"every_n_steps must be an int or None; got {steps!r}.")
        if steps is not None and steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None; got {steps}.")

    def due(self, epoch: int) -> bool:
        """Whether the end of ``epoch`` (0-based) is a snapshot (never with ``every_n_steps``)."""
        return self.every_n_steps is None and (epoch + 1) % self.every_n_epochs == 0

    def due_at_step(self, global_step: int) -> bool:
        """Whether optimizer step ``global_step`` (> 0) is a snapshot (with ``every_n_steps``)."""
        steps = self.every_n_steps
        return steps is not None and global_step > 0 and global_step % steps == 0

    def step(self, epoch: int, global_step: int) -> tuple[int, str]:
        """The projector step, and the tensor-name suffix naming the other counter."""
        if self.step_mode == "epoch":
            return epoch, f"step {global_step}"
        return global_step, f"epoch {epoch}"

    def start_step(self, epoch: int, global_step: int) -> tuple[int, str] | None:
        """The step of a snapshot of the starting weights, or ``None``: training has already
        advanced (a resumed run), or ``step_mode="epoch"``, whose step 0 is epoch 0's end."""
        if epoch != 0 or global_step != 0 or self.step_mode == "epoch":
            return None
        return 0, "start"

    def is_written(self, tag: str, step: int) -> bool:
        """Whether ``tag`` was already snapshot at ``step``."""
        return step in self.written.get(tag, ())

    def mark(self, tag: str, step: int) -> None:
        """Record ``tag`` as written at ``step``."""
        self.written.setdefault(tag, set()).add(step)

    def claim(self, tags: Iterable[str], step: int) -> list[str]:
        """The ``tags`` not yet written at ``step``, marked written now (in order)."""
        claimed = [tag for tag in tags if not self.is_written(tag, step)]
        for tag in claimed:
            self.mark(tag, step)
        return claimed

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: ``{"written": {tag: [steps]}}``."""
        return {"written": {tag: sorted(steps) for tag, steps in self.written.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Add the steps of a checkpoint (missing keys read as empty: old checkpoints load)."""
        for tag, steps in dict(state.get("written", {})).items():
            for step in steps:
                self.mark(str(tag), int(step))

    @classmethod
    def from_state(
        cls, every_n_epochs: int, step_mode: StepMode, state: Mapping[str, Any]
    ) -> SnapshotPolicy:
        """A policy with a checkpoint's steps already written."""
        policy = cls(every_n_epochs, step_mode)
        policy.load_state_dict(state)
        return policy
