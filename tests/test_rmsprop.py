"""rmsprop (lecture 6e; docs/lecture.md; torch, Keras and TF1 conventions): golden vectors, oracles, numerical
safety, complex parameters, composition, bad input."""

from __future__ import annotations

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.example_libraries import optimizers as jopt

import nnml_optax as nn

from references import rmsprop as ref


def _run(tx, theta0, grads=None, grad_fn=None, steps=None, dtype=jnp.float64):
  """Iterates of ``tx`` from ``theta0`` (float64 by default), fed a gradient list or function."""
  with jax.enable_x64(True):
    theta = jnp.asarray([theta0], dtype)
    state = tx.init(theta)
    out = []
    n = len(grads) if grads is not None else steps
    for t in range(n):
      g = jnp.asarray([grads[t]], dtype) if grads is not None else grad_fn(theta)
      u, state = tx.update(g, state, theta)
      theta = optax.apply_updates(theta, u)
      out.append(complex(theta[0]) if jnp.iscomplexobj(theta) else float(theta[0]))
    return out


G = [1.0, -2.0, 0.5, 0.0]
LR = 0.01

# Golden vectors: theta after each step (theta_0 = 1, lr = 0.01, decay 0.9 unless stated); every row.
GOLDEN = {
  "torch": (
    dict(convention="torch"),
    dict(eps_in_sqrt=False),
    [0.9683772244, 0.9969486526, 0.9896241685, 0.9896241685],
  ),
  "optax_eps_outside": (
    dict(eps_in_sqrt=False),
    dict(eps_in_sqrt=False),
    [0.9683772244, 0.9969486526, 0.9896241685, 0.9896241685],
  ),
  "default_eps_inside": (dict(), dict(), [0.968377225, 0.9969486533, 0.9896241691, 0.9896241691]),
  "torch_eps_0.1": (
    dict(eps=0.1, convention="torch"),
    dict(eps=0.1, eps_in_sqrt=False),
    [0.9759746927, 1.000974693, 0.994586075, 0.994586075],
  ),
  "eps_0.1_inside": (
    dict(eps=0.1),
    dict(eps=0.1),
    [0.9776393202, 1.003677102, 0.9970310802, 0.9970310802],
  ),
  "keras": (
    dict(eps=1e-7, convention="keras"),
    dict(eps=1e-7),
    [0.9683772392, 0.9969486649, 0.9896241815, 0.9896241815],
  ),
  "initial_scale_1": (
    dict(initial_scale=1.0),
    dict(initial_scale=1.0),
    [0.99, 1.00754116, 1.002967267, 1.002967267],
  ),
  "tf1": (
    dict(convention="tf1"),
    dict(initial_scale=1.0),
    [0.99, 1.00754116, 1.002967267, 1.002967267],
  ),
  # optax bias_correction=True has no flag here: it is lr·sqrt(1−ρ^t) with eps·(1−ρ^t), as
  # schedules (n/(1−ρ^t) + eps = (n + eps(1−ρ^t))/(1−ρ^t)); see test_bias_correction_by_schedules.
  "torch_defaults": (
    dict(decay=0.99, convention="torch"),
    dict(decay=0.99, eps_in_sqrt=False),
    [0.90000001, 0.9895323022, 0.9675849505, 0.9675849505],
  ),
}


@pytest.mark.parametrize("row", list(GOLDEN))
def test_golden(row):
  kwargs, ref_kwargs, want = GOLDEN[row]
  got = _run(nn.rmsprop(LR, **kwargs), 1.0, G)
  np.testing.assert_allclose(got, want, rtol=0, atol=6e-10)  # given to 10 digits
  np.testing.assert_allclose(ref.rmsprop(1.0, G, LR, **ref_kwargs), want, rtol=0, atol=6e-10)
  np.testing.assert_allclose(got, ref.rmsprop(1.0, G, LR, **ref_kwargs), rtol=1e-14, atol=1e-15)
  assert got[3] == got[2]  # g_4 = 0 gives a zero step


def test_bias_correction_by_schedules():
  """Golden row "optax bias_correction=True": decay/eps/lr schedules express the correction."""
  rho = 0.9
  lr = lambda t: LR * jnp.sqrt(1.0 - rho ** (t + 1.0))  # noqa: E731
  eps = lambda t: 1e-8 * (1.0 - rho ** (t + 1.0))  # noqa: E731
  with jax.enable_x64(True):
    got = _run(nn.rmsprop(lr, rho, eps), 1.0, G)
  want = [0.99, 1.002453997, 0.9986410419, 0.9986410419]
  np.testing.assert_allclose(got, want, rtol=0, atol=6e-10)
  np.testing.assert_allclose(ref.rmsprop(1.0, G, LR, bias_correction=True), want, atol=6e-10)


