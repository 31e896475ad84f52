"""The explainer's player without a window: what is animated (:class:`Source`) and where the
animation is (:class:`Player`: steps, index, filter, channel page, playing or paused).

The window's explainer holds one of each per mode and draws what they say; tests drive them
directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine import ConvSpec
from engine.direct import UnitTrace
from models.explain.arithmetic import check_conv, explain_unit, positions, region_of
from models.explain.sandbox import Sandbox

LAYER_STEPS = 49  # the block of positions played around the picked unit (7x7)


@dataclass(frozen=True, eq=False)
class Source:
    """A convolution and its input, as the explainer animates it.

    ``output``: what the engine computed, ``(O, H_out, W_out)`` (the layer's feature map, the
    sandbox's output), shown beside the traced value; None to trace only.
    """

    weight: np.ndarray
    bias: np.ndarray | None
    input: np.ndarray
    conv: ConvSpec
    title: str
    output: np.ndarray | None = None

    @classmethod
    def of_layer(
        cls,
        weight: np.ndarray,
        bias: np.ndarray | None,
        layer_input: np.ndarray,
        conv: ConvSpec,
        feature_map: np.ndarray | None,
        layer: str,
    ) -> Source:
        """A conv layer on real data; ``LayerError`` when the shapes do not fit ``conv``. A
        feature map of another shape (a repeated call's) is dropped: traced only."""
        weight = np.asarray(weight, dtype=np.float32)
        layer_input = np.asarray(layer_input, dtype=np.float32)
        check_conv(conv, layer_input.shape, weight.shape)
        fm = None
        if feature_map is not None:
            fm = np.asarray(feature_map, dtype=np.float32)
            if fm.shape != (conv.c_out, conv.out_h, conv.out_w):
                fm = None
        return cls(weight, bias, layer_input, conv, layer, fm)

    @classmethod
    def of_sandbox(cls, sandbox: Sandbox) -> Source | None:
        """The sandbox with its output; None when its settings have no output."""
        if sandbox.problem() is not None:
            return None
        return cls(sandbox.weight, sandbox.bias, sandbox.input, sandbox.conv, "Sandbox", sandbox.compute())

    def trace(self, out_channel: int, y: int, x: int) -> UnitTrace:
        return explain_unit(self.weight, self.bias, self.input, self.conv, out_channel, y, x)

    def engine_value(self, out_channel: int, y: int, x: int) -> float | None:
        return None if self.output is None else float(self.output[out_channel, y, x])

    def done_grid(self, out_channel: int, visited: Sequence[tuple[int, int]]) -> np.ndarray:
        """Output values of the positions already visited (NaN elsewhere): the grid filling up."""
        done = np.full((self.conv.out_h, self.conv.out_w), np.nan)
        for y, x in visited:
            if self.output is not None:
                done[y, x] = self.output[out_channel, y, x]
            else:  # no engine output: trace the earlier positions too
                done[y, x] = self.trace(out_channel, y, x).value
        return done

    def out_scale(self, out_channel: int, region: tuple[int, int, int, int]) -> float | None:
        """The output grid's colour scale over ``region`` (fixed across the animation)."""
        if self.output is None:
            return None
        y0, y1, x0, x1 = region
        return float(np.abs(self.output[out_channel, y0:y1, x0:x1]).max(initial=0.0))

    def steps_around(self, y: int, x: int) -> list[tuple[int, int]]:
        """The positions played around unit ``(y, x)`` (every position of a small output)."""
        return positions(self.conv.out_h, self.conv.out_w, LAYER_STEPS, center=(y, x))

    def all_steps(self) -> list[tuple[int, int]]:
        return positions(self.conv.out_h, self.conv.out_w)


@dataclass
class Player:
    """Where the animation is: the positions it visits (``steps``, in play order), the one shown
    (``index``), the filter, the page of input channels drawn, and whether it plays."""

    steps: list[tuple[int, int]] = field(default_factory=list)
    index: int = 0
    filter: int = 0
    filters: int = 1
    channel_page: int = 0
    playing: bool = False

    def load(
        self,
        steps: Sequence[tuple[int, int]],
        filters: int,
        *,
        at: tuple[int, int] | None = None,
        filter: int | None = None,
    ) -> None:
        """New positions for ``filters`` filters; shows ``at`` (else keeps the index where it can)
        and ``filter`` (else keeps the filter, clipped). No positions: paused."""
        self.steps = list(steps)
        self.filters = max(1, int(filters))
        if at is not None and at in self.steps:
            self.index = self.steps.index(at)
        self.index = min(self.index, max(len(self.steps) - 1, 0))
        self.filter = min(self.filter if filter is None else int(filter), self.filters - 1)
        if not self.steps:
            self.playing = False

    def clear(self) -> None:
        self.steps, self.index, self.playing = [], 0, False

    def position(self) -> tuple[int, int] | None:
        return self.steps[self.index] if self.steps else None

    def current(self) -> tuple[int, int, int] | None:
        """``(filter, y, x)`` of the unit shown."""
        pos = self.position()
        return None if pos is None else (self.filter, *pos)

    def visited(self) -> list[tuple[int, int]]:
        """The positions before the one shown (their outputs are filled in)."""
        return self.steps[: self.index]

    def region(self) -> tuple[int, int, int, int] | None:
        return region_of(self.steps) if self.steps else None

    def go_to(self, index: int) -> bool:
        """Show position ``index``; True if that changed anything."""
        if self.steps and 0 <= index < len(self.steps) and index != self.index:
            self.index = int(index)
            return True
        return False

    def step(self, delta: int = 1) -> bool:
        """Move ``delta`` positions, wrapping round at the ends."""
        return bool(self.steps) and self.go_to((self.index + delta) % len(self.steps))

    def set_filter(self, out_channel: int) -> bool:
        out_channel = int(np.clip(out_channel, 0, self.filters - 1))
        changed = out_channel != self.filter
        self.filter = out_channel
        return changed

    def next_filter(self) -> None:
        """The next filter (wrapping), from the first position: it fills the next output channel."""
        self.index = 0
        self.filter = (self.filter + 1) % self.filters

    def set_channel_page(self, page: int, pages: int) -> bool:
        page = int(np.clip(page, 0, max(pages - 1, 0)))
        changed = page != self.channel_page
        self.channel_page = page
        return changed

    def play(self) -> bool:
        """Start playing (not without positions); returns whether it plays."""
        self.playing = bool(self.steps)
        return self.playing

    def pause(self) -> None:
        self.playing = False

    def toggle(self) -> bool:
        if self.playing:
            self.pause()
        else:
            self.play()
        return self.playing

    def tick(self) -> bool:
        """One step of playing (the timer's); pauses when there is nothing to play."""
        if not self.playing:
            return False
        if not self.steps:
            self.pause()
            return False
        return self.step(1)
