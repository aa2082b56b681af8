"""The loop-ordering helpers of ``_core``: values unchanged bit for bit, derivatives the identity,
and the point of it all, no XLA temporaries in the updates that use them."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnml_optax as nn
from nnml_optax import _core

SPECIALS = np.array([0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 1e-45, 3.4e38], np.float32)


@pytest.mark.parametrize("x_dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.int8, jnp.int32])
@pytest.mark.parametrize("dep_dtype", [jnp.float32, jnp.int8, jnp.bool_, jnp.complex64])
def test_after_is_bitwise_identity(x_dtype, dep_dtype):
  ints = np.array([-1, 0, 1, 127, -128, 5, 0, 3, -7])
  x = jnp.asarray(ints if jnp.issubdtype(x_dtype, jnp.integer) else SPECIALS).astype(x_dtype)
  dep = jnp.asarray(ints if dep_dtype == jnp.int8 else SPECIALS[::-1]).astype(dep_dtype)
  for f in (_core.after, jax.jit(_core.after)):
    got = f(x, dep)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(
      np.asarray(got).view(np.uint8), np.asarray(x).view(np.uint8)
    )  # NaN payloads and signed zeros included


def test_after_complex_and_nan_payload():
  payload = np.array([0x7FC00001, 0xFFC12345], np.uint32).view(np.float32)
  x = jnp.asarray(payload)
  np.testing.assert_array_equal(
    np.asarray(_core.after(x, jnp.ones(2))).view(np.uint32), payload.view(np.uint32)
  )
  z = jnp.asarray([1 + 2j, np.nan - 0j], jnp.complex64)
  np.testing.assert_array_equal(np.asarray(_core.after(z, jnp.ones(2))), np.asarray(z))


def test_after_all_is_differentiable_as_identity():
  def f(a, b):
    (y,) = _core.after_all([a * b], [b])
    return jnp.sum(y * y)

  a, b = jnp.asarray([1.0, -2.0]), jnp.asarray([3.0, 0.5])
  ga, gb = jax.grad(f, argnums=(0, 1))(a, b)
  np.testing.assert_allclose(ga, 2 * a * b * b)
  np.testing.assert_allclose(gb, 2 * a * a * b)
  np.testing.assert_allclose(jax.jvp(lambda a: f(a, b), (a,), (jnp.ones(2),))[1], jnp.sum(ga))


def test_fan_out_gives_equal_values():
  x = jnp.asarray(SPECIALS)
  for y in _core.fan_out(x, 3):
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


@pytest.mark.parametrize(
  "make",
  [
    lambda: nn.rmsprop(1e-3, centered=True),
    lambda: nn.rmsprop(1e-3, momentum=0.9, nesterov=True),
    lambda: nn.rprop(1e-3, variant="rprop+"),
    lambda: nn.local_gains(1e-3),
    lambda: nn.local_gains(1e-3, momentum=0.9),
    lambda: nn.delta_bar_delta(1e-3),
  ],
  ids=["centered", "nesterov", "rprop+", "gains", "gains-momentum", "dbd"],
)
def test_donated_step_needs_no_temporary(make):
  # A structural check, not a timing: with every loop ordered by data, XLA:CPU allocates no
  # full-size temporary for the state (it used to copy the old state every step). A newer XLA
  # that folds the dependency away would only make this slower, never wrong.
  if jax.default_backend() != "cpu":
    pytest.skip("the XLA:CPU loop structure")
  tx = make()
  params = {"a": jnp.ones((256, 256)), "b": jnp.ones((128, 512))}
  state = tx.init(params)

  @functools.partial(jax.jit, donate_argnums=(0, 2))
  def step(params, grads, state):
    u, state = tx.update(grads, state, params)
    return optax.apply_updates(params, u), state

  compiled = step.lower(params, params, state).compile()
  n_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
  assert compiled.memory_analysis().temp_size_in_bytes < n_bytes // 8


@pytest.mark.parametrize(
  "make",
  [
    lambda: nn.rmsprop(1e-3, momentum=0.9, nesterov=True),
    lambda: nn.rprop(1e-3),
    lambda: nn.local_gains(1e-3, momentum=0.9),
    lambda: nn.vsgd(),
  ],
  ids=["rmsprop-nesterov", "rprop", "local_gains", "vsgd"],
)
def test_barriers_only_on_cpu(make, request, monkeypatch):
  """Off XLA:CPU the updates carry no optimization_barrier (XLA:GPU fuses a leaf's outputs into one
  kernel, which a barrier would split), and the numbers are the same bit for bit."""
  if jax.default_backend() != "cpu":
    pytest.skip("compares the CPU layout with the other one")
  # The per-leaf rules are traced once per leaf signature and cached (``_core.trace_once``): each
  # layout gets the same numbers in a leaf shape no other test uses, so no cache has to be cleared.
  flat = jnp.linspace(-1.0, 1.0, 231, dtype=jnp.float32)
  extra = {"grad_fn": jax.tree_util.Partial(lambda p: jax.tree.map(lambda x: jnp.cos(3 * x), p))}

  def hlo_and_update(barriers, shape):
    monkeypatch.setattr(_core, "barriers_help", lambda: barriers)
    params = {"w": flat.reshape(shape)}
    grads = jax.tree.map(lambda p: jnp.cos(3 * p), params)
    tx = make()
    kw = extra if request.node.callspec.id == "vsgd" else {}
    state = tx.init(params)
    fn = jax.jit(lambda g, s: tx.update(g, s, params, **kw))
    text = fn.lower(grads, state).as_text()
    return text, jax.tree.map(jnp.ravel, fn(grads, state))

  text_cpu, out_cpu = hlo_and_update(True, (7, 11, 3))
  text_gpu, out_gpu = hlo_and_update(False, (1, 231, 1))
  assert "optimization_barrier" in text_cpu
  assert "optimization_barrier" not in text_gpu
  chex.assert_trees_all_equal(out_cpu, out_gpu)
