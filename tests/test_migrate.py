"""Optimizer states saved by nnml_optax 0.1.0 carry over to 0.2.0 (``migrate_0_1_state``).

``tests/data/checkpoints_0_1_0/state`` was written by 0.1.0 (``write.py`` beside it): for each
optimizer, its state after three steps, the parameters, and the update 0.1.0 computed next.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import nnml_optax as nn

DATA = Path(__file__).resolve().parent / "data" / "checkpoints_0_1_0"
sys.path.insert(0, str(DATA))
import write as old  # noqa: E402  (the cases, the gradients and the optimizer builder of 0.1.0)

CASES = json.loads((DATA / "cases.json").read_text())


@pytest.fixture(scope="module")
def restored():
  ckpt = ocp.StandardCheckpointer()
  out = ckpt.restore(DATA / "state")
  ckpt.close()
  return out


@pytest.mark.parametrize("name", list(CASES))
def test_migrated_state_continues_as_0_1_0_did(restored, name):
  factory, kwargs = CASES[name]
  tx = old.build(factory, kwargs)
  saved = restored[name]
  params = saved["params"]
  state = nn.migrate_0_1_state(saved["opt_state"], tx.init(params))
  assert jax.tree.structure(state) == jax.tree.structure(tx.init(params))
  assert jax.tree.map(lambda x: x.dtype, state) == jax.tree.map(lambda x: x.dtype, tx.init(params))
  update, _ = jax.jit(tx.update)(old.grad(params, 3), state, params)
  for a, b in zip(jax.tree.leaves(update), jax.tree.leaves(saved["next_update"]), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["sgd", "momentum"])
def test_direct_restore_into_a_0_2_0_target_fails_loudly(name):
  """0.2.0 states have more fields than 0.1.0's: restoring into a 0.2.0 target raises (nothing is
  silently left at its initial value); ``migrate_0_1_state`` is the way across."""
  factory, kwargs = CASES[name]
  tx = old.build(factory, kwargs)
  p0 = old.params0()
  target = {name: {"params": p0, "opt_state": tx.init(p0), "next_update": p0}}
  with ocp.PyTreeCheckpointer() as ckpt, pytest.raises((ValueError, TypeError, KeyError)):
    ckpt.restore(
      DATA / "state",
      args=ocp.args.PyTreeRestore(
        item=jax.tree.map(ocp.utils.to_shape_dtype_struct, target), partial_restore=True
      ),
    )


def test_bad_input_names_the_field():
  params = old.params0()
  old_plain = [{"count": np.int32(2), "mean_square": params}]
  with pytest.raises(ValueError, match="velocity"):
    nn.migrate_0_1_state(old_plain, nn.rmsprop(0.1, momentum=0.9).init(params))
  old_momentum = [{"count": np.int32(2), "mean_square": params, "momentum_buffer": params}]
  with pytest.raises(ValueError, match="no place"):
    nn.migrate_0_1_state(old_momentum, nn.rmsprop(0.1).init(params))
  with pytest.raises(ValueError, match="shape"):
    nn.migrate_0_1_state(old_plain, nn.rmsprop(0.1).init({"b": params["b"], "w": params["b"]}))
