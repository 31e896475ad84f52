"""A tiny model whose forward pass never returns once told to hang (issue 11.4): in a Python
loop, or blocked in one C call. Pickled as a whole model by the tests, so the window opens it
like a user's file (``tests.gui.hanging`` must be importable: run from the repository root)."""

from __future__ import annotations

import threading

import torch
from torch import nn

HANG = threading.Event()  # set: every forward pass hangs
RELEASE = threading.Event()  # set: a hanging forward pass returns
IN_FORWARD = threading.Event()  # set when a forward pass has started hanging
HOW = {"where": "python"}  # "python": a busy loop; "c": one lock wait (nothing can land in it)


class Hanging(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if HANG.is_set():
            IN_FORWARD.set()
            if HOW["where"] == "python":
                n = 0
                while not RELEASE.is_set():  # a model stuck in its own Python code
                    n += 1
            else:
                RELEASE.wait()  # stuck in C: no exception can be raised into it
        return self.pool(y).flatten(1)


def reset() -> None:
    HANG.clear()
    RELEASE.clear()
    IN_FORWARD.clear()
    HOW["where"] = "python"
