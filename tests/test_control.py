"""Learning-rate control (lecture 6a/6b): bold driver (Vogl et al. 1988, Battiti 1989),
reduce-on-plateau (torch numbers) and the epoch-level plateau helper."""

from __future__ import annotations

import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnml_optax as nn

from references import control as ref

# ---------------------------------------------------------------------------------------------
# bold driver
# ---------------------------------------------------------------------------------------------

BOLD_PATH = [1.0, -0.8, 0.784, -0.923552, 0.784, -0.069776, 0.0138086704]
BOLD_SCALES = [1.0, 1.1, 1.21, 0.605, 0.605, 0.6655]  # eta / 0.9 after each call


def _bold_path(tx, w0, steps, dtype):
  f = lambda w: jnp.sum(w**2)  # noqa: E731
  w = jnp.asarray([w0], dtype)
  state = tx.init(w)
  path, scales = [float(w[0])], []
  for _ in range(steps):
    value, g = jax.value_and_grad(f)(w)
    u, state = tx.update(g, state, w, value=value)
    w = optax.apply_updates(w, u)
    path.append(float(w[0]))
    scales.append(float(optax.tree.get(state, "driver_scale")))
  return path, scales, state


def test_golden_exact_float64():
  with jax.enable_x64(True):
    path, scales, state = _bold_path(
      optax.chain(nn.sgd(0.9), nn.bold_driver()), 1.0, 6, jnp.float64
    )
    assert optax.tree.get(state, "driver_scale").dtype == jnp.float64
  np.testing.assert_allclose(path, BOLD_PATH, rtol=1e-14, atol=1e-15)
  np.testing.assert_allclose(scales, BOLD_SCALES, rtol=1e-15)
  # the numpy reference reproduces the golden path too
  np.testing.assert_allclose(
    ref.bold_driver_run(1.0, lambda w: w * w, lambda w: 2 * w, 0.9, 6),
    BOLD_PATH,
    rtol=1e-14,
    atol=1e-15,
  )


def test_golden_float32_jit():
  tx = optax.chain(nn.sgd(0.9), nn.bold_driver())
  f = lambda w: jnp.sum(w**2)  # noqa: E731

  @jax.jit
  def step(w, state):
    value, g = jax.value_and_grad(f)(w)
    u, state = tx.update(g, state, w, value=value)
    return optax.apply_updates(w, u), state

  w = jnp.ones([1], jnp.float32)
  state, path = tx.init(w), [1.0]
  for _ in range(6):
    w, state = step(w, state)
    path.append(float(w[0]))
  np.testing.assert_allclose(path, BOLD_PATH, rtol=2e-6, atol=1e-7)


def test_bold_driver_state_is_compact_and_named():
  params = {"w": jnp.zeros((4, 3), jnp.bfloat16), "b": jnp.zeros(3)}
  state = nn.bold_driver().init(params)
  assert isinstance(state, nn.BoldDriverState)
  assert state.previous_step["w"].dtype == jnp.bfloat16  # one copy, in the parameter dtype
  assert state.driver_scale.dtype == jnp.float32 and state.count.dtype == jnp.int32
  assert float(state.reference_value) == math.inf
  assert nn.bold_driver(undo=False).init(params).previous_step == ()


def _stream(tx, values, updates):
  """Feeds ``tx`` the given (value, update) sequence directly; returns emitted steps and scales."""
  state = tx.init(jnp.zeros(2))
  out, scales = [], []
  for v, u in zip(values, updates, strict=True):
    step, state = tx.update(jnp.asarray(u), state, value=v)
    out.append(np.asarray(step, np.float64))
    scales.append(float(state.driver_scale))
  return out, scales


