"""The explainer tab, itself a :class:`gui.view.View`: ``view`` (the tab), ``panes`` (its
widgets), ``frame_view`` (a frame, values on hover), ``sandbox_panel`` (the sandbox's controls),
``player_bar`` (the player's buttons). The animation's state is :class:`models.explain.Player`, Qt-free."""

from gui.explainer.frame_view import FrameView, fit, scaled_to, to_qimage
from gui.explainer.player_bar import SPEEDS
from gui.explainer.view import ExplainerView

__all__ = ["SPEEDS", "ExplainerView", "FrameView", "fit", "scaled_to", "to_qimage"]