GOLDEN_MOMENTUM = {
  "centered_momentum": (
    dict(momentum=0.9, centered=True, convention="torch"),
    dict(momentum=0.9, centered=True, eps_in_sqrt=False, lr_inside=False),
    [0.9666666678, 0.9655975375, 0.9572918937, 0.9498168143],
  ),
  "centered_momentum_optax_form": (
    dict(momentum=0.9, centered=True, eps_in_sqrt=False),
    dict(momentum=0.9, centered=True, eps_in_sqrt=False),
    [0.9666666678, 0.9655975375, 0.9572918937, 0.9498168143],
  ),
  "momentum": (
    dict(momentum=0.9, convention="torch"),
    dict(momentum=0.9, eps_in_sqrt=False, lr_inside=False),
    [0.9683772244, 0.9684881545, 0.9612635075, 0.9547613253],
  ),
  "momentum_optax_form": (
    dict(momentum=0.9, eps_in_sqrt=False),
    dict(momentum=0.9, eps_in_sqrt=False),
    [0.9683772244, 0.9684881545, 0.9612635075, 0.9547613253],
  ),
  "nesterov_eps_inside": (
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True),
    [0.9399167275, 0.9685879934, 0.9547613275, 0.9489093639],
  ),
}


@pytest.mark.parametrize("row", list(GOLDEN_MOMENTUM))
def test_golden_momentum(row):
  kwargs, ref_kwargs, want = GOLDEN_MOMENTUM[row]
  got = _run(nn.rmsprop(LR, **kwargs), 1.0, G)
  np.testing.assert_allclose(got, want, rtol=0, atol=6e-10)
  np.testing.assert_allclose(ref.rmsprop(1.0, G, LR, **ref_kwargs), want, rtol=0, atol=6e-10)
  np.testing.assert_allclose(got, ref.rmsprop(1.0, G, LR, **ref_kwargs), rtol=1e-13, atol=1e-15)


def test_nesterov_rmsprop_divides_the_correction_only():
  """Nesterov-rmsprop (slide 6e-05) on f = θ², lr 0.01, μ = 0.9, decay 0.9, eps 1e-8 in the sqrt."""
  want = [0.9399167252, 0.8720146506, 0.7968682373, 0.7165739609, 0.6330976545]
  got = _run(nn.rmsprop(0.01, momentum=0.9, nesterov=True), 1.0, grad_fn=lambda x: 2 * x, steps=5)
  np.testing.assert_allclose(got, want, rtol=0, atol=6e-10)
  # Sutskever's form of the slide's sentence: its look-ahead points are the iterates above.
  sut = ref.nesterov_rmsprop_sutskever(1.0, lambda x: 2 * x, 0.01, 0.9, steps=5)
  np.testing.assert_allclose([s[1] for s in sut], got, rtol=1e-13)
  with jax.enable_x64(True):
    opt = optax.rmsprop(0.01, decay=0.9, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(_run(opt, 1.0, grad_fn=lambda x: 2 * x, steps=5), got, rtol=1e-15)


def test_torch_minibatch_example():
  """torch RMSprop(lr=0.01, alpha=0.9) on nine 0.1 gradients then -0.9, from 0."""
  got = _run(nn.rmsprop(0.01, 0.9, convention="torch"), 0.0, [0.1] * 9 + [-0.9])
  np.testing.assert_allclose(got[-2:], [-0.1609340611, -0.1303354814], atol=6e-10)


@pytest.mark.parametrize("decay", [0.9, 0.99, 0.5])
@pytest.mark.parametrize("g", [1e-3, -2.0, 250.0])
def test_first_step_magnitude(decay, g):
  """With n_0 = 0 and eps = 0 the first step is lr/sqrt(1 − decay) whatever |g| (lecture 6e)."""
  for kw in (dict(), dict(convention="torch"), dict(momentum=0.9), dict(convention="keras")):
    (theta,) = _run(nn.rmsprop(0.01, decay, 0.0, **kw), 0.0, [g])
    np.testing.assert_allclose(theta, -np.sign(g) * 0.01 / np.sqrt(1 - decay), rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# oracles: optax.rmsprop, jax.example_libraries.optimizers, torch (recorded numbers)
# ---------------------------------------------------------------------------------------------


def _pytree_run(tx, params, steps=6, jit=True):
  state = tx.init(params)
  update = jax.jit(tx.update) if jit else tx.update
  outs = []
  for i in range(steps):
    g = jax.tree.map(lambda p: jnp.sin((i + 1.0) * p) - 0.3 * p, params)
    u, state = update(g, state, params)
    params = optax.apply_updates(params, u)
    outs.append(u)
  return outs, params


def _params(dtype=jnp.float32):
  rng = np.random.default_rng(1)
  return {
    "a": jnp.asarray(rng.normal(size=(5, 3)), dtype),
    "b": jnp.asarray(rng.normal(size=4), dtype),
  }


@pytest.mark.parametrize(
  "kw",
  [
    dict(),
    dict(eps_in_sqrt=False),
    dict(initial_scale=1.0),
    dict(decay=0.99, eps=0.1),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, eps_in_sqrt=False),
  ],
  ids=[
    "default",
    "eps_outside",
    "initial_scale",
    "decay_eps",
    "momentum",
    "nesterov",
    "momentum_eps_outside",
  ],
)
def test_equals_optax_rmsprop_bitwise_f32(kw):
  ours, _ = _pytree_run(nn.rmsprop(0.01, **kw), _params())
  theirs, _ = _pytree_run(optax.rmsprop(0.01, **kw), _params())
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
  "kw",
  [dict(centered=True), dict(centered=True, eps_in_sqrt=False, momentum=0.9)],
  ids=["centered", "centered_momentum"],
)
def test_equals_optax_rmsprop_centered(kw):
  """Centered: the variance is kept directly (no cancellation), so equal up to rounding."""
  ours, _ = _pytree_run(nn.rmsprop(0.01, **kw), _params())
  theirs, _ = _pytree_run(optax.rmsprop(0.01, **kw), _params())
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-7)
  with jax.enable_x64(True):
    ours, _ = _pytree_run(nn.rmsprop(0.01, **kw), _params(jnp.float64))
    theirs, _ = _pytree_run(optax.rmsprop(0.01, **kw), _params(jnp.float64))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)


