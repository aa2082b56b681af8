"""Local gains, gains with momentum, delta-bar-delta (lecture 6d; Jacobs 1988).

Exact golden vectors, float64 references (tests/references/gains.py), hypothesis
properties, the lecture's demonstration on an axis-aligned ravine, rmsprop with gains, schedules,
non-finite gradients, state size and bad input.
"""

from __future__ import annotations

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnml_optax as nn

from references import gains as ref

G5 = [1.0, 1.0, 1.0, -1.0, -1.0, 1.0]  # golden vector
G7 = [1.0, 1.0, -1.0, 0.5, 0.5]  # golden vector


def _run(tx, grads, w0=0.0, *, state_fields=()):
  """float64 run of ``tx`` on a 1-parameter problem fed ``grads``.

  Returns the weights after each step and, for every name in ``state_fields``, its values
  (looked up with ``optax.tree.get``, so the names must be unique in the state).
  """
  with jax.enable_x64(True):
    w = jnp.asarray(np.atleast_1d(w0), jnp.float64)
    state = tx.init(w)
    ws, fields = [], {k: [] for k in state_fields}
    for g in grads:
      u, state = tx.update(jnp.asarray(np.atleast_1d(g), jnp.float64), state, w)
      w = optax.apply_updates(w, u)
      ws.append(np.asarray(w))
      for k in state_fields:
        fields[k].append(np.asarray(optax.tree.get(state, k)))
  return np.squeeze(np.array(ws)), {k: np.squeeze(np.array(v)) for k, v in fields.items()}


# ---------------------------------------------------------------------------------------------
# golden vectors
# ---------------------------------------------------------------------------------------------


def test_golden_local_gains():
  gains = [0.95, 1.0, 1.05, 0.9975, 1.0475, 0.995125]
  ws = [-0.095, -0.195, -0.3, -0.20025, -0.0955, -0.1950125]
  w, st_ = _run(nn.local_gains(0.1), G5, state_fields=("gains", "last_grad_sign"))
  np.testing.assert_allclose(st_["gains"], gains, rtol=0, atol=1e-15)
  np.testing.assert_allclose(w, ws, rtol=0, atol=1e-15)
  np.testing.assert_array_equal(st_["last_grad_sign"], np.sign(G5))
  assert st_["last_grad_sign"].dtype == np.int8
  rg, rw = ref.local_gains(0.0, G5, 0.1)
  np.testing.assert_allclose(np.squeeze(rg), gains, atol=1e-15)
  np.testing.assert_allclose(np.squeeze(rw), ws, atol=1e-15)


def test_golden_local_gains_momentum():
  gains = [0.95, 1.0, 1.05, 0.9975, 0.947625, 0.997625]
  ws = [-0.095, -0.2805, -0.55245, -0.697455, -0.733197, -0.8651273]
  w, st_ = _run(nn.local_gains(0.1, momentum=0.9), G5, state_fields=("momentum_gains",))
  np.testing.assert_allclose(st_["momentum_gains"], gains, rtol=0, atol=1e-15)
  np.testing.assert_allclose(w, ws, rtol=0, atol=5e-8)  # the published vector rounds w to 7 digits
  rg, rw, _ = ref.local_gains_momentum(0.0, G5, 0.1, 0.9)
  np.testing.assert_allclose(np.squeeze(rg), gains, atol=1e-15)
  np.testing.assert_allclose(np.squeeze(rw), w, rtol=1e-14)
  # the unsigned direction chained before the learning rate is the same rule (constant rate)
  w2, _ = _run(
    optax.chain(nn.scale_by_local_gains_momentum(0.9), optax.scale_by_learning_rate(0.1)), G5
  )
  np.testing.assert_allclose(w2, w, rtol=1e-14)


