"""One record per optimisation step, the single thing callbacks, the CLI and logs consume."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Progress:
    """The state of a stylization after one step.

    Attributes:
        step: 1-based step count over the whole run (all scales).
        total_steps: steps the whole run will take (L-BFGS: the iteration limit).
        scale: 0-based index of the current scale; `size` is its (height, width).
        losses: `{"content", "style", "tv", "total"}` as floats, for the image this step
            started from (unweighted parts, weighted total).
        elapsed_s: seconds since `stylize` started, compilation included.
        image: the current image, float32 `[H, W, 3]` in [0, 1], or None. Present on the last
            step of each compiled call (every `steps_per_call` steps) and on the final step.
        tiles: the tiles this scale's step runs VGG on (1: untiled; see `tfstyle.ops.tiles`).
    """

    step: int
    total_steps: int
    scale: int
    size: tuple[int, int]
    losses: dict[str, float]
    elapsed_s: float
    image: np.ndarray | None = None
    tiles: int = 1

    @property
    def is_last(self):
        return self.step == self.total_steps