def test_scale_by_rms_equals_optax_direction():
  for kw in (dict(), dict(eps_in_sqrt=False, decay=0.99)):
    ours, _ = _pytree_run(nn.scale_by_rms(**kw), _params())
    theirs, _ = _pytree_run(optax.scale_by_rms(**kw), _params())
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _jopt_run(opt, g_seq, theta0=1.0):
  init, update, get_params = opt
  with jax.enable_x64(True):
    state = init(jnp.asarray([theta0], jnp.float64))
    out = []
    for i, g in enumerate(g_seq):
      state = update(i, jnp.asarray([g], jnp.float64), state)
      out.append(float(get_params(state)[0]))
  return out


G6 = [1.0, -2.0, 0.5, 0.0, 3.0, -0.25]


@pytest.mark.parametrize("schedule", [False, True], ids=["constant_lr", "lr_schedule"])
def test_equals_jax_example_libraries(schedule):
  """``jax.example_libraries.optimizers.rmsprop``/``rmsprop_momentum`` are the lecture's rule with
  eps inside the sqrt and the learning rate inside the velocity, also for a scheduled rate."""
  lr = (lambda i: 0.01 * 0.7**i) if schedule else 0.01
  got = _run(nn.rmsprop(lr, 0.9, 1e-8), 1.0, G6)
  np.testing.assert_allclose(got, _jopt_run(jopt.rmsprop(lr, gamma=0.9, eps=1e-8), G6), rtol=1e-14)
  got = _run(nn.rmsprop(lr, 0.9, 1e-8, momentum=0.9), 1.0, G6)
  want = _jopt_run(jopt.rmsprop_momentum(lr, gamma=0.9, eps=1e-8, momentum=0.9), G6)
  np.testing.assert_allclose(got, want, rtol=1e-14)
  # keras and tf1 put the learning rate in the same place
  got = _run(nn.rmsprop(lr, 0.9, 1e-8, momentum=0.9, convention="keras"), 1.0, G6)
  np.testing.assert_allclose(got, want, rtol=1e-14)


# torch 2.13.0 (float64): RMSprop(lr=0.01, alpha=0.9, momentum=0.9[, centered]) with
# LambdaLR(lambda t: 0.5**t), g = [1, -2, 0.5, 0, 1], theta_0 = 1 (torch scales the buffer by the
# current rate).
TORCH_SCHEDULED = {
  False: [
    0.9683772243983162,
    0.9684326894591911,
    0.9666265277155681,
    0.9658137549309378,
    0.9645435010484612,
  ],
  True: [
    0.9666666677777778,
    0.9661321026219538,
    0.9640556916755253,
    0.9631213067496325,
    0.9617928623238974,
  ],
}


@pytest.mark.parametrize("centered", [False, True])
def test_torch_convention_with_lr_schedule(centered):
  g = [1.0, -2.0, 0.5, 0.0, 1.0]
  lr = lambda t: 0.01 * 0.5**t  # noqa: E731
  got = _run(nn.rmsprop(lr, 0.9, momentum=0.9, centered=centered, convention="torch"), 1.0, g)
  np.testing.assert_allclose(got, TORCH_SCHEDULED[centered], rtol=1e-14)
  want = ref.rmsprop(
    1.0, g, lr, momentum=0.9, centered=centered, eps_in_sqrt=False, lr_inside=False
  )
  np.testing.assert_allclose(got, want, rtol=1e-14)
  # the lecture's placement differs once the rate changes (and only then)
  lecture = _run(nn.rmsprop(lr, 0.9, momentum=0.9, centered=centered, eps_in_sqrt=False), 1.0, g)
  assert lecture[0] == pytest.approx(got[0], rel=1e-15)
  assert abs(lecture[2] - got[2]) > 1e-4


# ---------------------------------------------------------------------------------------------
# properties against the float64 reference (fixed shapes, hyperparameters traced: one compile
# per structural configuration)
# ---------------------------------------------------------------------------------------------

CONFIGS = [
  dict(),
  dict(eps_in_sqrt=False),
  dict(centered=True),
  dict(centered=True, eps_in_sqrt=False),
  dict(momentum=True),
  dict(momentum=True, nesterov=True),
  dict(momentum=True, centered=True),
  dict(momentum=True, convention="torch"),
  dict(momentum=True, centered=True, convention="torch"),
  dict(convention="tf1"),
]


