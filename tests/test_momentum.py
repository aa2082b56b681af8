"""Momentum (lecture 6c; Sutskever et al. 2013): exact vectors, oracles, schedules, bad input."""

from __future__ import annotations

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.example_libraries import optimizers as jopt

import nnml_optax as nn
from nnml_optax import schedules

from references import momentum as ref


def _run(tx, theta0, grads=None, grad_fn=None, steps=None):
  """Iterates of ``tx`` from ``theta0`` (float64), fed a gradient list or a gradient function."""
  with jax.enable_x64(True):
    theta = jnp.asarray([theta0], jnp.float64)
    state = tx.init(theta)
    out = []
    n = len(grads) if grads is not None else steps
    for t in range(n):
      g = jnp.asarray([grads[t]], jnp.float64) if grads is not None else grad_fn(theta)
      u, state = tx.update(g, state, theta)
      theta = optax.apply_updates(theta, u)
      out.append(float(theta[0]))
    return out


G = [1.0, 1.0, 1.0, -1.0]


def test_golden_classical():
  np.testing.assert_allclose(
    _run(nn.momentum(0.1, 0.9), 0.0, G), [-0.1, -0.29, -0.561, -0.7049], rtol=0, atol=1e-15
  )
  np.testing.assert_allclose(ref.classical(0.0, G, 0.1, 0.9), [-0.1, -0.29, -0.561, -0.7049])


def test_golden_nesterov():
  want = [-0.19, -0.461, -0.8049, -0.83441]
  np.testing.assert_allclose(_run(nn.nesterov(0.1, 0.9), 0.0, G), want, atol=1e-15)
  np.testing.assert_allclose(_run(nn.momentum(0.1, 0.9, nesterov=True), 0.0, G), want, atol=1e-15)
  np.testing.assert_allclose(ref.nesterov_lookahead(0.0, G, 0.1, 0.9), want)


def test_terminal_velocity():
  # a tilted plane: v -> -eps*g/(1-alpha) = -1.0
  with jax.enable_x64(True):
    tx = nn.momentum(0.1, 0.9)
    state = tx.init(jnp.zeros(1))
    vs = []
    for _ in range(400):
      u, state = tx.update(jnp.ones(1), state)
      vs.append(float(u[0]))
  np.testing.assert_allclose(vs[:4], [-0.1, -0.19, -0.271, -0.3439], atol=1e-15)
  np.testing.assert_allclose(vs[-1], -0.1 / (1 - 0.9), rtol=1e-12)


def _grad_quad(theta):  # f = 1/2 * 2 * theta^2
  return 2.0 * theta


def test_cm_vs_nag_on_a_quadratic():
  cm = _run(nn.momentum(0.1, 0.9), 1.0, grad_fn=_grad_quad, steps=5)
  np.testing.assert_allclose(cm, [0.8, 0.46, 0.062, -0.3086, -0.58042], atol=1e-14)
  nag = _run(nn.nesterov(0.1, 0.9), 1.0, grad_fn=_grad_quad, steps=5)
  lookahead = [0.62, 0.2224, -0.108352, -0.32482304, -0.4157175808]
  np.testing.assert_allclose(nag, lookahead, atol=1e-14)
  # the library iterate is Sutskever's look-ahead point theta + mu*v (Sutskever et al. 2013, §2.1)
  sut = ref.nesterov_sutskever(1.0, lambda x: 2.0 * x, 0.1, 0.9, 5)
  np.testing.assert_allclose([s[0] for s in sut], [0.8, 0.496, 0.17792, -0.0866816, -0.259858432])
  np.testing.assert_allclose([s[1] for s in sut], lookahead, atol=1e-14)


