"""vSGD (lecture 6e; Schaul, Zhang & LeCun 2013): golden vectors, the float64 reference, finite-difference
curvature, the noisy-quadratic behaviour, edge cases, bad input and the Flax NNX example."""

from __future__ import annotations

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnml_optax as nn

from references import vsgd as ref

TINY = 1e-300  # eps must be > 0; this one does not change any float64 value below


def _run_golden(tx, *, alias: bool):
  """Feeds the golden samples (2 init calls + 3 steps) to ``tx`` in float64; returns the state of
  :func:`scale_by_vsgd` and θ after each call."""
  g = [1.0, 3.0, 2.0, 1.0, 2.5]
  h = [2.0, 2.0, 2.0, 2.0, 2.0]
  rows = []
  with jax.enable_x64(True):
    theta = jnp.zeros(1, jnp.float64)
    state = tx.init(theta)
    for gi, hi in zip(g, h, strict=True):
      u, state = tx.update(
        jnp.asarray([gi], jnp.float64), state, theta, curvature=jnp.asarray([hi], jnp.float64)
      )
      theta = theta + u if alias else theta - u
      s = state[0] if alias else state
      rows.append(
        {k: float(getattr(s, k)[0]) for k in ("gbar", "vbar", "hbar", "vhbar", "tau")}
        | {"theta": float(theta[0]), "eta": float(jnp.abs(u[0]) / gi)}
      )
  return rows


VSGD_GOLDEN = [  # step: gbar, vbar, hbar, eta, tau, theta
  (2.0, 7.0, 3.0, 0.1904761905, 1.857142857, -0.380952381),
  (1.461538462, 3.769230769, 2.461538462, 0.2302295918, 1.804664723, -0.6111819728),
  (2.036970299, 5.143873493, 2.205790978, 0.3656914094, 1.348952116, -1.525410496),
]


@pytest.mark.parametrize("outlier_threshold", [None, 2.0], ids=["plain", "outliers"])
@pytest.mark.parametrize("alias", [False, True], ids=["scale_by", "alias"])
def test_golden(alias, outlier_threshold):
  kw = dict(c=2.0, n0=2, eps=TINY, outlier_threshold=outlier_threshold)
  tx = nn.vsgd(**kw) if alias else nn.scale_by_vsgd(**kw)
  rows = _run_golden(tx, alias=alias)
  # the two slow-start calls: zero updates, then gbar = 2, vbar = 2*5, hbar = 2*2, tau = n0
  assert rows[0]["theta"] == 0.0 and rows[1]["theta"] == 0.0
  np.testing.assert_allclose(
    [rows[1][k] for k in ("gbar", "vbar", "hbar", "tau")], [2.0, 10.0, 4.0, 2.0], rtol=0, atol=0
  )
  for row, want in zip(rows[2:], VSGD_GOLDEN, strict=True):
    got = [row[k] for k in ("gbar", "vbar", "hbar", "eta", "tau", "theta")]
    np.testing.assert_allclose(got, want, rtol=2e-9)  # the table has 10 significant digits
  # and the float64 reference loop to round-off
  want = ref.vsgd_l(0.0, [1, 3, 2, 1, 2.5], [2] * 5, 2.0, 2)
  for row, w in zip(rows, want, strict=True):
    for k in ("gbar", "vbar", "hbar", "vhbar", "tau", "theta"):
      np.testing.assert_allclose(row[k], w[k], rtol=1e-15, atol=0)


def test_golden_reference_matches_table():
  got = ref.vsgd_l(0.0, [1, 3, 2, 1, 2.5], [2] * 5, 2.0, 2)[2:]
  for row, want in zip(got, VSGD_GOLDEN, strict=True):
    np.testing.assert_allclose(
      [row[k] for k in ("gbar", "vbar", "hbar", "eta", "tau", "theta")], want, rtol=2e-9
    )


# ------------------------------------------------------------------------------------------------
# against the float64 reference: random sequences (fixed shapes: compiled once)
# ------------------------------------------------------------------------------------------------

STEPS, WIDTH = 9, 4


def _scan(tx, g_seq, h_seq):
  theta0 = jnp.zeros(WIDTH, g_seq.dtype)

  def body(carry, gh):
    theta, state = carry
    u, state = tx.update(gh[0], state, theta, curvature=gh[1])
    theta = theta - u
    return (theta, state), (theta, state.tau)

  _, out = jax.lax.scan(body, (theta0, tx.init(theta0)), (g_seq, h_seq))
  return out


_CASES = {}