def test_golden_delta_bar_delta():
  rates = [0.1, 0.2, 0.1, 0.2, 0.3]
  ws = [-0.1, -0.3, -0.2, -0.3, -0.45]
  traces = [0.3, 0.51, 0.057, 0.1899, 0.28293]
  # Jacobs' absolute kappa 0.1 with epsilon_0 = 0.1 is kappa = 1.0 in units of the global rate
  w, st_ = _run(
    nn.delta_bar_delta(0.1, kappa=1.0, phi=0.5, theta=0.7),
    G7,
    state_fields=("rate_gains", "delta_bar"),
  )
  np.testing.assert_allclose(0.1 * st_["rate_gains"], rates, rtol=1e-15)
  np.testing.assert_allclose(w, ws, rtol=0, atol=1e-15)
  np.testing.assert_allclose(st_["delta_bar"], traces, rtol=1e-14)
  rr, rw, rt = ref.delta_bar_delta(0.0, G7, 0.1, 0.1, 0.5, 0.7)
  np.testing.assert_allclose(np.squeeze(rr), rates, rtol=1e-15)
  np.testing.assert_allclose(np.squeeze(rw), ws, atol=1e-15)
  np.testing.assert_allclose(np.squeeze(rt), traces, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# float64 references on random sequences (zeros included) and on a real gradient
# ---------------------------------------------------------------------------------------------


def _random_grads(seed, steps=40, n=6):
  rng = np.random.default_rng(seed)
  g = rng.normal(size=(steps, n)) * 10.0 ** rng.uniform(-3, 3, size=(steps, n))
  g[rng.random(size=g.shape) < 0.15] = 0.0
  return g


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_references(seed):
  g = _random_grads(seed)
  hp = dict(additive_increase=0.2, multiplicative_decrease=0.8, min_gain=0.3, max_gain=2.5)
  rhp = dict(inc=0.2, dec=0.8, gmin=0.3, gmax=2.5)
  w0 = np.zeros(g.shape[1])

  w, st_ = _run(nn.local_gains(0.01, **hp), g, w0, state_fields=("gains",))
  rg, rw = ref.local_gains(w0, g, 0.01, **rhp)
  np.testing.assert_allclose(st_["gains"], rg, rtol=1e-14)
  np.testing.assert_allclose(w, rw, rtol=1e-12, atol=1e-14)

  w, st_ = _run(nn.local_gains(0.01, momentum=0.7, **hp), g, w0, state_fields=("momentum_gains",))
  rg, rw, _ = ref.local_gains_momentum(w0, g, 0.01, 0.7, **rhp)
  np.testing.assert_allclose(st_["momentum_gains"], rg, rtol=1e-14)
  np.testing.assert_allclose(w, rw, rtol=1e-12, atol=1e-14)

  w, st_ = _run(
    nn.delta_bar_delta(0.01, kappa=0.3, phi=0.4, theta=0.6, max_gain=3.0),
    g,
    w0,
    state_fields=("rate_gains",),
  )
  rr, rw, _ = ref.delta_bar_delta(w0, g, 0.01, 0.01 * 0.3, 0.4, 0.6, eps_max=0.03)
  np.testing.assert_allclose(0.01 * st_["rate_gains"], rr, rtol=1e-12)
  np.testing.assert_allclose(w, rw, rtol=1e-12, atol=1e-14)


def test_matches_reference_on_a_quadratic():
  """The gradient really is evaluated at the iterate (no one-step-stale update)."""
  h = np.array([1.0, 10.0, 0.1])
  grad = lambda w: h * w  # noqa: E731
  w0 = np.array([1.0, -1.0, 2.0])
  with jax.enable_x64(True):
    for tx, want in [
      (nn.local_gains(0.05), ref.local_gains(w0, grad, 0.05, steps=30)[1]),
      (
        nn.local_gains(0.05, momentum=0.5),
        ref.local_gains_momentum(w0, grad, 0.05, 0.5, steps=30)[1],
      ),
      (
        nn.delta_bar_delta(0.05, kappa=0.2, phi=0.3),
        ref.delta_bar_delta(w0, grad, 0.05, 0.01, 0.3, 0.7, steps=30)[1],
      ),
    ]:
      w = jnp.asarray(w0)
      s = tx.init(w)
      for t in range(30):
        u, s = tx.update(jnp.asarray(h) * w, s, w)
        w = optax.apply_updates(w, u)
        np.testing.assert_allclose(np.asarray(w), want[t], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# hypothesis properties (fixed shapes; hyperparameters traced so that nothing recompiles)
# ---------------------------------------------------------------------------------------------

_T, _N = 16, 8
_any_float = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
_TINY, _HUGE = float(np.float32(1e-30)), float(np.float32(1e30))
_any_grads = hnp.arrays(np.float32, (_T, _N), elements=_any_float)


def _scan_gains(make, field):
  @jax.jit
  def run(grads, *hps):
    tx = make(*hps)
    state = tx.init(grads[0])

    def body(s, g):
      _, s = tx.update(g, s)
      return s, getattr(s, field)

    return jax.lax.scan(body, state, grads)[1]

  return run


_gains_run = _scan_gains(nn.scale_by_local_gains, "gains")
_gains_m_run = _scan_gains(
  lambda mu, inc, dec, lo, hi: nn.scale_by_local_gains_momentum(mu, inc, dec, lo, hi),
  "momentum_gains",
)
_dbd_run = _scan_gains(
  lambda k, f, th, hi: nn.scale_by_delta_bar_delta(k, f, th, max_gain=hi), "rate_gains"
)


@st.composite
def _gain_hps(draw):
  inc = draw(st.floats(1e-3, 2.0))
  dec = draw(st.floats(1e-3, 0.999))
  lo = draw(st.floats(1e-3, 5.0))
  hi = draw(st.floats(lo, 100.0))
  return np.float32(inc), np.float32(dec), np.float32(lo), np.float32(max(hi, np.float32(lo)))


@hypothesis.settings(max_examples=200)
@hypothesis.given(grads=_any_grads, hps=_gain_hps(), mu=st.floats(0.0, 0.999))
def test_property_gains_within_bounds(grads, hps, mu):
  """Whatever the gradients (NaN, inf, zeros, subnormals), gains stay in [min_gain, max_gain]."""
  inc, dec, lo, hi = hps
  for gains in (
    _gains_run(grads, inc, dec, lo, hi),
    _gains_m_run(grads, np.float32(mu), inc, dec, lo, hi),
  ):
    gains = np.asarray(gains)
    assert np.all(np.isfinite(gains))
    assert np.all(gains >= lo) and np.all(gains <= hi), (gains.min(), gains.max(), lo, hi)


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  grads=_any_grads,
  kappa=st.floats(1e-3, 2.0),
  phi=st.floats(1e-3, 0.999),
  theta=st.floats(0.0, 0.999),
  hi=st.floats(1e-2, 100.0),
)
def test_property_dbd_rates_within_bounds(grads, kappa, phi, theta, hi):
  rates = np.asarray(_dbd_run(grads, *np.float32([kappa, phi, theta, hi])))
  assert np.all(np.isfinite(rates)) and np.all(rates > 0)
  assert np.all(rates <= np.float32(hi))  # max_gain applies from the first step on


@jax.jit
def _hover_mean(seed, delta):
  tx = nn.scale_by_local_gains(delta, 1.0 - delta, 0.1, 10.0)
  k_sign, k_mag = jax.random.split(jax.random.key(seed))
  signs = jax.random.rademacher(k_sign, (1000, 256), jnp.float32)
  mags = jnp.exp(3.0 * jax.random.normal(k_mag, (1000, 256)))  # magnitudes are irrelevant
  s = tx.init(jnp.zeros(256))

  def body(s, g):
    _, s = tx.update(g, s)
    return s, s.gains

  return jax.lax.scan(body, s, signs * mags)[1][200:].mean()


@hypothesis.settings(max_examples=200)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), delta=st.floats(0.02, 0.2))
def test_property_random_signs_hover_around_one(seed, delta):
  """Lecture 6d: "+δ half the time, ×(1−δ) half the time: the gain hovers around 1".

  With independent symmetric signs, E[G'] = ½(G + δ) + ½(1 − δ)G = G − δ(G − 1)/2, whose fixed
  point is 1 for every δ. Band: the mean over 256 weights and steps 200..1000 is within 0.05 of 1
  (observed: 0.988..1.006 over 80 seeds × δ ∈ {0.02, 0.05, 0.1, 0.2}).
  """
  m = float(_hover_mean(np.uint32(seed), np.float32(delta)))
  assert abs(m - 1.0) < 0.05, m


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  signs=hnp.arrays(np.float32, (_N,), elements=st.sampled_from([-1.0, 1.0])),
  mags=hnp.arrays(np.float32, (_N,), elements=st.floats(_TINY, _HUGE, width=32)),
  inc=st.floats(0.01, 1.0),
  dec=st.floats(0.5, 0.99),
  hi=st.floats(1.5, 20.0),
)
def test_property_constant_sign_rises_linearly(signs, mags, inc, dec, hi):
  """A constant-sign gradient: first step ×(1−δ) (literal rule), then +δ per step up to max_gain."""
  inc, dec, hi = np.float32(inc), np.float32(dec), np.float32(hi)
  grads = np.broadcast_to(signs * mags, (_T * 4, _N))
  expected = np.minimum(dec + inc * np.arange(_T * 4, dtype=np.float64), hi)
  for gains in (
    _gains_run(grads, inc, dec, np.float32(0.1), hi),
    _gains_m_run(grads, np.float32(0.9), inc, dec, np.float32(0.1), hi),
  ):
    gains = np.asarray(gains, np.float64)
    np.testing.assert_allclose(gains, np.broadcast_to(expected[:, None], gains.shape), rtol=2e-5)
    assert np.all(np.diff(gains, axis=0) >= 0)
  # delta-bar-delta: no change on the first step (empty trace), then +kappa per step
  rates = np.asarray(_dbd_run(grads, inc, np.float32(0.5), np.float32(0.7), hi), np.float64)
  want = np.minimum(1.0 + inc * np.arange(_T * 4, dtype=np.float64), hi)
  np.testing.assert_allclose(rates, np.broadcast_to(want[:, None], rates.shape), rtol=2e-5)


