"""Tests of nnml_optax.init (lecture 6b fan-in scaling; Martens' sparse init; echo-state init)."""

import math
import re

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
  assert set(init.__all__) == {"echo_state", "fan_in", "sparse"}


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
  with pytest.raises(ValueError, match=r"fan-in >= 1.*\(0, 4\)"):
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


# --- echo_state (Sutskever et al. 2013, Table 4) ----------------------------------------------------


def spectral_radius(w):
  return float(np.abs(np.linalg.eigvals(np.asarray(w, np.float64))).max())


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(("n", "radius", "k"), [(100, 1.1, 15), (30, 0.9, 15), (7, 1.1, 15)])
def test_echo_state_radius_and_sparsity(dtype, n, radius, k):
  with jax.enable_x64(dtype == jnp.float64):
    w = init.echo_state(radius, k)(jax.random.key(n), (n, n), dtype)
    assert w.shape == (n, n) and w.dtype == dtype
    assert spectral_radius(w) == pytest.approx(radius, rel=1e-4)
    np.testing.assert_array_equal(nonzero_per_unit(w), min(k, n))  # 15 incoming per unit, or all


def test_echo_state_is_deterministic_under_jit_and_vmap():
  e = init.echo_state()
  keys = jax.random.split(jax.random.key(0), 3)
  eager = [np.asarray(e(k, (40, 40))) for k in keys]
  np.testing.assert_array_equal(eager[0], np.asarray(e(keys[0], (40, 40))))
  assert not np.array_equal(eager[0], eager[1])
  jitted = jax.jit(e, static_argnums=(1,))(keys[1], (40, 40))
  np.testing.assert_array_equal(eager[1], jitted)
  batched = jax.jit(jax.vmap(lambda k: e(k, (40, 40))))(keys)
  for a, b in zip(eager, batched, strict=True):
    np.testing.assert_array_equal(a, b)


def test_echo_state_as_flax_recurrent_kernel_and_bf16():
  layer = nnx.Linear(50, 50, use_bias=False, kernel_init=init.echo_state(1.1), rngs=nnx.Rngs(0))
  assert spectral_radius(layer.kernel[...]) == pytest.approx(1.1, rel=1e-4)
  w = init.echo_state(1.1)(jax.random.key(1), (50, 50), jnp.bfloat16)
  assert w.dtype == jnp.bfloat16
  assert spectral_radius(np.asarray(w, np.float32)) == pytest.approx(1.1, rel=2e-2)


@pytest.mark.parametrize("shape", [(4, 5), (4,), (3, 3, 3), (0, 0)])
def test_echo_state_refuses_non_square_or_empty(shape):
  with pytest.raises(ValueError, match=rf"square.*{re.escape(str(shape))}"):
    init.echo_state()(jax.random.key(0), shape)


@pytest.mark.parametrize(
  ("kwargs", "error"),
  [
    ({"spectral_radius": 0.0}, ValueError),
    ({"spectral_radius": float("nan")}, ValueError),
    ({"num_nonzero": 0}, ValueError),
    ({"num_nonzero": 1.5}, TypeError),
  ],
)
def test_echo_state_bad_arguments(kwargs, error):
  with pytest.raises(error, match=next(iter(kwargs))):
    init.echo_state(**kwargs)


# --- zero-sized and degenerate shapes: a defined result or a ValueError naming the shape -----------


@pytest.mark.parametrize("make", [init.fan_in, init.sparse])
def test_no_units_is_an_empty_kernel(make):
  for shape in [(8, 0), (3, 3, 4, 0)]:
    for dtype in (None, jnp.bfloat16):
      w = make()(jax.random.key(0), shape, dtype)
      assert w.shape == shape and w.dtype == (dtype or jnp.float32)


@pytest.mark.parametrize("make", [init.fan_in, init.sparse])
@pytest.mark.parametrize("shape", [(0, 8), (0, 0), (3, 0, 4, 8), (5,), ()])
def test_no_inputs_or_too_few_axes_is_refused_naming_the_shape(make, shape):
  with pytest.raises(ValueError, match=re.escape(str(shape))):
    make()(jax.random.key(0), shape)