def test_tolerance_equality_and_undo_false():
  values = [1.0, 1.0, 1.03, 1.2, 0.5]
  updates = [np.array([1.0, -2.0])] * 5
  for kw in [dict(), dict(tolerance=0.05), dict(undo=False), dict(undo=False, tolerance=0.05)]:
    out, scales = _stream(nn.bold_driver(**kw), values, updates)
    r_out, r_scales = ref.bold_driver_stream(
      values, updates, tol=kw.get("tolerance", 0.0), undo=kw.get("undo", True)
    )
    np.testing.assert_allclose(scales, r_scales, rtol=1e-6)
    np.testing.assert_allclose(np.stack(out), np.stack(r_out), rtol=1e-6)
  # equality is success; 1.03 is a rise without tolerance, accepted with 5 %
  _, scales = _stream(nn.bold_driver(), values[:3], updates[:3])
  np.testing.assert_allclose(scales, [1.0, 1.1, 0.55], rtol=1e-6)
  _, scales = _stream(nn.bold_driver(tolerance=0.05), values[:3], updates[:3])
  np.testing.assert_allclose(scales, [1.0, 1.1, 1.21], rtol=1e-6)


def test_relative_tolerance_on_negative_losses():
  # a rise from -1.0 to -0.97 is 3 % of |E|: within 5 %, beyond 1 %
  _, s = _stream(nn.bold_driver(tolerance=0.05), [-1.0, -0.97], [np.ones(2)] * 2)
  assert s[-1] == pytest.approx(1.1)
  _, s = _stream(nn.bold_driver(tolerance=0.01), [-1.0, -0.97], [np.ones(2)] * 2)
  assert s[-1] == pytest.approx(0.5)


def test_non_finite_value_counts_as_a_rise():
  u = np.array([1.0, 2.0])
  out, scales = _stream(nn.bold_driver(), [1.0, math.nan, 1.0, math.inf], [u] * 4)
  np.testing.assert_allclose(scales, [1.0, 0.5, 0.5, 0.25])
  np.testing.assert_array_equal(out[1], -u)  # the NaN point is undone
  np.testing.assert_array_equal(out[2], 0.5 * u)  # plain retry with the reduced scale
  np.testing.assert_array_equal(out[3], -0.5 * u)
  # a non-finite loss at the first call: nothing to undo, shrink and stay
  out, scales = _stream(nn.bold_driver(), [math.nan, 2.0, 1.0], [u] * 3)
  np.testing.assert_allclose(scales, [0.5, 0.5, 0.55])
  np.testing.assert_array_equal(out[0], 0 * u)
  np.testing.assert_array_equal(out[1], 0.5 * u)
  # NaN updates on an undo call do not leak into the emitted (undo) step
  out, _ = _stream(nn.bold_driver(), [1.0, 2.0], [u, np.full(2, np.nan)])
  np.testing.assert_array_equal(out[1], -u)


N_STREAM = 10
_values = st.lists(
  st.one_of(st.floats(-3, 3, width=32), st.sampled_from([math.nan, math.inf])),
  min_size=N_STREAM,
  max_size=N_STREAM,
)


@pytest.fixture(scope="module")
def bold_scan():
  """A jitted scan of the bold driver over (values, updates) with traced hyperparameters."""

  def run(values, updates, rho, sigma, tol, undo):
    tx = nn.bold_driver(rho, sigma, tolerance=tol, undo=undo)

    def body(state, vu):
      v, u = vu
      step, state = tx.update(u, state, value=v)
      return state, (step, state.driver_scale)

    _, (steps, scales) = jax.lax.scan(body, tx.init(updates[0]), (values, updates))
    return steps, scales

  return jax.jit(run, static_argnums=5)


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  values=_values,
  rho=st.floats(1.01, 2.0),
  sigma=st.floats(0.1, 0.9),
  tol=st.sampled_from([0.0, 0.01, 0.3]),
  undo=st.booleans(),
  seed=st.integers(0, 2**16),
)
def test_bold_driver_matches_reference(bold_scan, values, rho, sigma, tol, undo, seed):
  updates = np.random.default_rng(seed).normal(size=(N_STREAM, 3))
  with jax.enable_x64(True):
    steps, scales = bold_scan(
      jnp.asarray(values, jnp.float64), jnp.asarray(updates), rho, sigma, tol, undo
    )
  r_steps, r_scales = ref.bold_driver_stream(values, updates, rho, sigma, tol, undo)
  np.testing.assert_allclose(np.asarray(scales), r_scales, rtol=1e-13)
  np.testing.assert_allclose(np.asarray(steps), np.stack(r_steps), rtol=1e-13, atol=1e-15)


