"""Every example runs with few steps (``main(steps=..., seed=...)``) and says what it promises."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(autouse=True, scope="module")
def _examples_on_path():
  sys.path.insert(0, str(ROOT / "examples"))
  yield
  sys.path.remove(str(ROOT / "examples"))


def _main(name):
  return importlib.import_module(name).main


def test_nnx_classifier():
  r = _main("nnx_classifier")(steps=30)
  assert r["rmsprop+gains"]["val_accuracy"] > 0.7
  assert r["sgd+bold_driver"]["train_loss"] < 0.5
  assert r["sgd+bold_driver"]["final_scale"] > 0


def test_linen_trainstate():
  r = _main("linen_trainstate")(steps=40)
  assert r["val_accuracy"] > 0.7 and r["final_momentum"] == pytest.approx(0.9)


def test_deep_autoencoder():
  table = _main("deep_autoencoder")(steps=15, lrs=(0.05,))
  assert list(table) == ["0 (SGD)", "0.9N", "0.99N", "0.995N", "0.9M", "0.99M", "0.995M"]
  assert all(np.isfinite(v["error"]) for v in table.values())


def test_checkpoint_resume(tmp_path):
  r = _main("checkpoint_resume")(steps=20, workdir=str(tmp_path))
  assert r["max_abs_diff"] == 0.0
  assert len(r["resumed"]) == len(r["straight"]) == 20


@pytest.mark.skipif(len(jax.devices()) < 8, reason="needs 8 fake devices")
def test_data_parallel():
  r = _main("data_parallel")(steps=10)
  assert r["state_sharded_like_params"] is True


def test_fullbatch_rprop_lbfgs():
  r = _main("fullbatch_rprop_lbfgs")(steps=15)
  assert set(r) == {"irprop-", "irprop+", "lbfgs"}
  assert all(v["train_loss"] < 0.5 for v in r.values())