def _compiled(n0, c, robust, k):
  key = (n0, c, robust, k)
  if key not in _CASES:
    tx = nn.scale_by_vsgd(c=c, n0=n0, eps=1e-12, robust=robust, outlier_threshold=k)
    _CASES[key] = jax.jit(lambda g, h: _scan(tx, g, h))
  return _CASES[key]


@hypothesis.given(
  g=st.lists(st.floats(-10, 10), min_size=STEPS * WIDTH, max_size=STEPS * WIDTH),
  h=st.lists(st.floats(0.01, 100), min_size=STEPS * WIDTH, max_size=STEPS * WIDTH),
  n0=st.sampled_from([2, 3]),  # n0 = 1 starts at tau = 1, the ill-conditioned corner (above)
  robust=st.booleans(),
)
def test_matches_reference(g, h, n0, robust):
  g = np.asarray(g).reshape(STEPS, WIDTH)
  h = np.asarray(h).reshape(STEPS, WIDTH)
  with jax.enable_x64(True):
    thetas, taus = _compiled(n0, 2.0, robust, None)(jnp.asarray(g), jnp.asarray(h))
    thetas, taus = np.asarray(thetas), np.asarray(taus)
  # Not to the last ulp: where r = gbar²/vbar is within ~1e-12 of 1 (tau ~ 1), 1 - r and
  # tau - 1 cancel, and a one-ulp difference in r (operation order inside XLA) becomes a 1e-4
  # relative difference in 1 - r and ~1e-8 downstream. A wrong formula is off by O(1).
  for i in range(WIDTH):
    want = ref.vsgd_l(0.0, g[:, i], h[:, i], 2.0, n0, eps=1e-12, robust=robust)
    np.testing.assert_allclose(thetas[:, i], [w["theta"] for w in want], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(taus[:, i], [w["tau"] for w in want], rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# finite-difference curvature (vSGD-fd)
# ------------------------------------------------------------------------------------------------


def test_fd_is_exact_on_a_quadratic():
  """Note: on f = ½hθ², h_fd = h for any δ ≠ 0, so after the slow start hbar = C·h and
  vhbar = C²·h² exactly."""
  with jax.enable_x64(True):
    h = jnp.asarray([0.5, 2.0, 7.0], jnp.float64)
    grad = jax.grad(lambda w: 0.5 * jnp.sum(jnp.asarray(h) * w**2))
    tx = nn.scale_by_vsgd(c=3.0, n0=2, eps=TINY)
    w = jnp.asarray([1.0, -2.0, 0.25], jnp.float64)
    state = tx.init(w)
    for _ in range(2):
      u, state = tx.update(grad(w), state, w, grad_fn=grad)
      assert np.all(np.asarray(u) == 0)
    np.testing.assert_allclose(state.hbar, 3.0 * h, rtol=1e-15)
    np.testing.assert_allclose(state.vhbar, 9.0 * h**2, rtol=1e-15)


@pytest.mark.parametrize("robust", [True, False])
def test_fd_matches_reference(robust):
  # non-quadratic: f = θ⁴/4 + θ², f' = θ³ + 2θ (the FD curvature depends on δ)
  def fp(t):
    return t**3 + 2 * t

  want = ref.vsgd_fd(1.5, fp, 12, 2.0, 3, eps=1e-12, robust=robust)
  with jax.enable_x64(True):
    tx = nn.vsgd(c=2.0, n0=3, eps=1e-12, robust=robust, outlier_threshold=None)
    w = jnp.asarray([1.5], jnp.float64)
    state = tx.init(w)
    got = []
    for _ in range(12):
      u, state = tx.update(fp(w), state, w, grad_fn=fp)
      w = optax.apply_updates(w, u)
      got.append(float(w[0]))
  np.testing.assert_allclose(got, want, rtol=1e-13)


def test_fd_uses_the_realised_perturbation_in_low_precision():
  """In bfloat16, θ + δ rounds; h is |Δg| over the δ actually applied, so a linear gradient still
  gives its exact slope."""
  grad = lambda w: 4.0 * w  # noqa: E731
  tx = nn.scale_by_vsgd(c=1.0, n0=1)
  w = jnp.asarray([1.0, 3.0, 100.0], jnp.bfloat16)
  state = tx.init(w)
  _, state = tx.update(grad(w), state, w, grad_fn=grad)
  assert state.hbar.dtype == jnp.float32
  np.testing.assert_allclose(state.hbar, 4.0, rtol=1e-2)


# ------------------------------------------------------------------------------------------------
# behaviour on a separable noisy quadratic
# ------------------------------------------------------------------------------------------------

D = 50
H = jnp.logspace(-1.0, 1.0, D)  # curvatures 0.1 .. 10 (two orders of magnitude)
SIGMA = 1.0  # additive gradient noise


def _noisy_run(tx, key, steps=2000, fd=True):
  theta0 = 3.0 * jnp.ones(D)

  def body(carry, k):
    theta, state = carry
    xi = SIGMA * jax.random.normal(k, (D,))

    def grad_fn(t):  # the same mini-batch: the same noise sample
      return H * t + xi

    kw = {"grad_fn": grad_fn} if fd else {}
    u, state = tx.update(grad_fn(theta), state, theta, **kw)
    theta = optax.apply_updates(theta, u)
    return (theta, state), 0.5 * jnp.sum(H * theta**2)

  _, losses = jax.lax.scan(body, (theta0, tx.init(theta0)), jax.random.split(key, steps))
  return jnp.mean(losses[-100:])


def test_noisy_quadratic_untuned_vsgd_vs_tuned_sgd():
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  # one compilation per method: sgd's rate is an argument of its jitted run, not a constant
  sgd_run = jax.jit(lambda lr, k: _noisy_run(optax.sgd(lr), k, fd=False))
  vsgd_run = jax.jit(lambda k: _noisy_run(nn.vsgd(), k))  # defaults: no tuning
  lrs = (0.003, 0.01, 0.02, 0.03, 0.1, 0.15)
  sgd = {lr: float(np.mean([sgd_run(jnp.float32(lr), k) for k in keys])) for lr in lrs}
  vsgd = float(np.mean([vsgd_run(k) for k in keys]))
  best = min(sgd.values())
  assert np.isfinite(vsgd) and vsgd <= 1.5 * best, (vsgd, sgd)


def test_stationary_rate_approaches_optimal():
  """With a stationary gradient distribution (θ held fixed: E[g] = hθ, E[g²] = h²θ² + σ²) the
  rate approaches η* = (1/h)·E[g]²/E[g²]."""
  theta = 0.3 * jnp.ones(D)
  eta_star = np.asarray((1 / H) * (H * theta) ** 2 / ((H * theta) ** 2 + SIGMA**2))
  tx = nn.scale_by_vsgd()

  def body(state, k):
    xi = SIGMA * jax.random.normal(k, (D,))
    grad_fn = lambda t: H * t + xi  # noqa: E731
    u, state = tx.update(grad_fn(theta), state, theta, grad_fn=grad_fn)
    return state, u / grad_fn(theta)  # the rate η actually applied

  _, etas = jax.jit(lambda k: jax.lax.scan(body, tx.init(theta), jax.random.split(k, 3000)))(
    jax.random.PRNGKey(1)
  )
  ratio = np.mean(np.asarray(etas[-1000:]), axis=0) / eta_star
  assert 0.7 < np.median(ratio) < 1.3, ratio
  signal = np.asarray(H) * eta_star > 0.3  # dimensions where the gradient is mostly signal
  assert signal.sum() >= 10
  assert np.all((ratio[signal] > 0.7) & (ratio[signal] < 1.3)), ratio[signal]


# ------------------------------------------------------------------------------------------------
# edge cases
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["grad_fn", "curvature"])
def test_zero_gradients_and_first_step_are_finite(source):
  params = {"a": jnp.zeros((3, 2)), "b": jnp.ones(4)}
  zero = jax.tree.map(jnp.zeros_like, params)
  kw = {"grad_fn": lambda p: zero} if source == "grad_fn" else {"curvature": zero}
  tx = nn.vsgd(n0=2)
  state = tx.init(params)
  for _ in range(6):
    u, state = tx.update(zero, state, params, **kw)
    for x in jax.tree.leaves(u):
      assert bool(jnp.all(x == 0))
    for x in jax.tree.leaves(state):
      assert bool(jnp.all(jnp.isfinite(x)))
  # and the very first update with a real gradient is zero (slow start), then finite
  g = jax.tree.map(jnp.ones_like, params)
  tx = nn.vsgd(n0=1)
  state = tx.init(params)
  u, state = tx.update(g, state, params, curvature=g)
  assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u))
  u, state = tx.update(g, state, params, curvature=g)
  assert all(bool(jnp.all(jnp.isfinite(x) & (x != 0))) for x in jax.tree.leaves(u))