def test_bold_driver_missing_or_bad_value():
  tx = nn.bold_driver()
  state = tx.init(jnp.zeros(2))
  with pytest.raises(ValueError, match="value"):
    tx.update(jnp.ones(2), state)
  with pytest.raises(ValueError, match="value"):
    tx.update(jnp.ones(2), state, value=jnp.ones(2))
  with pytest.raises(ValueError, match="value"):  # also inside a chain (extra args forwarded)
    optax.chain(nn.sgd(0.1), tx).update(
      jnp.ones(2), optax.chain(nn.sgd(0.1), tx).init(jnp.zeros(2))
    )


@pytest.mark.parametrize(
  "kwargs, name",
  [
    (dict(increase=1.0), "increase"),
    (dict(increase=0.9), "increase"),
    (dict(decrease=0.0), "decrease"),
    (dict(decrease=1.0), "decrease"),
    (dict(decrease=1.5), "decrease"),
    (dict(tolerance=-0.1), "tolerance"),
    (dict(max_scale=0.5), "max_scale"),
    (dict(increase=lambda c: 0.5), "increase"),
  ],
)
def test_bold_driver_bad_input(kwargs, name):
  with pytest.raises(ValueError, match=name):
    nn.bold_driver(**kwargs)


def test_bold_driver_scale_stops_at_max_scale():
  tx = nn.bold_driver(2.0, max_scale=5.0)
  state = tx.init(jnp.zeros(1))
  scales = []
  for _ in range(6):  # an unchanged loss is a success: 2, 4, then capped at 5
    _, state = tx.update(jnp.ones(1), state, value=1.0)
    scales.append(float(state.driver_scale))
  assert scales == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_bold_driver_undo_must_be_bool():
  with pytest.raises(TypeError, match="undo"):
    nn.bold_driver(undo=1)


# ---------------------------------------------------------------------------------------------
# reduce on plateau: torch.optim.lr_scheduler.ReduceLROnPlateau 2.13 numbers (lr = 1, so lr = scale)
# ---------------------------------------------------------------------------------------------

V12 = [1.0, 0.9, 0.95, 0.92, 0.91, 0.905, 0.95, 0.8, 0.85, 0.86, 0.87, 0.88]
WALK = [
  5.0,
  5.09,
  5.008,
  4.741,
  4.604,
  4.307,
  4.325,
  4.727,
  4.579,
  4.393,
  4.54,
  4.647,
  4.679,
  4.399,
  4.391,
  4.599,
  4.196,
  4.059,
  3.488,
  3.102,
  2.549,
  2.478,
  2.098,
  2.18,
  2.227,
  2.171,
  1.416,
  1.254,
  1.239,
  1.273,
  0.814,
  0.671,
  0.377,
  0.135,
  0.453,
  0.211,
  0.201,
  0.466,
  0.291,
  0.258,
]  # a rounded random walk (numpy seed 7)