def test_schedule_drives_momentum_without_inject():
  mu = schedules.sutskever_momentum(0.99, period=2)
  g = [1.0] * 6
  got = _run(nn.momentum(0.1, mu), 0.0, g)
  want = ref.classical(0.0, g, 0.1, lambda t: ref.sutskever_mu(t, 0.99, period=2))
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_identity_when_momentum_zero():
  params = {"a": jnp.arange(3.0), "b": jnp.ones((2, 2))}
  tx, plain = nn.momentum(0.1, 0.0), nn.sgd(0.1)
  s1, s2 = tx.init(params), plain.init(params)
  for i in range(3):
    g = jax.tree.map(lambda x: x * (i + 1) - 0.5, params)
    u1, s1 = tx.update(g, s1)
    u2, s2 = plain.update(g, s2)
    jax.tree.map(np.testing.assert_array_equal, u1, u2)
  u, _ = nn.scale_by_momentum(0.0).update(params, nn.scale_by_momentum(0.0).init(params))
  jax.tree.map(np.testing.assert_array_equal, u, params)


@pytest.mark.parametrize("nesterov", [False, True])
def test_equals_optax_sgd_for_constant_lr(nesterov):
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), "b": jnp.zeros(3)}
  ours, theirs = nn.momentum(0.05, 0.9, nesterov=nesterov), optax.sgd(0.05, 0.9, nesterov=nesterov)
  s1, s2 = ours.init(params), theirs.init(params)
  for _ in range(20):
    g = jax.tree.map(lambda _: jnp.asarray(rng.normal(size=_.shape), jnp.float32), params)
    u1, s1 = ours.update(g, s1)
    u2, s2 = theirs.update(g, s2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7), u1, u2)


# optax.sgd(learning_rate, momentum=None, nesterov=False, accumulator_dtype=None): each call
# works unchanged here and gives the same numbers (the rate multiplies the buffer, as in optax).
OPTAX_SGD_CALLS = {
  "lr": ((0.05,), {}),
  "lr_schedule": ((optax.exponential_decay(0.05, 2, 0.5),), {}),
  "momentum": ((0.05, 0.9), {}),
  "nesterov": ((0.05, 0.9, True), {}),
  # float32 only: a bfloat16 velocity is updated in float32 here, in bfloat16 by optax (a
  # deliberate difference, in docs/porting.md)
  "accumulator_dtype": ((0.05, 0.9, False, jnp.float32), {}),
  "keywords": (
    (),
    dict(
      learning_rate=optax.exponential_decay(0.05, 2, 0.5),
      momentum=0.8,
      nesterov=True,
      accumulator_dtype=jnp.float32,
    ),
  ),
}


def test_sgd_signature_is_optax_s():
  import inspect

  theirs = inspect.signature(optax.sgd).parameters.values()
  ours = inspect.signature(nn.sgd).parameters.values()
  assert [(p.name, p.kind, p.default) for p in ours] == [
    (p.name, p.kind, p.default) for p in theirs
  ]


@pytest.mark.parametrize("call", list(OPTAX_SGD_CALLS))
def test_optax_sgd_calls_work_unchanged(call):
  args, kwargs = OPTAX_SGD_CALLS[call]
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), "b": jnp.zeros(3)}
  ours, theirs = nn.sgd(*args, **kwargs), optax.sgd(*args, **kwargs)
  s1, s2 = ours.init(params), theirs.init(params)
  for _ in range(8):
    g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    u1, s1 = jax.jit(ours.update)(g, s1)
    u2, s2 = jax.jit(theirs.update)(g, s2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9), u1, u2)


def test_equals_jax_example_libraries():
  """A second, independent oracle: jax.example_libraries.optimizers.momentum / nesterov."""
  for ours, (init, update, get) in [
    (nn.momentum(0.1, 0.9), jopt.momentum(0.1, 0.9)),
    (nn.nesterov(0.1, 0.9), jopt.nesterov(0.1, 0.9)),
  ]:
    with jax.enable_x64(True):
      x = jnp.asarray([1.0, -2.0], jnp.float64)
      s, o = ours.init(x), init(x)
      for i in range(10):
        g = 2.0 * x
        u, s = ours.update(g, s)
        x = optax.apply_updates(x, u)
        o = update(i, 2.0 * get(o), o)
        np.testing.assert_allclose(x, get(o), rtol=1e-12)