# ---------------------------------------------------------------------------------------------
# demonstrations
# ---------------------------------------------------------------------------------------------

_H = jnp.logspace(0.0, -2.0, 10)  # an axis-aligned ravine, curvatures 1 .. 0.01


def _steps_to_target(tx, target=1e-6, n=1500):
  f = lambda x: 0.5 * jnp.sum(_H * x**2)  # noqa: E731
  x0 = jnp.ones(10)

  def body(c, _):
    x, s = c
    u, s = tx.update(jax.grad(f)(x), s, x)
    x = optax.apply_updates(x, u)
    return (x, s), f(x)

  run = jax.jit(lambda c: jax.lax.scan(body, c, None, length=n))
  losses = np.asarray(run((x0, tx.init(x0)))[1])
  hit = np.nonzero(losses < target * float(f(x0)))[0]
  return int(hit[0]) + 1 if hit.size else n + 1


def test_demo_gains_beat_gd_on_axis_aligned_ravine():
  """Full batch, same global rate 1/λ_max: gains need far fewer steps than gradient descent.

  Observed: GD 414 steps, local gains 111, gains + momentum 135, delta-bar-delta 110.
  """
  gd = _steps_to_target(nn.sgd(1.0))
  gains = _steps_to_target(nn.local_gains(1.0))
  gains_m = _steps_to_target(nn.local_gains(1.0, momentum=0.9))
  dbd = _steps_to_target(nn.delta_bar_delta(1.0))
  assert 300 < gd <= 1500
  assert gains < gd / 2 and gains_m < gd / 2 and dbd < gd / 2, (gd, gains, gains_m, dbd)