# (values, our kwargs, the torch kwargs that produced the lrs, torch lr after each step())
TORCH_CASES = {
  "golden": (
    V12,
    dict(factor=0.5, patience=2, cooldown=1, rtol=1e-4),
    "factor=0.5, patience=2, cooldown=1, threshold=1e-4",
    [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25],
  ),
  "patience0": (
    [1, 0.9, 0.95, 0.8, 0.85],
    dict(factor=0.5, patience=0, rtol=1e-4),
    "factor=0.5, patience=0, threshold=1e-4",
    [1.0, 1.0, 0.5, 0.5, 0.25],
  ),
  "patience1": (
    [1, 0.9, 0.95, 0.8, 0.85],
    dict(factor=0.5, patience=1, rtol=1e-4),
    "factor=0.5, patience=1, threshold=1e-4",
    [1.0] * 5,
  ),
  "min_scale_cooldown": (
    WALK,
    dict(factor=0.5, patience=3, cooldown=2, rtol=1e-3, min_scale=0.02),
    "factor=0.5, patience=3, cooldown=2, threshold=1e-3, min_lr=0.02",
    [1.0] * 9 + [0.5] * 6 + [0.25] * 22 + [0.125] * 3,
  ),
  "default_factor": (
    [*V12, 0.9, 0.9, 0.9, 0.9, 0.9],
    dict(patience=1),
    "patience=1 (factor=0.1, threshold=1e-4)",
    [
      1.0,
      1.0,
      1.0,
      0.1,
      0.1,
      0.010000000000000002,
      0.010000000000000002,
      0.010000000000000002,
      0.010000000000000002,
      0.0010000000000000002,
      0.0010000000000000002,
      0.00010000000000000003,
      0.00010000000000000003,
      1.0000000000000004e-05,
      1.0000000000000004e-05,
      1.0000000000000004e-06,
      1.0000000000000004e-06,
    ],
  ),
  # mode="max": torch's relative rule best*(1+threshold) is right for positive metrics
  "max": (
    WALK[:25],
    dict(factor=0.1, patience=2, rtol=1e-3, mode="max"),
    "mode='max', factor=0.1, patience=2, threshold=1e-3",
    [
      1.0,
      1.0,
      1.0,
      1.0,
      0.1,
      0.1,
      0.1,
      0.010000000000000002,
      0.010000000000000002,
      0.010000000000000002,
      0.0010000000000000002,
      0.0010000000000000002,
      0.0010000000000000002,
      0.00010000000000000003,
      0.00010000000000000003,
      0.00010000000000000003,
      1.0000000000000004e-05,
      1.0000000000000004e-05,
      1.0000000000000004e-05,
      1.0000000000000004e-06,
      1.0000000000000004e-06,
      1.0000000000000004e-06,
      1.0000000000000005e-07,
      1.0000000000000005e-07,
      1.0000000000000005e-07,
    ],
  ),
  # negative values: torch with threshold_mode="abs" (sign-independent) = rtol=0, atol
  "negative_abs": (
    [w - 10.0 for w in WALK],
    dict(factor=0.5, patience=2, cooldown=1, rtol=0.0, atol=0.05),
    "factor=0.5, patience=2, cooldown=1, threshold=0.05, threshold_mode='abs'",
    [1.0] * 8 + [0.5] * 4 + [0.25] * 13 + [0.125] * 11 + [0.0625] * 4,
  ),
  # negative values, relative threshold: minimising -m must equal torch maximising m (m > 0),
  # where torch's relative rule is right; torch's own mode="min" on -m would loosen instead
  "negative_rel": (
    [-w for w in WALK],
    dict(factor=0.5, patience=2, cooldown=1, rtol=1e-3),
    "mode='max' on -values: factor=0.5, patience=2, cooldown=1, threshold=1e-3",
    [1.0] * 4
    + [0.5] * 4
    + [0.25] * 4
    + [0.125] * 4
    + [0.0625] * 4
    + [0.03125] * 4
    + [0.015625] * 4
    + [0.0078125] * 4
    + [0.00390625] * 4
    + [0.001953125] * 4,
  ),
}