@functools.partial(jax.jit, static_argnums=0)
def _traced_run(cfg_index, grads, lr, decay, eps, mu):
  cfg = dict(CONFIGS[cfg_index])
  tx = nn.rmsprop(lr, decay, eps, **{**cfg, "momentum": mu if cfg.get("momentum") else None})
  theta = jnp.zeros(grads.shape[1:], grads.dtype)

  def body(carry, g):
    theta, state = carry
    u, state = tx.update(g, state, theta)
    theta = theta + u
    return (theta, state), theta

  _, thetas = jax.lax.scan(body, (theta, tx.init(theta)), grads)
  return thetas


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  cfg_index=st.integers(0, len(CONFIGS) - 1),
  # |g| < 1e-100 would square into float64 subnormals, which XLA flushes to zero (numpy does
  # not): with eps = 0 that is a documented zero step, not a disagreement worth fuzzing
  grads=st.lists(
    st.floats(-1e3, 1e3).map(lambda x: 0.0 if abs(x) < 1e-100 else x), min_size=12, max_size=12
  ),
  lr=st.floats(1e-4, 1.0),
  # decay 1e-138 with eps = 0 is a genuinely ill-posed centered case (variance d(1-d)g² of one
  # sample) where the naive reference's n − m² cancels to 0 and ours is exact: keep d >= 1e-3
  decay=st.just(0.0) | st.floats(1e-3, 0.999),
  eps=st.sampled_from([0.0, 1e-8, 1e-3, 0.5]),
  mu=st.floats(0.0, 0.99),
)
def test_matches_reference(cfg_index, grads, lr, decay, eps, mu):
  cfg = CONFIGS[cfg_index]
  g = np.asarray(grads, np.float64).reshape(4, 3)
  with jax.enable_x64(True):
    got = np.asarray(_traced_run(cfg_index, jnp.asarray(g), lr, decay, eps, mu))
  conv = cfg.get("convention")
  want = np.asarray(
    ref.rmsprop(
      np.zeros(3),
      list(g),
      lr,
      decay,
      eps,
      eps_in_sqrt=cfg.get("eps_in_sqrt", conv != "torch"),
      centered=cfg.get("centered", False),
      initial_scale=1.0 if conv == "tf1" else 0.0,
      momentum=mu if cfg.get("momentum") else None,
      nesterov=cfg.get("nesterov", False),
      lr_inside=conv != "torch",
    )
  )
  assert np.all(np.isfinite(got))
  # centered with eps = 0: the reference's n − m² cancels, ours keeps the variance directly
  rtol = 1e-6 if cfg.get("centered") and eps == 0.0 else 1e-9
  np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-9 * lr)


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  grads=st.lists(st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3), min_size=6, max_size=6),
  scale=st.floats(1e-3, 1e3),
)
def test_scale_invariance(grads, scale):
  """With eps = 0, multiplying every gradient by c > 0 leaves every step unchanged."""
  g = np.asarray(grads).reshape(6, 1)
  with jax.enable_x64(True):
    a = np.asarray(_traced_run(0, jnp.asarray(g), 0.01, 0.9, 0.0, 0.0))
    b = np.asarray(_traced_run(0, jnp.asarray(g * scale), 0.01, 0.9, 0.0, 0.0))
  np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# numerical safety
# ---------------------------------------------------------------------------------------------

_TINY = {jnp.float32: 1e-30, jnp.bfloat16: 1e-30, jnp.float16: 6e-8}
_HUGE = {jnp.float32: 3e38, jnp.bfloat16: 3e38, jnp.float16: 6.5e4}


@pytest.mark.parametrize(
  "dtype", [jnp.float32, jnp.bfloat16, jnp.float16], ids=["f32", "bf16", "f16"]
)
@pytest.mark.parametrize("size", ["zero", "tiny", "huge"])
@pytest.mark.parametrize("eps_in_sqrt", [True, False], ids=["eps_inside", "eps_outside"])
@pytest.mark.parametrize("eps", [1e-8, 0.0])
def test_no_nan_or_inf(dtype, size, eps_in_sqrt, eps):
  mag = {"zero": 0.0, "tiny": _TINY[dtype], "huge": _HUGE[dtype]}[size]
  params = {"w": jnp.zeros((4,), dtype)}
  grads = [jnp.asarray([mag, -mag, mag, 0.0], dtype)] * 3 + [jnp.asarray([1.0, -1, 0, 0.5], dtype)]
  txs = [
    nn.scale_by_rms(0.9, eps, eps_in_sqrt=eps_in_sqrt),
    nn.scale_by_rms(0.9, eps, eps_in_sqrt=eps_in_sqrt, centered=True),
    nn.rmsprop(0.01, 0.9, eps, eps_in_sqrt=eps_in_sqrt, momentum=0.9),
    nn.rmsprop(0.01, 0.99, eps, eps_in_sqrt=eps_in_sqrt, centered=True, momentum=0.9),
  ]
  for tx in txs:
    state = tx.init(params)
    update = jax.jit(tx.update)
    for g in grads:
      u, state = update({"w": g}, state)
      assert u["w"].dtype == dtype
      assert bool(jnp.all(jnp.isfinite(u["w"]))), (size, u["w"])
      for leaf in jax.tree.leaves(state):
        assert bool(jnp.all(jnp.isfinite(leaf))), (size, state)
    if size == "zero":  # a zero gradient never moves a weight
      u, _ = update({"w": jnp.zeros((4,), dtype)}, tx.init(params))
      assert bool(jnp.all(u["w"] == 0))


