"""tests/gpu_check.py on a machine without a CUDA GPU: it says so, writes nothing, exits 0."""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_without_a_gpu_the_check_says_so_and_writes_nothing():
    before = sorted(TESTS.glob("gpu_*.json"))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(TESTS / "gpu_check.py")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("No CUDA GPU found")
    assert sorted(TESTS.glob("gpu_*.json")) == before