def _plateau_scales(tx, values, dtype=jnp.float64):
  """Scale after each ``update(..., value=m)`` and the emitted multiple of a unit update."""
  params = jnp.zeros([1], dtype)
  state = tx.init(params)
  update = jax.jit(tx.update)
  scales, emitted = [], []
  for m in values:
    u, state = update(jnp.ones([1], dtype), state, value=jnp.asarray(m, dtype))
    scales.append(float(optax.tree.get(state, "plateau_scale")))
    emitted.append(float(u[0]))
  return scales, emitted, state


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_plateau_matches_torch(case):
  values, kwargs, _torch_kwargs, torch_lrs = TORCH_CASES[case]
  with jax.enable_x64(True):
    scales, emitted, _ = _plateau_scales(nn.reduce_on_plateau(**kwargs, value_arg="value"), values)
  assert scales == torch_lrs  # exact in float64
  assert emitted == torch_lrs  # the new scale applies to this very call
  r_scales, _ = ref.reduce_on_plateau(values, **kwargs)
  assert r_scales == torch_lrs
  # float32 (the default) takes the same decisions here
  s32, _, _ = _plateau_scales(
    nn.reduce_on_plateau(**kwargs, value_arg="value"), values, jnp.float32
  )
  np.testing.assert_allclose(s32, torch_lrs, rtol=1e-6)


def test_plateau_best_golden():
  with jax.enable_x64(True):
    _, _, state = _plateau_scales(nn.reduce_on_plateau(0.5, 2, cooldown=1, value_arg="value"), V12)
  assert float(state.best_value) == 0.8
  assert ref.reduce_on_plateau(V12, 0.5, 2, 1)[1] == [1.0] + [0.9] * 6 + [0.8] * 5


def test_plateau_constant_negative_loss_reduces_unlike_optax():
  values = [-1.0] * 6
  scales, _, _ = _plateau_scales(
    nn.reduce_on_plateau(0.5, 1, value_arg="value"), values, jnp.float32
  )
  assert scales == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
  # optax 0.2.8 never reduces there (google-deepmind/optax PR #1767)
  tx = optax.contrib.reduce_on_plateau(factor=0.5, patience=1)
  state = tx.init(jnp.zeros(1))
  for v in values:
    _, state = tx.update(jnp.ones(1), state, value=jnp.asarray(v))
  assert float(state.scale) == 1.0


N_PLATEAU = 16


@pytest.fixture(scope="module")
def plateau_scan():
  def run(values, factor, patience, cooldown, min_scale, rtol, atol, mode):
    tx = nn.reduce_on_plateau(
      factor,
      patience,
      cooldown=cooldown,
      min_scale=min_scale,
      rtol=rtol,
      atol=atol,
      mode=mode,
      value_arg="value",
    )

    def body(state, m):
      _, state = tx.update(jnp.zeros([1], values.dtype), state, value=m)
      return state, (state.plateau_scale, state.best_value)

    _, out = jax.lax.scan(body, tx.init(jnp.zeros([1], values.dtype)), values)
    return out

  return jax.jit(run, static_argnums=7)


_plateau_values = st.lists(
  st.one_of(
    st.sampled_from([1.0, 1.0001, 0.9999, -1.0, 0.0, math.nan]), st.floats(-2, 2, width=32)
  ),
  min_size=N_PLATEAU,
  max_size=N_PLATEAU,
)


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  values=_plateau_values,
  factor=st.floats(0.05, 0.95),
  patience=st.integers(0, 3),
  cooldown=st.integers(0, 2),
  min_scale=st.sampled_from([0.0, 0.3]),
  rtol=st.sampled_from([0.0, 1e-4, 0.1]),
  atol=st.sampled_from([0.0, 0.01]),
  mode=st.sampled_from(["min", "max"]),
)
def test_plateau_matches_reference_and_is_sign_symmetric(
  plateau_scan, values, factor, patience, cooldown, min_scale, rtol, atol, mode
):
  with jax.enable_x64(True):
    v = jnp.asarray(values, jnp.float64)
    scales, bests = plateau_scan(v, factor, patience, cooldown, min_scale, rtol, atol, mode)
    flipped = "max" if mode == "min" else "min"
    m_scales, m_bests = plateau_scan(-v, factor, patience, cooldown, min_scale, rtol, atol, flipped)
  r_scales, r_bests = ref.reduce_on_plateau(
    values, factor, patience, cooldown, min_scale, rtol, atol, mode
  )
  np.testing.assert_array_equal(np.asarray(scales), r_scales)
  np.testing.assert_array_equal(np.asarray(bests), r_bests)
  # minimising m is maximising -m (the relative threshold uses |best|)
  np.testing.assert_array_equal(np.asarray(m_scales), np.asarray(scales))
  np.testing.assert_array_equal(np.asarray(m_bests), -np.asarray(bests))
  # the scale never rises, and never drops below min_scale unless it started there
  s = np.asarray(scales)
  assert np.all(np.diff(s) <= 0) and np.all((s >= min_scale) | (s == 1.0))