def test_state_is_compact_and_float32_for_bf16():
  params = {"w": jnp.zeros((64, 32), jnp.bfloat16), "b": jnp.zeros(32, jnp.float32)}
  state = nn.scale_by_vsgd().init(params)
  n = sum(x.size for x in jax.tree.leaves(params))
  per_param = sum(x.nbytes for x in jax.tree.leaves(state) if x.ndim) / n
  assert per_param <= 20
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state) if x.ndim)
  assert state.count.dtype == jnp.int32
  u, _ = nn.vsgd().update(params, nn.vsgd().init(params), params, curvature=params)
  assert u["w"].dtype == jnp.bfloat16


def test_traced_negative_curvature_is_taken_in_absolute_value():
  w = jnp.ones(3)
  tx = nn.scale_by_vsgd(n0=1)
  h = jnp.asarray([-2.0, 3.0, -0.5])
  step = jax.jit(lambda s, c: tx.update(w, s, w, curvature=c))
  _, s_neg = step(tx.init(w), h)
  _, s_abs = step(tx.init(w), jnp.abs(h))
  np.testing.assert_array_equal(s_neg.hbar, s_abs.hbar)


def test_masked_with_full_tree_curvature():
  """optax.masked passes extra args unmasked: a full-tree curvature is matched by key path."""
  params = {"a": jnp.ones(3), "b": 2.0 * jnp.ones(2)}
  curv = {"a": jnp.full(3, 2.0), "b": jnp.full(2, 5.0)}
  tx = optax.masked(nn.vsgd(n0=1), {"a": True, "b": False})
  state = tx.init(params)
  for _ in range(2):
    u, state = tx.update(params, state, params, curvature=curv)
  np.testing.assert_array_equal(u["b"], params["b"])  # passed through
  # n0=1, tau=1 afterwards: averages = this sample, r = 1, eta = 1/h = 1/2
  np.testing.assert_allclose(u["a"], -0.5 * params["a"], rtol=1e-6)