@pytest.mark.parametrize(
  "eps", [1e-8, 1e-40, 1e-46, 0.0], ids=["1e-8", "subnormal", "underflows", "0"]
)
@pytest.mark.parametrize("eps_in_sqrt", [True, False], ids=["eps_inside", "eps_outside"])
def test_static_eps_drops_only_an_unneeded_guard(eps, eps_in_sqrt):
  """A plain positive ``eps`` leaves out the 0/0 guard (its denominator is positive): the same
  bits as with ``eps`` given as an array (guarded), zeros and subnormals included; an ``eps``
  below float32's smallest normal number (subnormal, or 0 in float32) keeps the guard, so 0/0 is
  still 0 also where subnormals are flushed to zero."""
  g = jnp.asarray([0.0, -0.0, 1e-45, -3e-39, 1e-20, 2.5, -7.0, 3e38], jnp.float32)

  def run(e):
    txs = [
      nn.scale_by_rms(0.9, e, eps_in_sqrt=eps_in_sqrt),
      nn.rmsprop(0.01, 0.9, e, eps_in_sqrt=eps_in_sqrt, centered=True, momentum=0.9),
      nn.rmsprop(0.01, 0.9, e, eps_in_sqrt=eps_in_sqrt, momentum=0.9, nesterov=True),
    ]
    out = []
    for tx in txs:
      state = tx.init(g)
      update = jax.jit(tx.update)
      for k in range(3):
        u, state = update(g * (k % 2), state)  # 0, g, 0: zero gradients on a zero and a live state
        out.append(u)
      texts = update.lower(g, state).as_text()
    return out, texts

  static, static_text = run(eps)
  dynamic, dynamic_text = run(jnp.asarray(eps, jnp.float32))
  for a, b in zip(static, dynamic, strict=True):
    np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))
    assert bool(jnp.all(jnp.isfinite(a)))

  # jnp.where lowers to a select, or to a call of a shared private function holding one
  def wheres(text):
    return text.count("select") + text.count("call @_where")

  guarded = wheres(static_text) == wheres(dynamic_text)
  assert guarded == (eps < np.finfo(np.float32).tiny)


def test_first_step_is_bounded_in_low_precision():
  """|g/RMS| <= 1/sqrt(1 − decay) on the first step, in every dtype (computed in float32)."""
  for dtype in (jnp.bfloat16, jnp.float16):
    g = jnp.asarray([1e-4, 3.0, -200.0, 0.5], dtype)
    u, _ = nn.scale_by_rms(0.9, 0.0).update(g, nn.scale_by_rms(0.9, 0.0).init(g))
    np.testing.assert_allclose(
      np.asarray(u, np.float32),
      np.sign(np.asarray(g, np.float32)) * np.float32(1 / np.sqrt(0.1)),
      rtol=1e-2,
    )


def test_centered_variance_has_no_cancellation():
  """A constant gradient g: n_t − m_t² = (1 − ρ^t)ρ^t g² shrinks far below n_t ≈ g². Kept
  directly, float32 gets it to 1e-4 even after 200 steps (8e-4 measured on an H100, whose fused
  multiply-adds round the mean differently); as n − m² it is lost to cancellation."""
  tx = nn.scale_by_rms(0.9, 1e-8, centered=True)
  naive = optax.scale_by_stddev(0.9, 1e-8)
  g = jnp.full((1,), 123.456, jnp.float32)
  state, nstate = tx.init(g), naive.init(g)
  update, nupdate = jax.jit(tx.update), jax.jit(naive.update)
  for _ in range(200):
    _, state = update(g, state)
    _, nstate = nupdate(g, nstate)
  exact = (1 - 0.9**200) * 0.9**200 * 123.456**2
  rtol = 1e-4 if jax.default_backend() == "cpu" else 2e-3
  np.testing.assert_allclose(float(state.variance[0]), exact, rtol=rtol)
  naive_var = float(nstate.nu[0]) - float(nstate.mu[0]) ** 2
  assert abs(naive_var - exact) > 10 * exact  # what the usual form computes in float32


# ---------------------------------------------------------------------------------------------
# complex parameters
# ---------------------------------------------------------------------------------------------