def test_plateau_update_without_value_only_scales():
  tx = nn.reduce_on_plateau(0.5, 0, value_arg="value")
  state = tx.init(jnp.zeros(2))
  for _ in range(3):
    u, state = tx.update(jnp.ones(2), state)
  np.testing.assert_array_equal(u, jnp.ones(2))
  assert int(state.count) == 3 and float(state.plateau_scale) == 1.0


# ---------------------------------------------------------------------------------------------
# the epoch-level helper
# ---------------------------------------------------------------------------------------------


def test_update_plateau_inside_momentum_chain():
  """A training loop: momentum every step, the validation metric once per 'epoch' (3 steps)."""
  with jax.enable_x64(True):
    tx = optax.chain(nn.momentum(0.1, 0.9), nn.reduce_on_plateau(0.5, patience=2, cooldown=1))
    params = jnp.zeros([2], jnp.float64)
    state = tx.init(params)
    step = jax.jit(lambda g, s: tx.update(g, s))
    epoch_end = jax.jit(nn.update_plateau)
    # reference: the same momentum without the plateau, scaled by the torch lr of each epoch
    plain = nn.momentum(0.1, 0.9)
    p_state = plain.init(params)
    g = jnp.asarray([1.0, -2.0], jnp.float64)
    scales = []
    for m in V12:
      for _ in range(3):
        u, state = step(g, state)
        ref_u, p_state = plain.update(g, p_state)
        np.testing.assert_allclose(u, ref_u * (scales[-1] if scales else 1.0), rtol=1e-15)
      before = jax.tree.map(lambda x: x, state)
      state = epoch_end(state, m)
      scales.append(float(optax.tree.get(state, "plateau_scale")))
      # only the plateau part moved: the momentum state and every count are untouched
      _assert_equal(state[0], before[0])
      assert int(state[1].count) == int(before[1].count)
  assert scales == TORCH_CASES["golden"][3]


def _assert_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("wrap", ["inject", "masked", "multisteps", "nested_chain"])
def test_update_plateau_finds_nested_states(wrap):
  params = {"a": jnp.zeros(2), "b": jnp.zeros(3)}
  if wrap == "inject":
    tx = optax.chain(
      nn.sgd(0.1), optax.inject_hyperparams(nn.reduce_on_plateau, static_args=("mode",))(0.5, 0)
    )
  elif wrap == "masked":
    tx = optax.chain(
      nn.sgd(0.1), optax.masked(nn.reduce_on_plateau(0.5, 0), {"a": True, "b": False})
    )
  elif wrap == "multisteps":
    tx = optax.MultiSteps(optax.chain(nn.sgd(0.1), nn.reduce_on_plateau(0.5, 0)), 2)
  else:
    tx = optax.chain(optax.chain(nn.sgd(0.1), optax.chain(nn.reduce_on_plateau(0.5, 0))))
  state = tx.init(params)
  new = nn.update_plateau(nn.update_plateau(state, 1.0), 1.0)
  assert jax.tree.structure(new) == jax.tree.structure(state)
  assert float(optax.tree.get(new, "plateau_scale")) == 0.5
  assert float(optax.tree.get(state, "plateau_scale")) == 1.0  # pure: the input is unchanged