def test_scheduled_lr_inside_velocity():
  """The lecture's velocity holds the rate (6c): each gradient keeps the rate it was taken with;
  ``sgd``, like optax and torch, multiplies the whole buffer by the current rate."""
  lr = lambda count: jnp.where(count < 2, 1.0, 0.1)  # noqa: E731
  with jax.enable_x64(True):
    tx = nn.momentum(lr, 0.5)
    x = jnp.zeros(1)
    s = tx.init(x)
    us = []
    for _ in range(3):
      u, s = tx.update(jnp.ones(1), s)
      us.append(float(u[0]))
  # v1 = -1, v2 = 0.5*-1 - 1 = -1.5, v3 = 0.5*-1.5 - 0.1 = -0.85 (optax/torch would give -0.175)
  np.testing.assert_allclose(us, [-1.0, -1.5, -0.85], rtol=1e-6)
  with jax.enable_x64(True):
    tx = nn.sgd(lr, 0.5)
    s = tx.init(jnp.zeros(1))
    us = []
    for _ in range(3):
      u, s = tx.update(jnp.ones(1), s)
      us.append(float(u[0]))
  np.testing.assert_allclose(us, [-1.0, -1.5, -0.175], rtol=1e-6)


@hypothesis.given(
  mu=st.floats(0.0, 0.99),
  g=st.lists(st.floats(-10, 10, allow_nan=False), min_size=5, max_size=5),
)
@hypothesis.settings(max_examples=50, deadline=None)
def test_property_matches_reference(mu, g):
  got = _run(nn.momentum(0.01, mu), 0.0, g)
  np.testing.assert_allclose(got, ref.classical(0.0, g, 0.01, mu), rtol=1e-9, atol=1e-12)


def test_velocity_dtype_and_accumulator_dtype():
  p = jnp.ones(3, jnp.bfloat16)
  tx = nn.scale_by_momentum(0.999, accumulator_dtype=jnp.float32)
  s = tx.init(p)
  assert s.velocity.dtype == jnp.float32 and s.count.dtype == jnp.int32
  u, s = tx.update(jnp.ones(3, jnp.bfloat16), s)
  assert u.dtype == jnp.bfloat16 and s.velocity.dtype == jnp.float32
  # 0.999 is not rounded to 1 in bf16 arithmetic: after 2 steps b = 1 + 0.999
  u, s = tx.update(jnp.ones(3, jnp.bfloat16), s)
  np.testing.assert_allclose(np.asarray(s.velocity), 1.999, rtol=1e-6)


@pytest.mark.parametrize(
  "make,match",
  [
    (lambda: nn.momentum(0.1, 1.0), "momentum"),
    (lambda: nn.momentum(0.1, -0.1), "momentum"),
    (lambda: nn.scale_by_momentum(1.5), "momentum"),
    (lambda: nn.momentum(-0.1), "learning_rate"),
    (lambda: nn.sgd(float("nan")), "learning_rate"),
    (lambda: nn.sgd(float("inf")), "learning_rate"),
    (lambda: nn.nesterov(0.1, lambda c: 1.0), "momentum"),
    (lambda: nn.sgd(0.1, 1.0), "momentum"),
    (lambda: nn.sgd(0.1, nesterov=True), "nesterov"),
  ],
)
def test_bad_input(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_bad_types():
  with pytest.raises(TypeError, match="momentum"):
    nn.momentum(0.1, "0.9")
  with pytest.raises(TypeError, match="nesterov"):
    nn.scale_by_momentum(0.9, nesterov=1)
  with pytest.raises(TypeError, match="accumulator_dtype"):
    nn.scale_by_momentum(0.9, accumulator_dtype=jnp.int32)
  with pytest.raises(TypeError, match="accumulator_dtype"):
    nn.sgd(0.1, accumulator_dtype=jnp.int32)


def test_public_api_sorted_and_complete():
  import types

  assert nn.__all__ == sorted(nn.__all__)
  public = {
    k
    for k, v in vars(nn).items()
    if not k.startswith("_")
    and not (
      isinstance(v, types.ModuleType) and k not in {"schedules", "init", "preprocessing", "data"}
    )
  }
  assert set(nn.__all__) == public
  for ns in ("schedules", "init", "preprocessing", "data"):
    assert isinstance(getattr(nn, ns), types.ModuleType)
