"""Tests of nnml_optax.init (lecture 6b fan-in scaling; Martens' sparse init, SPEC §2.5)."""

import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnml_optax
from nnml_optax import init


def nonzero_per_unit(w):
  """Non-zero incoming weights of every unit (the last axis) of a Flax-layout kernel."""
  w = np.asarray(w, np.float32)
  return (w.reshape(-1, w.shape[-1]) != 0).sum(axis=0)


# --- sparse ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("shape", "num_nonzero", "expected"),
  [
    ((784, 500), 15, 15),
    ((100, 7), 1, 1),
    ((10, 3), 15, 10),  # fan-in below num_nonzero: every incoming weight is non-zero
    ((15, 4), 15, 15),
    ((3, 3, 16, 32), 15, 15),  # conv: fan-in 3*3*16 = 144
    ((2, 2, 3, 5), 15, 12),  # conv with fan-in 12 < 15
    ((5, 4, 2, 8), 40, 40),  # 3-d conv kernel, fan-in 40
  ],
)
def test_sparse_exact_count_per_unit(shape, num_nonzero, expected):
  w = init.sparse(num_nonzero)(jax.random.key(0), shape)
  assert w.shape == shape and w.dtype == jnp.float32
  np.testing.assert_array_equal(nonzero_per_unit(w), expected)


def test_sparse_positions_are_random_across_units_and_uniform():
  w = np.asarray(init.sparse(15)(jax.random.key(1), (60, 2000)))
  masks = w != 0
  patterns = {tuple(np.flatnonzero(masks[:, j])) for j in range(w.shape[1])}
  assert len(patterns) == w.shape[1]  # no two units share their inputs (C(60,15) ~ 5e13 sets)
  # Every input is chosen by ~ 2000 * 15/60 = 500 units (binomial sd ~ 19): a loose uniformity test.
  per_input = masks.sum(axis=1)
  assert per_input.sum() == 15 * 2000
  assert np.abs(per_input - 500).max() < 100
  chi2 = ((per_input - 500) ** 2 / 500).sum()
  assert chi2 < 120  # 59 degrees of freedom: mean 59, p(chi2 > 120) < 1e-5


def test_sparse_values_are_normal_with_the_given_scale():
  for scale in (1.0, 0.25):
    w = np.asarray(init.sparse(15, scale=scale)(jax.random.key(2), (200, 2000)))
    values = w[w != 0]
    assert values.size == 15 * 2000
    assert abs(values.mean()) < 0.03 * scale
    assert values.std() == pytest.approx(scale, rel=0.025)  # N(0, scale^2), not scaled by fan-in
    kurtosis = ((values - values.mean()) ** 4).mean() / values.var() ** 2
    assert kurtosis == pytest.approx(3.0, abs=0.2)