def test_update_plateau_uses_injected_hyperparameters():
  tx = optax.inject_hyperparams(nn.reduce_on_plateau, static_args=("mode",))(factor=0.5, patience=0)
  state = tx.init(jnp.zeros(1))
  state.hyperparams["factor"] = jnp.asarray(0.25)
  _, state = tx.update(jnp.ones(1), state)  # update refreshes the rule from the injected value
  state = nn.update_plateau(nn.update_plateau(state, 1.0), 1.0)
  assert float(optax.tree.get(state, "plateau_scale")) == 0.25


def _nnx_model_and_optimizer(nnx):
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  tx = optax.chain(nn.momentum(0.1), nn.reduce_on_plateau(0.5, 0, value_arg=None))
  return model, nnx.Optimizer(model, tx, wrt=nnx.Param)


def test_update_plateau_with_nnx_optimizer_in_place():
  """The optimizer itself, or its opt_state (assigned back or not), is updated in place."""
  nnx = pytest.importorskip("flax.nnx")
  _, opt = _nnx_model_and_optimizer(nnx)
  assert nn.update_plateau(opt, 1.0) is opt
  nn.update_plateau(opt, 1.0)
  assert float(nn.hyperparams(opt)["1/plateau_scale"]) == 0.5
  opt.opt_state = nn.update_plateau(opt.opt_state, 1.0)  # the natural first try works too
  assert float(nn.hyperparams(opt.opt_state)["1/plateau_scale"]) == 0.25
  assert int(opt.opt_state[1].bad_evaluations.get_value()) == 0


def test_update_plateau_with_nnx_optimizer_inside_nnx_jit():
  nnx = pytest.importorskip("flax.nnx")
  model, opt = _nnx_model_and_optimizer(nnx)
  x = jnp.ones((4, 3))

  @nnx.jit
  def train_step(model, opt):
    grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model)
    opt.update(model, grads)

  @nnx.jit
  def epoch_end(opt, val_loss):
    nn.update_plateau(opt, val_loss)
    return nn.hyperparams(opt)

  for val_loss in [1.0, 1.0, 1.0]:
    train_step(model, opt)
    logged = epoch_end(opt, val_loss)
  assert float(logged["1/plateau_scale"]) == 0.25
  assert float(logged["effective_learning_rate"]) == pytest.approx(0.025)
  assert int(opt.opt_state[0][1].count.get_value()) == 3  # the step count moved only with the steps


def test_update_plateau_errors():
  with pytest.raises(ValueError, match="ReduceOnPlateauState"):
    nn.update_plateau(nn.momentum(0.1).init(jnp.zeros(2)), 1.0)
  state = nn.reduce_on_plateau().init(jnp.zeros(2))
  with pytest.raises(ValueError, match="value"):
    nn.update_plateau(state, None)
  with pytest.raises(ValueError, match="value"):
    nn.update_plateau(state, jnp.ones(2))


@pytest.mark.parametrize(
  "kwargs, name",
  [
    (dict(factor=0.0), "factor"),
    (dict(factor=1.0), "factor"),
    (dict(factor=2.0), "factor"),
    (dict(patience=-1), "patience"),
    (dict(cooldown=-1), "cooldown"),
    (dict(min_scale=-0.1), "min_scale"),
    (dict(rtol=-1e-4), "rtol"),
    (dict(atol=-1.0), "atol"),
    (dict(mode="minimize"), "mode"),
  ],
)
def test_plateau_bad_input(kwargs, name):
  with pytest.raises(ValueError, match=name):
    nn.reduce_on_plateau(**kwargs)


def test_plateau_patience_must_be_int():
  with pytest.raises(TypeError, match="patience"):
    nn.reduce_on_plateau(patience=1.5)


def test_turn_down_towards_the_end_is_an_optax_schedule():
  """Lecture 6a: 'turn down the learning rate towards the end': optax schedules already do it,
  and they compose with everything here."""
  lr = optax.cosine_decay_schedule(0.1, decay_steps=10, alpha=0.01)
  tx = optax.chain(nn.momentum(lr, 0.9), nn.scale_by_fan_in(), nn.reduce_on_plateau(0.5, 1))
  params = {"kernel": jnp.zeros((4, 3)), "bias": jnp.zeros(3)}
  state = tx.init(params)
  for _ in range(12):
    u, state = tx.update(jax.tree.map(jnp.ones_like, params), state)
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))


