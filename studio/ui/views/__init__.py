"""The three views that take the centre of the window in turn — Design, Train, Evaluate — and
the mode bar that switches them (after Sony Neural Network Console's EDIT, TRAINING and
EVALUATION tabs): each view gets the whole window instead of a corner of it."""

from .modebar import ModeBar
from .runs_box import RunsBox
from .workspace import MODES, Views, first_launch_geometry

__all__ = ["MODES", "ModeBar", "RunsBox", "Views", "first_launch_geometry"]
