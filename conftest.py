"""Wires quick mode for the whole test run: unit tests and the notebooks nbval re-executes.

Set here, before any kernel starts, so every lesson inherits it. Quick mode scales step counts
down and writes checkpoints to checkpoints/quick/, so a test run never touches a full run.
"""

import os

os.environ.setdefault("GPT05M_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
