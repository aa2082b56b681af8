"""The recurrent long-range set-up of Sutskever et al. (2013, section 4): schedule, Table 4, training."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnml_optax as nn
from nnml_optax.cli import _rnn as rnn

ROOT = Path(__file__).resolve().parents[1]


def test_parse_config():
  assert rnn.parse_config("0") == (0.0, False)
  assert rnn.parse_config("0.995N") == (0.995, True)
  assert rnn.parse_config("0.9M") == (0.9, False)
  for bad in ("fast", "1.0N", "-0.1M"):
    with pytest.raises(ValueError, match="config"):
      rnn.parse_config(bad)


def test_momentum_schedule_is_section_4s():
  mu = rnn.momentum_schedule(0.995)
  assert [round(float(mu(t)), 6) for t in (0, 999, 1000, 49_999)] == [0.9, 0.9, 0.995, 0.995]
  # the optimizer is nnml_optax's Nesterov alias with that schedule: one step equals it by hand
  g = {"w": jnp.array([1.0, -2.0])}
  tx = rnn.make_optimizer(1e-2, 0.995, nesterov=True)
  ref = nn.nesterov(1e-2, 0.9)
  u, _ = tx.update(g, tx.init(g))
  u_ref, _ = ref.update(g, ref.init(g))
  np.testing.assert_allclose(u["w"], u_ref["w"])


def test_model_follows_table_4():
  task = rnn.TASKS["addition"]
  model = rnn.make_model(task, 10, 100, jax.random.key(0))
  w_in, w_hh, w_out = model.w_in.kernel[...], model.w_hh.kernel[...], model.w_out.kernel[...]
  assert float(jnp.std(w_in)) == pytest.approx(0.001, rel=0.2)  # 200 draws of 0.001 N(0, 1)
  assert float(jnp.std(w_out)) == pytest.approx(0.1, rel=0.3)
  assert float(np.abs(np.linalg.eigvals(np.asarray(w_hh, np.float64))).max()) == pytest.approx(
    1.1, rel=1e-4
  )
  np.testing.assert_array_equal((np.asarray(w_hh) != 0).sum(axis=0), 15)
  assert float(jnp.abs(model.w_in.bias[...]).max()) == 0.0  # hidden biases 0
  assert float(model.w_out.bias[0]) == pytest.approx(rnn.mean_target(task, 10), abs=1e-7)
  assert abs(float(model.w_out.bias[0])) < 0.01  # centred targets: mean about 0
  out = model(jnp.zeros((3, 10, 2)))
  assert out.shape == (3, 10, 1)
  mem = rnn.make_model(rnn.TASKS["memorization"], 10, 100, jax.random.key(0), out_bias=0.0)
  assert float(jnp.std(mem.w_in.kernel[...])) == pytest.approx(0.1, rel=0.2)


def test_nesterov_0995_beats_the_biases_only_baseline_at_small_T():
  r = rnn.train(
    "addition", T=5, steps=1500, chunk=1500, configs=("0.995N",), lrs=(1e-4,), eval_size=1000
  )
  zero_one = r["table"]["0.995N"]["zero_one"]
  assert r["biases_only"] == pytest.approx(0.846, abs=0.01)  # predicting the mean target
  # 1,000 test sequences: the baseline's sampling sd is 0.011; a net that did not learn stays there.
  assert zero_one < r["biases_only"] - 0.05, zero_one


def test_example_and_demo_tiny(tmp_path):
  sys.path.insert(0, str(ROOT / "examples"))
  try:
    main = importlib.import_module("rnn_long_range").main
  finally:
    sys.path.remove(str(ROOT / "examples"))
  r = main(4, chunk=2, quiet=True, T=4, configs="0,0.995N", out=str(tmp_path))
  assert set(r["table"]) == {"0", "0.995N"} and isinstance(r["verdict"], str)
  assert (tmp_path / "rnn.png").stat().st_size > 0
  saved = json.loads((tmp_path / "rnn.json").read_text())
  assert saved["history"]["step"] == [2, 4] and saved["steps"] == 4
  assert "0.995N" in rnn.format_table(r)


def test_resumed_run_equals_uninterrupted_run(tmp_path):
  kw = {"T": 4, "chunk": 2, "configs": ("0.995N",), "hidden": 8, "eval_size": 50}
  rnn.train("addition", steps=4, checkpoint_dir=tmp_path, **kw)
  resumed = rnn.train("addition", steps=6, checkpoint_dir=tmp_path, **kw)  # from update 4
  assert resumed["history"]["step"] == [2, 4, 6]
  fresh = rnn.train("addition", steps=6, **kw)
  for name, curve in fresh["history"]["train_loss"].items():
    np.testing.assert_allclose(resumed["history"]["train_loss"][name], curve, rtol=1e-6)
  with pytest.raises(ValueError, match="checkpoint is at update 6"):
    rnn.train("addition", steps=4, checkpoint_dir=tmp_path, **kw)  # behind the checkpoint


def test_bad_grid_is_refused():
  with pytest.raises(ValueError, match="config"):
    rnn.train("addition", T=4, steps=2, chunk=2, configs=("0.995X",))
  with pytest.raises(ValueError, match="multiple of chunk"):
    rnn.train("addition", T=4, steps=3, chunk=2)