def test_sparse_is_deterministic_for_a_key():
  s = init.sparse(15)
  a = s(jax.random.key(3), (64, 32))
  np.testing.assert_array_equal(a, s(jax.random.key(3), (64, 32)))
  np.testing.assert_array_equal(a, s(jax.random.PRNGKey(3), (64, 32)) * 0 + a)  # raw keys work
  assert not np.array_equal(np.asarray(a), np.asarray(s(jax.random.key(4), (64, 32))))
  np.testing.assert_array_equal(a, jax.jit(s, static_argnums=(1, 2))(jax.random.key(3), (64, 32)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_sparse_dtypes(dtype):
  w = init.sparse(15)(jax.random.key(5), (40, 30), dtype)
  assert w.dtype == dtype
  np.testing.assert_array_equal(nonzero_per_unit(w), 15)


def test_sparse_float64():
  with jax.enable_x64(True):
    w = init.sparse(15)(jax.random.key(5), (40, 30), jnp.float64)
    assert w.dtype == jnp.float64
    assert init.sparse(15)(jax.random.key(5), (40, 30)).dtype == jnp.float64  # jax's default
  np.testing.assert_array_equal(nonzero_per_unit(w), 15)


def test_sparse_eval_shape_and_flax_nnx():
  s = init.sparse(15, scale=0.25)
  shape = jax.eval_shape(lambda k: s(k, (784, 100)), jax.random.key(0))
  assert shape.shape == (784, 100) and shape.dtype == jnp.float32
  # Sutskever et al.'s tanh variant: weights x0.25, biases 0.5.
  layer = nnx.Linear(
    784, 100, rngs=nnx.Rngs(0), kernel_init=s, bias_init=jax.nn.initializers.constant(0.5)
  )
  np.testing.assert_array_equal(nonzero_per_unit(layer.kernel[...]), 15)
  np.testing.assert_array_equal(layer.bias[...], 0.5)
  conv = nnx.Conv(16, 32, kernel_size=(3, 3), rngs=nnx.Rngs(0), kernel_init=init.sparse(15))
  assert conv.kernel[...].shape == (3, 3, 16, 32)
  np.testing.assert_array_equal(nonzero_per_unit(conv.kernel[...]), 15)


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  seed=st.integers(0, 2**31 - 1),
  num_nonzero=st.sampled_from([1, 5, 15, 24, 30]),
  scale=st.sampled_from([0.25, 1.0, 3.0]),
)
def test_property_sparse_exact_count(seed, num_nonzero, scale):
  w = np.asarray(init.sparse(num_nonzero, scale=scale)(jax.random.key(seed), (24, 16)))
  np.testing.assert_array_equal(nonzero_per_unit(w), min(num_nonzero, 24))
  assert np.isfinite(w).all()


# --- fan_in ------------------------------------------------------------------------------------


@pytest.mark.parametrize("distribution", ["normal", "truncated_normal", "uniform"])
@pytest.mark.parametrize(
  ("shape", "scale"), [((400, 1000), 1.0), ((3, 3, 64, 200), 0.5), ((50, 2000), math.sqrt(2))]
)
def test_fan_in_variance(distribution, shape, scale):
  w = init.fan_in(scale, distribution)(jax.random.key(0), shape)
  assert w.shape == shape and w.dtype == jnp.float32
  w = np.asarray(w, np.float64)
  fan = math.prod(shape[:-1])
  # Relative standard error of a sample variance of m draws is about sqrt(2/m) (<= 0.5% here).
  assert w.var() == pytest.approx(scale**2 / fan, rel=0.03)
  assert abs(w.mean()) < 4 * scale / math.sqrt(fan * w.size)


def test_fan_in_reuses_variance_scaling_and_keeps_dtype():
  key = jax.random.key(7)
  np.testing.assert_array_equal(
    init.fan_in(0.5)(key, (30, 20)),
    jax.nn.initializers.variance_scaling(0.25, "fan_in", "normal")(key, (30, 20)),
  )
  assert init.fan_in()(key, (30, 20), jnp.bfloat16).dtype == jnp.bfloat16
  layer = nnx.Linear(300, 10, rngs=nnx.Rngs(0), kernel_init=init.fan_in())
  assert float(jnp.std(layer.kernel[...])) == pytest.approx(1 / math.sqrt(300), rel=0.1)


def test_exported_as_namespace():
  assert nnml_optax.init is init
  assert set(init.__all__) == {"fan_in", "sparse"}


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("kwargs", "error", "match"),
  [
    ({"num_nonzero": 0}, ValueError, "num_nonzero"),
    ({"num_nonzero": -3}, ValueError, "num_nonzero"),
    ({"num_nonzero": 2.5}, TypeError, "num_nonzero"),
    ({"num_nonzero": True}, TypeError, "num_nonzero"),
    ({"scale": 0.0}, ValueError, "scale"),
    ({"scale": -1.0}, ValueError, "scale"),
    ({"scale": float("nan")}, ValueError, "scale"),
    ({"scale": float("inf")}, ValueError, "scale"),
    ({"scale": lambda t: 1.0}, TypeError, "scale"),
  ],
)
def test_sparse_bad_arguments(kwargs, error, match):
  with pytest.raises(error, match=match):
    init.sparse(**kwargs)


def test_sparse_bad_shapes_and_dtypes():
  s = init.sparse()
  with pytest.raises(ValueError, match="at least two axes"):
    s(jax.random.key(0), (10,))
  with pytest.raises(ValueError, match="zero-sized"):
    s(jax.random.key(0), (0, 4))
  with pytest.raises(TypeError, match="floating"):
    s(jax.random.key(0), (4, 4), jnp.int32)


@pytest.mark.parametrize(
  ("kwargs", "error", "match"),
  [
    ({"scale": 0.0}, ValueError, "scale"),
    ({"scale": -2.0}, ValueError, "scale"),
    ({"scale": "big"}, TypeError, "scale"),
    ({"distribution": "cauchy"}, ValueError, "distribution"),
  ],
)
def test_fan_in_bad_arguments(kwargs, error, match):
  with pytest.raises(error, match=match):
    init.fan_in(**kwargs)