# ---------------------------------------------------------------------------------------------
# who reads value=: each controller what it is asked to read
# ---------------------------------------------------------------------------------------------


def _train_then_validate(tx_chain, tx_alone, plateau_alone, train_losses, val_losses):
  """Runs ``tx_chain`` (a controller + reduce_on_plateau(value_arg=None)) with a training loss
  every step and a validation loss after every 3 steps, beside the two parts run alone; returns
  the chain's updates and the parts' updates multiplied."""
  g = jnp.asarray([1.0, -2.0])
  params = jnp.zeros(2)
  s_chain, s_alone, s_plateau = (t.init(params) for t in (tx_chain, tx_alone, plateau_alone))
  got, want = [], []
  for t, loss in enumerate(train_losses):
    u, s_chain = tx_chain.update(g, s_chain, params, value=loss)
    a, s_alone = tx_alone.update(g, s_alone, params, value=loss)
    b, s_plateau = plateau_alone.update(a, s_plateau, params)
    got.append(u)
    want.append(b)
    if t % 3 == 2:
      s_chain = nn.update_plateau(s_chain, val_losses[t // 3])
      s_plateau = nn.update_plateau(s_plateau, val_losses[t // 3])
  return got, want, s_chain


@pytest.mark.parametrize("controller", ["irprop+", "bold_driver"])
def test_training_loss_controller_and_plateau_behave_as_each_alone(controller):
  """iRprop+ / the bold driver read the training loss (value=) every step; the plateau reads
  only the validation losses given to update_plateau, and the chain equals the two run alone."""
  train = [3.0, 2.0, 2.5, 1.5, 1.0, 1.2, 0.9, 0.8, 1.0, 0.7, 0.6, 0.65]
  val = [1.0, 1.1, 1.2, 1.3]  # gets worse every epoch: patience 1 reduces once, at epoch 3

  def part():
    if controller == "irprop+":
      return nn.rprop(0.01, variant="irprop+")
    return optax.chain(nn.sgd(0.1), nn.bold_driver())

  def plateau():
    return nn.reduce_on_plateau(0.5, patience=1, value_arg=None)

  got, want, state = _train_then_validate(
    optax.chain(part(), plateau()), part(), plateau(), train, val
  )
  for a, b in zip(got, want, strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert float(optax.tree.get(state, "plateau_scale")) == 0.5
  assert float(optax.tree.get(state, "best_value")) == 1.0  # never a training loss


def test_plateau_reads_the_named_extra_argument():
  tx = optax.chain(
    nn.rprop(0.01, variant="irprop+"), nn.reduce_on_plateau(0.5, 0, value_arg="val_loss")
  )
  state = tx.init(jnp.zeros(2))
  _, state = tx.update(jnp.ones(2), state, jnp.zeros(2), value=5.0)  # no val_loss: no evaluation
  assert float(optax.tree.get(state, "best_value")) == float("inf")
  _, state = tx.update(jnp.ones(2), state, jnp.zeros(2), value=5.0, val_loss=1.0)
  assert float(optax.tree.get(state, "best_value")) == 1.0


def test_plateau_reading_value_by_default_is_deprecated():
  """0.1.0's behaviour (update evaluates value=) stays for 0.2.0, with a DeprecationWarning."""
  tx = nn.reduce_on_plateau(0.5, 0)
  state = tx.init(jnp.zeros(1))
  with pytest.warns(DeprecationWarning, match="value_arg"):
    _, state = tx.update(jnp.ones(1), state, value=1.0)
  assert float(state.best_value) == 1.0
  _, state = nn.reduce_on_plateau(0.5, 0, value_arg="value").update(jnp.ones(1), state, value=2.0)
  with pytest.raises(TypeError, match="value_arg"):
    nn.reduce_on_plateau(value_arg=3)  # pyright: ignore[reportArgumentType]