def test_grad_fn_through_jit_as_partial():
  """A bare function cannot be a jit argument; ``jax.tree_util.Partial`` can."""
  f = lambda w: 3.0 * w  # noqa: E731
  tx = nn.vsgd(n0=1)
  w = jnp.ones(2)
  update = jax.jit(tx.update)
  _, s = update(f(w), tx.init(w), w, grad_fn=jax.tree_util.Partial(f))
  np.testing.assert_allclose(s[0].hbar, 2.0 * 3.0, rtol=1e-6)  # C·h at the n0-th call


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("kwargs", "name"),
  [
    (dict(c=0.5), "c"),
    (dict(c=-1.0), "c"),
    (dict(n0=0), "n0"),
    (dict(eps=0.0), "eps"),
    (dict(eps=-1e-8), "eps"),
    (dict(outlier_threshold=0.0), "outlier_threshold"),
    (dict(c=lambda t: 0.5), "c"),
  ],
)
def test_bad_hyperparameters(kwargs, name):
  for factory in (nn.scale_by_vsgd, nn.vsgd):
    with pytest.raises(ValueError, match=name):
      factory(**kwargs)


def test_bad_types():
  with pytest.raises(TypeError, match="n0"):
    nn.scale_by_vsgd(n0=2.5)
  with pytest.raises(TypeError, match="robust"):
    nn.scale_by_vsgd(robust=1)
  with pytest.raises(ValueError, match="learning_rate"):
    nn.vsgd(learning_rate=-1.0)


def test_bad_extra_args():
  w = jnp.ones(3)
  tx = nn.vsgd()
  state = tx.init(w)
  with pytest.raises(ValueError, match=r"grad_fn.*curvature"):
    tx.update(w, state, w)
  with pytest.raises(ValueError, match="only one"):
    tx.update(w, state, w, grad_fn=lambda p: p, curvature=w)
  with pytest.raises(ValueError, match="curvature must be a non-negative"):
    tx.update(w, state, w, curvature=jnp.asarray([1.0, -1.0, 2.0]))
  with pytest.raises(ValueError, match="params"):
    tx.update(w, state, None, grad_fn=lambda p: p)
  with pytest.raises(ValueError, match="curvature must have the structure"):
    tx.update({"a": w}, tx.init({"a": w}), {"a": w}, curvature={"b": w})
  with pytest.raises(TypeError, match="real"):
    nn.scale_by_vsgd().init(jnp.ones(2, jnp.complex64))


def test_unknown_extra_args_ignored():
  w = jnp.ones(3)
  tx = nn.vsgd(n0=1)
  a, _ = tx.update(w, tx.init(w), w, curvature=w, value=1.0, something=2)
  b, _ = tx.update(w, tx.init(w), w, curvature=w)
  np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------------
# the Flax NNX example
# ------------------------------------------------------------------------------------------------


def test_nnx_example_runs():
  pytest.importorskip("flax")
  import importlib.util
  import pathlib

  path = pathlib.Path(__file__).parents[1] / "examples" / "vsgd_nnx.py"
  spec = importlib.util.spec_from_file_location("vsgd_nnx", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  losses = module.main(steps=100, seed=0)
  assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0], losses
