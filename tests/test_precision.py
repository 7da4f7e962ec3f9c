"""Precision and optimizer kernel, chosen in one place by compute capability and PyTorch version."""

from pathlib import Path

import pytest
import torch
import utils
from helpers import tiny_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend a CUDA GPU of a given compute capability that claims bf16 support (as a T4 does,
    through emulation)."""

    def install(capability):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)

    return install


def test_t4_compute_capability_7_5_gets_fp16(fake_gpu):
    fake_gpu((7, 5))
    assert utils.autocast_dtype(torch.device("cuda")) == torch.float16


def test_ampere_compute_capability_8_0_gets_bf16(fake_gpu):
    fake_gpu((8, 0))
    assert utils.autocast_dtype(torch.device("cuda")) == torch.bfloat16


def test_cpu_runs_in_fp32():
    assert utils.autocast_dtype(torch.device("cpu")) is None


def test_precision_is_decided_only_by_utils_autocast_dtype():
    sources = [REPO / "notebooks" / "utils.py", REPO / "tests" / "benchmark.py"]
    sources += sorted((REPO / "py_percent").glob("*.py"))
    for path in sources:
        code = path.read_text(encoding="utf-8")
        assert "is_bf16_supported(" not in code, f"{path.name} decides precision by itself"
    assert "utils.autocast_dtype(device)" in (REPO / "tests" / "benchmark.py").read_text()


@pytest.mark.parametrize(("version", "kernel"), [((2, 3), "foreach"), ((2, 4), "fused")])
def test_cpu_adamw_is_fused_only_from_pytorch_2_4(monkeypatch, version, kernel):
    monkeypatch.setattr(utils, "torch_version", lambda: version)
    (optimizer,) = utils.make_optimizer(tiny_model(), utils.TrainConfig(), torch.device("cpu"))
    assert bool(optimizer.defaults["fused"]) == (kernel == "fused")
    assert bool(optimizer.defaults["foreach"]) == (kernel == "foreach")


def test_torch_version_parses_local_builds(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    assert utils.torch_version() == (2, 13)
    assert utils.torch_version() >= utils.MIN_TORCH


def test_requirements_floor_is_the_oldest_supported_pytorch():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    (torch_line,) = [line for line in lines if line.startswith("torch")]
    assert torch_line.split("#")[0].strip() == "torch>={}.{}".format(*utils.MIN_TORCH)