def test_complex_is_a_pair_sharing_one_mean_square():
  """A complex weight z = a + ib behaves like the real pair (a, b) whose mean square is that of
  the pair's norm |g|² = g_a² + g_b² (documented semantics): one statistic per complex weight."""
  rng = np.random.default_rng(3)
  gc = rng.normal(size=(6, 3)) + 1j * rng.normal(size=(6, 3))
  for kw in (
    dict(),
    dict(centered=True),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True),
    dict(convention="torch", momentum=0.9, centered=True),
  ):
    tx = nn.rmsprop(0.01, **kw)
    with jax.enable_x64(True):
      z = jnp.zeros(3, jnp.complex128)
      state = tx.init(z)
      assert state[0].mean_grad.dtype == jnp.complex128 if kw.get("centered") else True
      second = state[0].variance if kw.get("centered") else state[0].mean_square
      assert second.dtype == jnp.float64  # real statistic
      for g in gc:
        u, state = tx.update(jnp.asarray(g), state, z)
        z = z + u
    conv = kw.get("convention")
    # the pair: real and imaginary parts as two real weights sharing one mean square
    n, m, v = np.zeros(3), np.zeros(3, complex), np.zeros(3, complex)
    theta = np.zeros(3, complex)
    for g in gc:
      n = 0.9 * n + 0.1 * (g.real**2 + g.imag**2)
      if kw.get("centered"):
        m = 0.9 * m + 0.1 * g
        var = n - (m.real**2 + m.imag**2)
      else:
        var = n
      s = g / (np.sqrt(var) + 1e-8) if conv == "torch" else g / np.sqrt(var + 1e-8)
      if "momentum" not in kw:
        theta = theta - 0.01 * s
      elif conv == "torch":
        v = 0.9 * v + s
        theta = theta - 0.01 * v
      else:
        v = 0.9 * v - 0.01 * s
        theta = theta + (0.9 * v - 0.01 * s if kw.get("nesterov") else v)
    np.testing.assert_allclose(np.asarray(z), theta, rtol=1e-12)
    np.testing.assert_allclose(
      np.asarray(z),
      ref.rmsprop(
        np.zeros(3, complex),
        list(gc),
        0.01,
        eps_in_sqrt=conv != "torch",
        lr_inside=conv != "torch",
        **{k: v for k, v in kw.items() if k != "convention"},
      )[-1],
      rtol=1e-12,
    )


def test_complex_with_zero_imaginary_part_equals_real():
  g = [1.0, -2.0, 0.5, 3.0]
  real = _run(nn.rmsprop(0.01, momentum=0.9, centered=True), 1.0, g)
  cplx = _run(nn.rmsprop(0.01, momentum=0.9, centered=True), 1.0, g, dtype=jnp.complex128)
  np.testing.assert_array_equal(np.real(cplx), real)
  np.testing.assert_array_equal(np.imag(cplx), 0.0)