def test_rmsprop_with_local_gains_trains():
  """Lecture 6e's "rmsprop + per-connection adaptive rates" as a chain, on a small regression."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(256, 5)) * np.array([1.0, 3.0, 0.3, 10.0, 0.1]), jnp.float32)
  w_true = jnp.asarray(rng.normal(size=(5, 2)), jnp.float32)
  y = jnp.tanh(x @ w_true)
  params = {"w": jnp.zeros((5, 2)), "b": jnp.zeros(2)}
  loss = lambda p: jnp.mean((jnp.tanh(x @ p["w"] + p["b"]) - y) ** 2)  # noqa: E731
  tx = optax.chain(nn.scale_by_rms(), nn.scale_by_local_gains(), optax.scale_by_learning_rate(0.01))

  @jax.jit
  def train(params):
    def body(c, _):
      p, s = c
      u, s = tx.update(jax.grad(loss)(p), s, p)
      return (optax.apply_updates(p, u), s), None

    (p, s), _ = jax.lax.scan(body, (params, tx.init(params)), None, length=500)
    return p, s

  p, s = train(params)
  assert float(loss(p)) < 0.05 * float(loss(params)), (float(loss(params)), float(loss(p)))
  gains = optax.tree.get(s, "gains")  # a unique field name in the chain's state
  assert all(bool(jnp.all((g >= 0.1) & (g <= 10.0))) for g in jax.tree.leaves(gains))


# ---------------------------------------------------------------------------------------------
# schedules, dtypes, state size, non-finite gradients
# ---------------------------------------------------------------------------------------------


def test_schedules_read_at_count():
  inc = lambda c: jnp.where(c < 3, 0.05, 0.5)  # noqa: E731
  _, st_ = _run(nn.local_gains(0.1, additive_increase=inc), [1.0] * 4, state_fields=("gains",))
  np.testing.assert_allclose(st_["gains"], [0.95, 1.0, 1.05, 1.55], rtol=1e-6)
  # learning rate inside the velocity with momentum: v3 = 0.9 v2 - 0.01 G3 g
  lr = lambda c: jnp.where(c < 2, 0.1, 0.01)  # noqa: E731
  w, _ = _run(nn.local_gains(lr, momentum=0.9), [1.0] * 3)
  v1, v2 = -0.095, 0.9 * -0.095 - 0.1 * 1.0
  np.testing.assert_allclose(np.diff(np.r_[0.0, w]), [v1, v2, 0.9 * v2 - 0.01 * 1.05], rtol=1e-6)
  kappa = lambda c: jnp.where(c < 2, 1.0, 0.0)  # noqa: E731
  _, st_ = _run(nn.delta_bar_delta(0.1, kappa=kappa), [1.0] * 4, state_fields=("rate_gains",))
  np.testing.assert_allclose(st_["rate_gains"], [1.0, 2.0, 2.0, 2.0])


@pytest.mark.parametrize(
  "make,bytes_per_param",
  [
    (lambda: nn.scale_by_local_gains(), 5),
    (lambda: nn.scale_by_local_gains_momentum(), 8),
    (lambda: nn.scale_by_delta_bar_delta(), 8),
  ],
)
def test_compact_state(make, bytes_per_param):
  params = {"w": jnp.zeros((64, 32)), "b": jnp.zeros(32)}
  state = make().init(params)
  n = sum(p.size for p in jax.tree.leaves(params))
  size = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state) if x.ndim > 0)
  assert size == bytes_per_param * n


def test_dtypes():
  p = jnp.ones(3, jnp.bfloat16)
  for make, field in [
    (nn.scale_by_local_gains, "gains"),
    (nn.scale_by_local_gains_momentum, "momentum_gains"),
    (nn.scale_by_delta_bar_delta, "rate_gains"),
  ]:
    tx = make()
    s = tx.init(p)
    assert getattr(s, field).dtype == jnp.float32  # +0.05 steps are not rounded by bf16
    for _ in range(3):
      u, s = tx.update(jnp.ones(3, jnp.bfloat16), s)
    assert u.dtype == jnp.bfloat16 and getattr(s, field).dtype == jnp.float32
  s = nn.scale_by_local_gains().init(jnp.ones(3, jnp.bfloat16))
  assert s.last_grad_sign.dtype == jnp.int8
  s = nn.scale_by_local_gains_momentum(accumulator_dtype=jnp.float32).init(p)
  assert s.gain_velocity.dtype == jnp.float32
  s = nn.scale_by_delta_bar_delta().init(p)
  assert s.delta_bar.dtype == jnp.bfloat16
  with jax.enable_x64(True):
    s = nn.scale_by_local_gains().init(jnp.ones(3, jnp.float64))
    assert s.gains.dtype == jnp.float64


def test_nan_gradient_does_not_poison_the_gains():
  """A NaN entry: output NaN, gain finite, memory of that entry reset to 0; others unaffected."""
  g = [[1.0, 1.0], [np.nan, 1.0], [1.0, 1.0], [1.0, 1.0]]
  with jax.enable_x64(True):
    for tx, field, memory in [
      (nn.scale_by_local_gains(), "gains", "last_grad_sign"),
      (nn.scale_by_local_gains_momentum(0.9), "momentum_gains", "gain_velocity"),
      (nn.scale_by_delta_bar_delta(), "rate_gains", "delta_bar"),
    ]:
      s = tx.init(jnp.zeros(2))
      outs, gains = [], []
      for gi in g:
        u, s = tx.update(jnp.asarray(gi), s)
        outs.append(np.asarray(u))
        gains.append(np.asarray(getattr(s, field)))
        if len(outs) == 2:
          assert np.isnan(outs[1][0]) and np.isfinite(outs[1][1])
          assert np.asarray(getattr(s, memory))[0] == 0
      gains = np.array(gains)
      assert np.all(np.isfinite(gains))
      # after the NaN the entry adapts again: its gain rises on the last step
      assert gains[3, 0] > gains[2, 0], (field, gains[:, 0])
  # local gains: a NaN costs exactly two decreases (the NaN step and the step after it)
  _, st_ = _run(nn.scale_by_local_gains(), [1.0, np.nan, 1.0, 1.0], state_fields=("gains",))
  np.testing.assert_allclose(st_["gains"], [0.95, 0.9025, 0.857375, 0.907375], rtol=1e-15)


def test_momentum_update_is_the_stored_velocity():
  """Gains with momentum step by the velocity as stored (in ``accumulator_dtype``); an inf input
  entry is returned as it is and stored as 0, like NaN."""
  tx = nn.scale_by_local_gains_momentum(0.9)
  s = tx.init(jnp.zeros(3))
  _, s = tx.update(jnp.ones(3), s)
  u, s = tx.update(jnp.asarray([np.inf, -np.inf, 2.0]), s)
  np.testing.assert_array_equal(u[:2], [np.inf, -np.inf])
  np.testing.assert_array_equal(s.gain_velocity, [0.0, 0.0, u[2]])
  assert u[2] == np.float32(0.9) * np.float32(0.95) + np.float32(1.0) * 2  # μ b + G u, G = 1
  assert np.all(np.isfinite(s.momentum_gains))
  tx = nn.scale_by_local_gains_momentum(0.9, accumulator_dtype=jnp.bfloat16)
  s = tx.init(jnp.zeros(2))
  u, s = tx.update(jnp.asarray([1.0 / 3, 1.0]), s)
  assert u.dtype == jnp.float32
  np.testing.assert_array_equal(u, s.gain_velocity.astype(jnp.float32))


def test_constant_schedule_and_number_agree_f64():
  g = _random_grads(3, steps=10, n=4)
  w0 = np.zeros(4)
  a, _ = _run(nn.local_gains(0.01, momentum=0.9), g, w0)
  b, _ = _run(nn.local_gains(lambda c: 0.01, momentum=lambda c: 0.9), g, w0)
  np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "make,name",
  [
    (lambda: nn.scale_by_local_gains(additive_increase=0.0), "additive_increase"),
    (lambda: nn.scale_by_local_gains(additive_increase=-0.05), "additive_increase"),
    (lambda: nn.local_gains(0.1, additive_increase=lambda c: -1.0), "additive_increase"),
    (lambda: nn.scale_by_local_gains(multiplicative_decrease=0.0), "multiplicative_decrease"),
    (lambda: nn.scale_by_local_gains(multiplicative_decrease=1.0), "multiplicative_decrease"),
    (lambda: nn.local_gains(0.1, multiplicative_decrease=1.2), "multiplicative_decrease"),
    (lambda: nn.scale_by_local_gains(min_gain=0.0), "min_gain"),
    (lambda: nn.scale_by_local_gains(min_gain=-1.0), "min_gain"),
    (lambda: nn.scale_by_local_gains(min_gain=5.0, max_gain=1.0), "min_gain"),
    (lambda: nn.local_gains(0.1, momentum=0.9, min_gain=2.0, max_gain=1.0), "min_gain"),
    (lambda: nn.scale_by_local_gains(max_gain=0.0), "max_gain"),
    (lambda: nn.scale_by_local_gains_momentum(momentum=1.0), "momentum"),
    (lambda: nn.local_gains(0.1, momentum=-0.1), "momentum"),
    (lambda: nn.local_gains(-0.1), "learning_rate"),
    (lambda: nn.local_gains(0.1, accumulator_dtype=jnp.float32), "accumulator_dtype"),
    (lambda: nn.scale_by_delta_bar_delta(theta=1.0), "theta"),
    (lambda: nn.delta_bar_delta(0.1, theta=-0.1), "theta"),
    (lambda: nn.scale_by_delta_bar_delta(kappa=0.0), "kappa"),
    (lambda: nn.scale_by_delta_bar_delta(phi=0.0), "phi"),
    (lambda: nn.delta_bar_delta(0.1, phi=1.0), "phi"),
    (lambda: nn.delta_bar_delta(0.1, max_gain=0.0), "max_gain"),
    (lambda: nn.delta_bar_delta(-1.0), "learning_rate"),
  ],
)
def test_bad_input(make, name):
  with pytest.raises(ValueError, match=name):
    make()


def test_bad_types():
  with pytest.raises(TypeError, match="additive_increase"):
    nn.scale_by_local_gains(additive_increase="0.05")
  with pytest.raises(TypeError, match="accumulator_dtype"):
    nn.scale_by_delta_bar_delta(accumulator_dtype=jnp.int32)


def test_min_equals_max_is_a_fixed_gain():
  tx = nn.scale_by_local_gains(min_gain=2.0, max_gain=2.0)
  s = tx.init(jnp.zeros(3))
  u, s = tx.update(jnp.array([1.0, -2.0, 0.0]), s)
  np.testing.assert_array_equal(u, [2.0, -4.0, 0.0])
