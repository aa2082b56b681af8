"""The learning rate scaled by fan-in (lecture 6b): fan-in per layer layout, values, schedules."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnml_optax as nn

from references import control as ref


def _fan(tx, u):
  return tx.update(u, tx.init(u))[0]


FAN_IN_CASES = [
  # (shape, what, fan-in)
  ((784, 100), "Dense 784 -> 100", 784),
  ((3, 3, 16, 32), "Conv 3x3, 16 -> 32", 144),
  ((5, 1, 8), "Conv1D width 5, 1 -> 8", 5),
  ((3, 3, 3, 4, 2), "Conv3D 3x3x3, 4 -> 2", 108),
  ((100,), "bias", 1),
  ((), "scalar", 1),
]


@pytest.mark.parametrize("shape, what, fan", FAN_IN_CASES, ids=[c[1] for c in FAN_IN_CASES])
@pytest.mark.parametrize("power", [0.5, 1.0, 0.0])
def test_fan_in_scaling_values(shape, what, fan, power):
  del what
  assert ref.fan_in(shape) == fan
  with jax.enable_x64(True):
    u = jnp.ones(shape, jnp.float64)
    tx = nn.scale_by_fan_in(power)
    out, state = tx.update(u, tx.init(u))
    np.testing.assert_allclose(np.asarray(out), fan**-power, rtol=1e-15)
    assert int(state.count) == 1
  out32 = _fan(nn.scale_by_fan_in(power), jnp.ones(shape, jnp.bfloat16))
  assert out32.dtype == jnp.bfloat16
  np.testing.assert_allclose(
    np.asarray(out32, np.float64), ref.fan_in_scale(shape, power), rtol=1e-2
  )


def test_fan_in_of_flax_layers():
  nnx = pytest.importorskip("flax.nnx")
  rngs = nnx.Rngs(0)
  params = nnx.state(
    nnx.List([nnx.Linear(784, 100, rngs=rngs), nnx.Conv(16, 32, (3, 3), rngs=rngs)]), nnx.Param
  )
  pure = nnx.as_pure(params)
  grads = jax.tree.map(jnp.ones_like, pure)
  out, _ = nn.scale_by_fan_in().update(grads, nn.scale_by_fan_in().init(pure))
  np.testing.assert_allclose(out[0]["kernel"], 1 / 28, rtol=1e-6)
  np.testing.assert_allclose(out[1]["kernel"], 1 / 12, rtol=1e-6)
  np.testing.assert_array_equal(out[0]["bias"], 1.0)
  np.testing.assert_array_equal(out[1]["bias"], 1.0)


def test_fan_in_custom_layout_and_errors():
  torch_layout = lambda shape: math.prod(shape[1:]) if len(shape) >= 2 else 1  # noqa: E731
  out = _fan(nn.scale_by_fan_in(fan_in_fn=torch_layout), jnp.ones((32, 16, 3, 3)))
  np.testing.assert_allclose(out, 1 / 12, rtol=1e-6)
  with pytest.raises(ValueError, match="power"):
    nn.scale_by_fan_in(-0.5)
  with pytest.raises(TypeError, match="fan_in_fn"):
    nn.scale_by_fan_in(fan_in_fn=3)
  with pytest.raises(ValueError, match="fan_in_fn"):
    _fan(nn.scale_by_fan_in(fan_in_fn=lambda s: 2.5), jnp.ones(3))


def test_fan_in_power_schedule():
  tx = nn.scale_by_fan_in(lambda count: jnp.where(count < 1, 0.0, 1.0))
  u = jnp.ones((4, 2))
  state = tx.init(u)
  out1, state = tx.update(u, state)
  out2, state = tx.update(u, state)
  np.testing.assert_allclose(out1, 1.0)
  np.testing.assert_allclose(out2, 0.25)