def test_complex_step_keeps_the_phase():
  """Rotating every gradient by e^{iφ} rotates every step by e^{iφ} (|g|² is phase-blind)."""
  rng = np.random.default_rng(4)
  gc = rng.normal(size=(5, 4)) + 1j * rng.normal(size=(5, 4))
  rot = np.exp(0.7j)
  with jax.enable_x64(True):
    tx = nn.scale_by_rms(0.9, 1e-8, centered=True)
    s1 = s2 = tx.init(jnp.zeros(4, jnp.complex128))
    for g in gc:
      u1, s1 = tx.update(jnp.asarray(g), s1)
      u2, s2 = tx.update(jnp.asarray(g * rot), s2)
      np.testing.assert_allclose(np.asarray(u2), rot * np.asarray(u1), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# composition, state layout, schedules, dtypes
# ---------------------------------------------------------------------------------------------


def _gains_stub(delta=0.05):
  """The slide's local gains (6d) as a minimal transform on whatever direction it is fed."""

  def init(params):
    return (jax.tree.map(jnp.ones_like, params), jax.tree.map(jnp.zeros_like, params))

  def update(updates, state, params=None):
    gains, prev = state
    gains = jax.tree.map(
      lambda G, u, p: jnp.where(u * p > 0, G + delta, G * (1 - delta)), gains, updates, prev
    )
    return jax.tree.map(lambda G, u: G * u, gains, updates), (gains, updates)

  return optax.GradientTransformation(init, update)


def test_composes_with_gains_and_learning_rate():
  """rmsprop with per-connection gains (slide 6e-05) = chain(scale_by_rms(), gains, lr)."""
  tx = optax.chain(nn.scale_by_rms(), _gains_stub(), optax.scale_by_learning_rate(0.01))
  g = [1.0, 1.0, -1.0]
  got = _run(tx, 0.0, g)
  s = ref.rmsprop(0.0, g, 1.0, eps=1e-8)  # theta = −Σ g/RMS with lr 1: recover each direction
  d = -np.diff([0.0, *s])
  gains, prev, want, theta = 1.0, 0.0, [], 0.0
  for di in d:
    gains = gains + 0.05 if di * prev > 0 else gains * 0.95
    prev = di
    theta -= 0.01 * gains * di
    want.append(theta)
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_composes_with_the_gains_transform():
  """The same chain with the package's own local gains (6d), once that module is present."""
  gains = getattr(nn, "scale_by_local_gains", None)
  if gains is None:
    pytest.skip("nnml_optax.scale_by_local_gains is not available")
  g = [1.0, 1.0, -1.0, 0.5, 0.5, 2.0]
  lr = optax.scale_by_learning_rate(0.01)
  got = _run(optax.chain(nn.scale_by_rms(), gains(), lr), 0.0, g)
  want = _run(optax.chain(nn.scale_by_rms(), _gains_stub(), lr), 0.0, g)
  np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize(
  "factory,nbytes",
  [
    (lambda: nn.scale_by_rms(), 4),
    (lambda: nn.scale_by_rms(centered=True), 8),
    (lambda: nn.rmsprop(0.1), 4),
    (lambda: nn.rmsprop(0.1, centered=True), 8),
    (lambda: nn.rmsprop(0.1, momentum=0.9), 8),
    (lambda: nn.rmsprop(0.1, centered=True, momentum=0.9), 12),
  ],
)
def test_state_bytes_per_parameter(factory, nbytes):
  params = {"w": jnp.zeros((100, 10)), "b": jnp.zeros(24)}
  state = factory().init(params)
  size = sum(x.size for x in jax.tree.leaves(params))
  total = sum(x.nbytes for x in jax.tree.leaves(state) if x.ndim > 0)
  assert total == nbytes * size
  # the scalars: step counts and the hyperparameters as last used (float32 scalars)
  assert all(x.dtype in (jnp.int32, jnp.float32) for x in jax.tree.leaves(state) if x.ndim == 0)


def test_state_fields_and_accumulator_dtype():
  p = {"w": jnp.zeros((3,), jnp.bfloat16), "z": jnp.zeros((2,), jnp.complex64)}
  s = nn.scale_by_rms(accumulator_dtype=jnp.float32).init(p)
  assert isinstance(s, nn.RmsState)
  assert s.mean_square["w"].dtype == jnp.float32 and s.mean_square["z"].dtype == jnp.float32
  rms, _, mom = nn.rmsprop(0.1, centered=True, momentum=0.9).init(p)
  assert isinstance(rms, nn.CenteredRmsState) and isinstance(mom, nn.ScaleByMomentumState)
  assert rms.variance["w"].dtype == jnp.bfloat16 and rms.variance["z"].dtype == jnp.float32
  assert rms.mean_grad["z"].dtype == jnp.complex64 and mom.velocity["z"].dtype == jnp.complex64
  assert isinstance(nn.scale_by_rms(centered=True).init(p), nn.CenteredRmsState)
  np.testing.assert_array_equal(
    optax.tree.get(nn.rmsprop(0.1, convention="tf1").init(p), "mean_square")["w"], np.ones(3)
  )


def test_rmsprop_is_a_chain_of_its_public_parts():
  """The lecture/Keras/TF1 form is chain(rms, lr, momentum), torch's chain(rms, momentum, lr)."""
  lr = optax.exponential_decay(0.01, 2, 0.5)
  rms = lambda: nn.scale_by_rms(0.9, 1e-8, eps_in_sqrt=False, centered=True)  # noqa: E731
  mom, step = lambda: nn.scale_by_momentum(0.9), lambda: optax.scale_by_learning_rate(lr)
  cases = [
    (nn.rmsprop(lr, eps_in_sqrt=False, centered=True, momentum=0.9), (rms(), step(), mom())),
    (nn.rmsprop(lr, centered=True, momentum=0.9, convention="torch"), (rms(), mom(), step())),
  ]
  for tx, parts in cases:
    a, _ = _pytree_run(tx, _params())
    b, _ = _pytree_run(optax.chain(*parts), _params())
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_deprecated_state_names_still_import():
  for old, new in [
    ("ScaleByRmsState", nn.RmsState),
    ("ScaleByCenteredRmsState", nn.CenteredRmsState),
  ]:
    with pytest.warns(DeprecationWarning, match=old):
      assert getattr(nn, old) is new
  for old in ("RmspropMomentumState", "CenteredRmspropMomentumState"):
    with pytest.warns(DeprecationWarning, match="migrate_0_1_state"):
      assert getattr(nn, old).__name__ == old
  with pytest.raises(AttributeError):
    nn.NoSuchState


# optax.rmsprop(learning_rate, decay, eps, initial_scale, eps_in_sqrt, centered, momentum,
# nesterov, bias_correction): each call works unchanged here and gives the same numbers.
OPTAX_RMSPROP_CALLS = {
  "lr": ((0.01,), {}),
  "decay_eps": ((0.01, 0.95, 1e-6), {}),
  "initial_scale": ((0.01, 0.9, 1e-8, 0.5), {}),
  "eps_outside": ((0.01, 0.9, 1e-8, 0.0, False), {}),
  "centered": ((0.01, 0.9, 1e-8, 0.0, True, True), {}),
  "momentum": ((0.01, 0.9, 1e-8, 0.0, True, False, 0.9), {}),
  "nesterov": ((0.01, 0.9, 1e-8, 0.0, True, False, 0.9, True), {}),
  "all_positional": ((0.01, 0.9, 1e-3, 0.0, False, False, 0.9, True, True), {}),
  "bias_correction": ((0.01,), dict(bias_correction=True)),
  "bias_correction_momentum": ((0.01,), dict(decay=0.99, momentum=0.9, bias_correction=True)),
  "keywords": (
    (),
    dict(
      learning_rate=optax.exponential_decay(0.01, 2, 0.5),
      decay=0.9,
      eps=1e-7,
      initial_scale=0.1,
      eps_in_sqrt=True,
      centered=True,
      momentum=0.5,
      nesterov=False,
      bias_correction=True,
    ),
  ),
}


def test_signature_is_optax_rmsprop_s():
  import inspect

  theirs = inspect.signature(optax.rmsprop).parameters
  ours = list(inspect.signature(nn.rmsprop).parameters.values())[: len(theirs)]
  assert [(p.name, p.kind) for p in ours] == [(p.name, p.kind) for p in theirs.values()]
  # None: the convention's value, which for convention=None is optax's default
  differ = {p.name for p in ours if p.default != theirs[p.name].default}
  assert differ == {"initial_scale", "eps_in_sqrt"}


@pytest.mark.parametrize("call", list(OPTAX_RMSPROP_CALLS))
def test_optax_rmsprop_calls_work_unchanged(call):
  args, kwargs = OPTAX_RMSPROP_CALLS[call]
  ours, _ = _pytree_run(nn.rmsprop(*args, **kwargs), _params())
  theirs, _ = _pytree_run(optax.rmsprop(*args, **kwargs), _params())
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-9)


def test_decay_and_eps_schedules_match_reference():
  decay = optax.linear_schedule(0.5, 0.95, transition_steps=4)
  eps = optax.exponential_decay(1e-2, transition_steps=1, decay_rate=0.1)
  g = [1.0, -2.0, 0.5, 0.1, 3.0, -1.0]
  with jax.enable_x64(True):
    tx = nn.scale_by_rms(decay, eps)
    state = tx.init(jnp.zeros(1))
    got = []
    for gi in g:
      u, state = tx.update(jnp.asarray([gi]), state)
      got.append(float(u[0]))
  n, want = 0.0, []
  for t, gi in enumerate(g):
    d, e = float(decay(t)), float(eps(t))
    n = d * n + (1 - d) * gi * gi
    want.append(gi / np.sqrt(n + e))
  np.testing.assert_allclose(got, want, rtol=1e-6)  # optax schedules compute in float32


def test_momentum_schedule_and_inject_hyperparams():
  mu = nn.schedules.momentum_ramp(0.5, 0.9, transition_steps=3)
  got = _run(nn.rmsprop(0.01, momentum=mu), 1.0, G6)
  want = ref.rmsprop(1.0, G6, 0.01, momentum=lambda t: float(mu(t)))
  np.testing.assert_allclose(got, want, rtol=1e-7)
  tx = optax.inject_hyperparams(nn.rmsprop)(learning_rate=0.01, momentum=0.9, nesterov=True)
  a, _ = _pytree_run(tx, _params())
  b, _ = _pytree_run(nn.rmsprop(0.01, momentum=0.9, nesterov=True), _params())
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    # inject_hyperparams hands decay over as a float32 array, so 1 − decay is rounded in float32
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)


def test_alias_types():
  assert isinstance(nn.rmsprop(0.1), optax.GradientTransformationExtraArgs)
  assert isinstance(nn.rmsprop(0.1, momentum=0.9), optax.GradientTransformationExtraArgs)
  assert isinstance(nn.scale_by_rms(), optax.GradientTransformation)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "call,match",
  [
    (lambda: nn.scale_by_rms(decay=-0.1), "decay"),
    (lambda: nn.scale_by_rms(decay=1.0), "decay"),
    (lambda: nn.rmsprop(0.1, decay=1.5), "decay"),
    (lambda: nn.rmsprop(0.1, decay=lambda t: 1.0), "decay"),
    (lambda: nn.scale_by_rms(eps=-1e-8), "eps"),
    (lambda: nn.rmsprop(0.1, eps=-1.0), "eps"),
    (lambda: nn.scale_by_rms(initial_scale=-1.0), "initial_scale"),
    (lambda: nn.rmsprop(0.1, initial_scale=-0.5), "initial_scale"),
    (lambda: nn.rmsprop(0.1, nesterov=True), "nesterov"),
    (lambda: nn.rmsprop(0.1, convention="pytorch"), "convention"),
    (lambda: nn.rmsprop(0.1, momentum=0.9, nesterov=True, convention="torch"), "nesterov"),
    (lambda: nn.rmsprop(0.1, convention="torch", eps_in_sqrt=True), "eps_in_sqrt"),
    (lambda: nn.rmsprop(0.1, convention="tf1", initial_scale=0.0), "initial_scale"),
    (lambda: nn.rmsprop(0.1, momentum=1.0), "momentum"),
    (lambda: nn.rmsprop(-0.1), "learning_rate"),
  ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_bad_types():
  with pytest.raises(TypeError, match="initial_scale"):
    nn.scale_by_rms(initial_scale=lambda t: 1.0)
  with pytest.raises(TypeError, match="centered"):
    nn.scale_by_rms(centered=1)
  with pytest.raises(TypeError, match="eps_in_sqrt"):
    nn.rmsprop(0.1, eps_in_sqrt="yes")
  # consistent explicit values are accepted
  nn.rmsprop(0.1, convention="torch", eps_in_sqrt=False)
  nn.rmsprop(0.1, convention="tf1", initial_scale=1.0)
