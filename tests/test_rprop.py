"""The Rprop family (lecture 6e): exact vectors, torch, properties.

torch numbers are recorded constants (torch 2.13.0 CPU, ``torch.optim.Rprop``); torch is never
imported here.
"""

from __future__ import annotations

import functools

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnml_optax as nn

from references import rprop as ref

VARIANTS = ("rprop-", "rprop+", "irprop-", "irprop+")


def _run(tx, w0, grads, values=None, *, dtype=jnp.float64):
  """Weights and step sizes after each step of ``tx`` (an rprop alias), fed a gradient list."""
  with jax.enable_x64(dtype in (jnp.float64, jnp.complex128)):
    w = jnp.asarray(w0, dtype)
    state = tx.init(w)
    ws, ds = [], []
    for t, g in enumerate(grads):
      kw = {} if values is None else {"value": jnp.asarray(values[t], jnp.finfo(dtype).dtype)}
      u, state = tx.update(jnp.asarray(g, dtype), state, w, **kw)
      w = optax.apply_updates(w, u)
      ws.append(np.asarray(w))
      ds.append(np.asarray(getattr(state[0], "step_sizes", np.nan)))
    return np.array(ws), np.array(ds)


# ---------------------------------------------------------------------------------------------
# golden vectors: all four variants, weights and step sizes (float64)
# ---------------------------------------------------------------------------------------------

RPROP_G = [1.0, 1.0, -1.0, -1.0, 1.0, 1.0]
RPROP_E = [5.0, 4.0, 4.5, 4.2, 4.1, 3.9]
RPROP_GOLDEN = {  # variant: (w after each step, Δ after each step)
  "rprop-": (
    [-0.1, -0.22, -0.16, -0.088, -0.124, -0.1672],
    [0.1, 0.12, 0.06, 0.072, 0.036, 0.0432],
  ),
  "rprop+": ([-0.1, -0.22, -0.10, -0.04, -0.10, -0.13], [0.1, 0.12, 0.06, 0.06, 0.03, 0.03]),
  "irprop-": ([-0.1, -0.22, -0.22, -0.16, -0.16, -0.19], [0.1, 0.12, 0.06, 0.06, 0.03, 0.03]),
  "irprop+": ([-0.1, -0.22, -0.10, -0.04, -0.04, -0.07], [0.1, 0.12, 0.06, 0.06, 0.03, 0.03]),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden(variant):
  values = RPROP_E if variant == "irprop+" else None
  grads = [[g] for g in RPROP_G]
  ws, ds = _run(nn.rprop(0.1, variant=variant), [0.0], grads, values)
  want_w, want_d = RPROP_GOLDEN[variant]
  np.testing.assert_allclose(ws[:, 0], want_w, rtol=0, atol=1e-15)
  np.testing.assert_allclose(ds[:, 0], want_d, rtol=0, atol=1e-15)
  # the float64 reference loop agrees bit for bit
  rw, rd = ref.rprop([0.0], grads, variant, lr=0.1, values=values)
  np.testing.assert_array_equal(ws, np.array(rw))
  np.testing.assert_array_equal(ds, np.array(rd))
  np.testing.assert_allclose(np.array(rw)[:, 0], want_w, rtol=0, atol=1e-15)


def test_golden_irprop_plus_backtracks_only_when_the_loss_rose():
  grads = [[g] for g in RPROP_G]
  rising = _run(nn.rprop(0.1, variant="irprop+"), [0.0], grads, [0, 1, 2, 3, 4, 5])[0]
  falling = _run(nn.rprop(0.1, variant="irprop+"), [0.0], grads, [5, 4, 3, 2, 1, 0])[0]
  np.testing.assert_array_equal(rising, _run(nn.rprop(0.1, variant="rprop+"), [0.0], grads)[0])
  np.testing.assert_array_equal(falling, _run(nn.rprop(0.1, variant="irprop-"), [0.0], grads)[0])


# ---------------------------------------------------------------------------------------------
# torch.optim.Rprop (= iRprop-), recorded constants
# ---------------------------------------------------------------------------------------------


def test_torch_golden_and_edge_cases():
  # torch.optim.Rprop(lr=.1) on the golden vectors' g (float64): weights and step sizes
  ws, ds = _run(nn.rprop(0.1), [0.0], [[g] for g in RPROP_G])
  np.testing.assert_array_equal(ws[:, 0], [-0.1, -0.22, -0.22, -0.16, -0.16, -0.19])
  np.testing.assert_array_equal(ds[:, 0], [0.1, 0.12, 0.06, 0.06, 0.03, 0.03])
  # lr = 100: Δ₀ clamped to max_step_size = 50 on the first step
  ws, ds = _run(nn.rprop(100.0), [0.0], [[1.0], [1.0], [-1.0]])
  np.testing.assert_array_equal(ws[:, 0], [-50.0, -100.0, -100.0])
  np.testing.assert_array_equal(ds[:, 0], [50.0, 50.0, 25.0])
  # a zero gradient: no move, Δ unchanged, and the next step counts as p = 0
  ws, ds = _run(nn.rprop(0.1), [0.0], [[1.0], [0.0], [1.0]])
  np.testing.assert_array_equal(ws[:, 0], [-0.1, -0.1, -0.2])
  np.testing.assert_array_equal(ds[:, 0], [0.1, 0.1, 0.1])


def test_first_step_clamp_applies_to_every_variant():
  for variant in VARIANTS:
    ws, ds = _run(nn.rprop(1e-9, variant=variant), [0.0], [[1.0]], [0.0])
    np.testing.assert_array_equal(ds[:, 0], [1e-6])
    np.testing.assert_array_equal(ws[:, 0], [-1e-6])


# A random stream with zeros (a whole step of zeros for two weights), 6 weights × 12 steps.
TORCH_G = [
  [-1.604, 0.0, 0.741, 0.153, 0.864, 2.913],
  [0.0, 0.945, -1.666, 0.0, -0.512, 0.0],
  [-0.86, 0.519, -1.265, -2.159, 0.435, 1.733],
  [0.0, 0.0, 0.268, 0.767, 1.191, -1.157],
  [0.696, 0.0, -0.032, 0.013, -0.679, -0.621],
  [1.331, 0.259, -0.481, -2.492, -0.877, -0.506],
  [-1.283, -1.33, 0.826, -0.247, -1.7, -1.335],
  [-0.3, 1.115, 0.0, 1.59, -0.487, -1.711],
  [0.513, 0.0, -0.222, 0.0, 0.0, -0.011],
  [1.665, 0.896, -1.203, 2.8, -1.021, 0.848],
  [0.0, 0.0, 0.202, -0.164, 0.0, -0.712],
  [-1.174, 0.475, 1.737, -0.137, 1.703, -0.088],
]
# (torch kwargs, dtype) -> final weights, final step sizes (float.hex), torch.optim.Rprop from w = 0
TORCH_FINAL = [
  (
    dict(lr=0.05),
    "float64",
    [
      "0x1.47ae147ae147cp-6",
      "-0x1.0a3d70a3d70a4p-2",
      "0x1.db22d0e560416p-7",
      "-0x1.0000000000001p-6",
      "-0x1.9ce075f6fd222p-5",
      "0x1.24febd09e12a4p-3",
    ],
    [
      "0x1.eb851eb851eb8p-7",
      "0x1.eb851eb851eb8p-6",
      "0x1.26e978d4fdf3bp-8",
      "0x1.999999999999ap-9",
      "0x1.61e4f765fd8adp-6",
      "0x1.fd9ba1b1960f8p-6",
    ],
  ),
  (
    dict(lr=0.05),
    "float32",
    [
      "0x1.47ae14p-6",
      "-0x1.0a3d70p-2",
      "0x1.db22d4p-7",
      "-0x1.000000p-6",
      "-0x1.9ce078p-5",
      "0x1.24fec0p-3",
    ],
    [
      "0x1.eb8520p-7",
      "0x1.eb8520p-6",
      "0x1.26e97ap-8",
      "0x1.99999ap-9",
      "0x1.61e4fap-6",
      "0x1.fd9ba8p-6",
    ],
  ),
  (
    dict(lr=0.3, etas=(0.3, 1.7), step_sizes=(0.01, 0.5)),
    "float64",
    [
      "-0x1.999999999999cp-5",
      "-0x1.bffffffffffffp+0",
      "-0x1.c23c85c24c404p-4",
      "-0x1.020c49ba5e354p-4",
      "-0x1.254b05b7cfe5ap-2",
      "0x1.4011b1d92b7fep+0",
    ],
    [
      "0x1.70a3d70a3d70ap-5",
      "0x1.3333333333333p-3",
      "0x1.47ae147ae147bp-7",
      "0x1.47ae147ae147bp-7",
      "0x1.0fab53d640e9cp-3",
      "0x1.051eb851eb852p-2",
    ],
  ),
  (
    dict(lr=0.3, etas=(0.3, 1.7), step_sizes=(0.01, 0.5)),
    "float32",
    [
      "-0x1.99999p-5",
      "-0x1.bffffep+0",
      "-0x1.c23c84p-4",
      "-0x1.020c4ap-4",
      "-0x1.254b04p-2",
      "0x1.4011b4p+0",
    ],
    [
      "0x1.70a3d8p-5",
      "0x1.333334p-3",
      "0x1.47ae14p-7",
      "0x1.47ae14p-7",
      "0x1.0fab58p-3",
      "0x1.051ebap-2",
    ],
  ),
  (
    dict(lr=5e-7),
    "float64",  # Δ₀ below min_step_size = 1e-6: clamped up on the first step
    [
      "0x1.ad7f29abcaf48p-21",
      "-0x1.ad7f29abcaf48p-18",
      "0x1.c8571c4687a3ep-19",
      "0x0.0p+0",
      "0x1.d87247702c0ccp-22",
      "0x1.032049084b14dp-17",
    ],
    [
      "0x1.0c6f7a0b5ed8dp-20",
      "0x1.0c6f7a0b5ed8dp-20",
      "0x1.0c6f7a0b5ed8dp-20",
      "0x1.0c6f7a0b5ed8dp-20",
      "0x1.828c0be769dc1p-20",
      "0x1.4dfa063063a78p-20",
    ],
  ),
  (
    dict(lr=5e-7),
    "float32",
    [
      "0x1.ad7f28p-21",
      "-0x1.ad7f28p-18",
      "0x1.c8571cp-19",
      "0x0.0p+0",
      "0x1.d87258p-22",
      "0x1.03204cp-17",
    ],
    [
      "0x1.0c6f7ap-20",
      "0x1.0c6f7ap-20",
      "0x1.0c6f7ap-20",
      "0x1.0c6f7ap-20",
      "0x1.828c0ep-20",
      "0x1.4dfa0cp-20",
    ],
  ),
]


def _torch_kwargs(kw):
  eta_minus, eta_plus = kw.get("etas", (0.5, 1.2))
  lo, hi = kw.get("step_sizes", (1e-6, 50.0))
  return dict(
    learning_rate=kw["lr"],
    eta_minus=eta_minus,
    eta_plus=eta_plus,
    min_step_size=lo,
    max_step_size=hi,
  )


@pytest.mark.parametrize("jit", [False, True], ids=["nojit", "jit"])
@pytest.mark.parametrize("case", range(len(TORCH_FINAL)))
def test_irprop_minus_is_torch_bit_for_bit(case, jit):
  kw, dtype, want_w, want_d = TORCH_FINAL[case]
  dtype = jnp.float64 if dtype == "float64" else jnp.float32
  tx = nn.rprop(**_torch_kwargs(kw))
  with jax.enable_x64(dtype == jnp.float64):
    w = jnp.zeros(6, dtype)
    state = tx.init(w)

    def step(w, state, g):
      u, state = tx.update(g, state, w)
      return optax.apply_updates(w, u), state

    step = jax.jit(step) if jit else step
    for g in TORCH_G:
      w, state = step(w, state, jnp.asarray(g, dtype))
    got_w = [float(x).hex() for x in np.asarray(w)]
    got_d = [float(x).hex() for x in np.asarray(state[0].step_sizes)]
  assert got_w == [float.fromhex(h).hex() for h in want_w]
  assert got_d == [float.fromhex(h).hex() for h in want_d]


def test_optax_pr_1725_example():
  """The fixed/torch behaviour of google-deepmind/optax PR #1725: the first update is
  not zero and no update is one step stale."""
  with jax.enable_x64(True):
    tx = nn.scale_by_rprop(0.1)
    state = tx.init(jnp.zeros(1))
    out = []
    for g in [1.0, 1.0, 1.0, -1.0, 1.0]:
      u, state = tx.update(jnp.asarray([g]), state)
      out.append(float(u[0]))
  np.testing.assert_allclose(out, [0.1, 0.12, 0.144, 0.0, 0.072], rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# the lecture's argument against mini-batch Rprop, made executable
# ---------------------------------------------------------------------------------------------

MINIBATCH_G = [[0.1]] * 9 + [[-0.9]]


def test_minibatch_rprop_drifts_sgd_stays_rmsprop_drifts_less():
  sgd = _run(optax.chain(optax.identity(), optax.sgd(1.0)), [0.0], MINIBATCH_G)[0][:, 0]
  rp = _run(nn.rprop(0.01), [0.0], MINIBATCH_G)[0][:, 0]
  # torch RMSprop(lr=.01, alpha=.9) == optax.rmsprop(eps_in_sqrt=False)
  rms = _run(
    optax.chain(optax.identity(), optax.rmsprop(0.01, decay=0.9, eps_in_sqrt=False)),
    [0.0],
    MINIBATCH_G,
  )[0][:, 0]
  # torch.optim.Rprop(lr=.01): the flip is frozen, so the 10th step does not move
  np.testing.assert_allclose(
    rp,
    [
      -0.01,
      -0.022,
      -0.0364,
      -0.05368,
      -0.074416,
      -0.0992992,
      -0.12915904,
      -0.164990848,
      -0.2079890176,
      -0.2079890176,
    ],
    rtol=0,
    atol=1e-15,
  )
  assert abs(sgd[-1]) < 1e-15  # 9·0.1 − 0.9 = 0: stays put
  np.testing.assert_allclose(rms[8], -0.1609340611, atol=1e-10)  # torch RMSprop
  np.testing.assert_allclose(rms[9], -0.1303354814, atol=1e-10)
  np.testing.assert_allclose(ref.sign_steps(MINIBATCH_G, 0.01)[-1], -0.08, atol=1e-15)
  assert abs(rp[-1]) > 1.5 * abs(rms[-1]) > 1.5 * abs(sgd[-1])
  # with any variant Rprop drifts by (at least) the eight steps of fixed-size sign steps
  for variant in VARIANTS:
    w = _run(nn.rprop(0.01, variant=variant), [0.0], MINIBATCH_G, [1.0] * 10)[0][-1, 0]
    assert w < -0.08 + 1e-12, (variant, w)


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------

N_STEPS, N_W = 10, 8
_grad_streams = hnp.arrays(
  np.float64,
  (N_STEPS, N_W),
  elements=st.one_of(st.just(0.0), st.floats(-10, 10, allow_nan=False, allow_subnormal=False)),
)
_value_streams = hnp.arrays(np.float64, (N_STEPS,), elements=st.sampled_from([0.0, 1.0, 2.0, 3.0]))


@functools.cache
def _scan_runner(variant):
  """A jitted run of ``rprop`` whose hyperparameters are arguments (traced: compiled once)."""

  def run(grads, values, lr, em, ep, lo, hi):
    tx = nn.rprop(lr, em, ep, lo, hi, variant=variant)
    w = jnp.zeros(grads.shape[1], grads.dtype)

    def body(carry, x):
      w, state = carry
      g, e = x
      u, state = tx.update(g, state, w, value=e)
      w = optax.apply_updates(w, u)
      return (w, state), (w, state[0].step_sizes)

    _, (ws, ds) = jax.lax.scan(body, (w, tx.init(w)), (grads, values))
    return ws, ds

  return jax.jit(run)


_hypers = st.tuples(
  st.floats(1e-4, 10.0),  # learning_rate
  st.floats(0.05, 0.95),  # eta_minus
  st.floats(1.05, 3.0),  # eta_plus
  st.floats(0.0, 1e-2),  # min_step_size
  st.floats(1e-2, 20.0),  # max_step_size
)


@pytest.mark.parametrize("variant", VARIANTS)
@hypothesis.settings(max_examples=200)
@hypothesis.given(grads=_grad_streams, values=_value_streams, hp=_hypers)
def test_matches_float64_reference(variant, grads, values, hp):
  """Float64, traced hyperparameters: bit for bit the loop with its float state."""
  lr, em, ep, lo, hi = hp
  with jax.enable_x64(True):
    ws, ds = _scan_runner(variant)(
      jnp.asarray(grads), jnp.asarray(values), *(jnp.float64(h) for h in hp)
    )
    ws, ds = np.asarray(ws), np.asarray(ds)
  rw, rd = ref.rprop(np.zeros(N_W), grads, variant, lr, em, ep, lo, hi, values=values)
  np.testing.assert_array_equal(ws, np.array(rw))
  np.testing.assert_array_equal(ds, np.array(rd))


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  grads=_grad_streams, values=_value_streams, hp=_hypers, variant=st.sampled_from(VARIANTS)
)
def test_step_sizes_stay_in_bounds(grads, values, hp, variant):
  """float32: every step size after every step lies in [min_step_size, max_step_size]."""
  lo, hi = hp[3], hp[4]
  _, ds = _scan_runner(variant)(
    jnp.asarray(grads, jnp.float32), jnp.asarray(values, jnp.float32), *(jnp.float32(h) for h in hp)
  )
  ds = np.asarray(ds)
  assert ds.dtype == np.float32
  assert np.all(ds >= np.float32(lo)) and np.all(ds <= np.float32(hi))


def test_scheduled_hyperparameters_follow_the_reference():
  em = lambda t: 0.5 - 0.02 * jnp.minimum(t, 5)  # noqa: E731
  hi = lambda t: 0.5 + 0.0 * t  # noqa: E731
  ws, ds = _run(
    nn.rprop(0.1, eta_minus=em, max_step_size=hi, variant="rprop-"), np.zeros(6), TORCH_G
  )
  rw, rd = ref.rprop(
    np.zeros(6), TORCH_G, "rprop-", 0.1, eta_minus=lambda t: 0.5 - 0.02 * min(t, 5), max_step=0.5
  )
  np.testing.assert_allclose(ws, rw, rtol=1e-15, atol=1e-15)
  np.testing.assert_allclose(ds, rd, rtol=1e-15, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# state, dtypes, complex parameters, the full-batch recipe
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_compact_state(variant, dtype):
  params = {"w": jnp.zeros((100, 10), dtype), "b": jnp.zeros((10,), dtype)}
  state = nn.scale_by_rprop(0.1, variant=variant).init(params)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.step_sizes))
  assert all(x.dtype == jnp.int8 for x in jax.tree.leaves(state.prev_sign))
  n = sum(x.size for x in jax.tree.leaves(params))
  per_leaf = sum(x.nbytes for x in jax.tree.leaves(state) if x.ndim)
  # 4 bytes of step size + 1 byte of sign; the "+" variants add the previous direction (float32)
  assert per_leaf == (9 if variant.endswith("+") else 5) * n
  if variant.endswith("+"):
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.prev_update))
  else:
    assert state.prev_update is None
  assert state.count.dtype == jnp.int32 and state.prev_value.shape == ()
  assert optax.tree.get(state, "step_sizes") is state.step_sizes


@pytest.mark.parametrize("variant", ["rprop+", "irprop+"])
def test_prev_update_is_what_backtracking_undoes(variant):
  # the stored previous direction equals sign_prev·Δ_prev wherever a sign change can follow
  # (sign_prev != 0), so storing it changes no result; it only saves XLA a copy of Δ_prev
  rng = np.random.default_rng(1)
  tx = nn.scale_by_rprop(0.05, variant=variant)
  w = jnp.zeros(200)
  state = tx.init(w)
  for t in range(30):
    g = jnp.asarray(rng.normal(size=200) * (rng.random(200) < 0.9))
    _, state = tx.update(g, state, w, value=jnp.asarray(float(rng.integers(3))))
    sign = np.asarray(state.prev_sign)
    np.testing.assert_array_equal(
      np.asarray(state.prev_update)[sign != 0], (sign * np.asarray(state.step_sizes))[sign != 0]
    )
    assert (sign != 0).any() and (sign == 0).any(), t


def test_float64_params_keep_float64_step_sizes():
  with jax.enable_x64(True):
    state = nn.scale_by_rprop(0.1).init({"a": jnp.zeros(3, jnp.float64), "b": jnp.zeros(2)})
    assert state.step_sizes["a"].dtype == jnp.float64
    assert state.prev_value.dtype == jnp.float64


@pytest.mark.parametrize("variant", VARIANTS)
def test_complex_parts_are_independent_reals(variant):
  rng = np.random.default_rng(0)
  g = rng.normal(size=(N_STEPS, 5)) + 1j * rng.normal(size=(N_STEPS, 5))
  g[2, :2] = 0.0
  g[4, 3] = 1j  # a zero real part next to a non-zero imaginary part
  values = [3.0, 2.0, 4.0, 1.0, 5.0, 0.0, 2.0, 3.0, 1.0, 4.0]
  tx = nn.rprop(0.1, variant=variant)
  wc, dc = _run(tx, np.zeros(5, np.complex128), g, values, dtype=jnp.complex128)
  wr, dr = _run(tx, np.zeros(10), np.concatenate([g.real, g.imag], 1), values)
  np.testing.assert_array_equal(wc.real, wr[:, :5])
  np.testing.assert_array_equal(wc.imag, wr[:, 5:])
  np.testing.assert_array_equal(dc.real, dr[:, :5])
  np.testing.assert_array_equal(dc.imag, dr[:, 5:])
  state = tx.init(jnp.zeros(5, jnp.complex64))
  assert state[0].step_sizes.dtype == jnp.complex64 and state[0].prev_sign.dtype == jnp.int8


def test_complex_sign_packing_round_trips():
  from nnml_optax import _rprop

  s = jnp.array([-1, 0, 1], jnp.int8)
  sr, si = jnp.meshgrid(s, s)
  back_r, back_i = _rprop._unpack(_rprop._pack(sr, si))
  np.testing.assert_array_equal(back_r, sr)
  np.testing.assert_array_equal(back_i, si)


@pytest.mark.parametrize("variant", ["irprop-", "irprop+"])
def test_full_batch_recipe_multisteps(variant):
  """``optax.MultiSteps`` over k mini-batches equals one step on the full-batch (mean) gradient."""
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(32, 3)), rng.normal(size=32)
  loss = lambda w, xb, yb: 0.5 * jnp.mean((xb @ w - yb) ** 2)  # noqa: E731
  with jax.enable_x64(True):
    full, ms = nn.rprop(0.05, variant=variant), optax.MultiSteps(nn.rprop(0.05, variant=variant), 4)
    full_update, ms_update = jax.jit(full.update), jax.jit(ms.update)
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    w_full = w_ms = jnp.zeros(3)
    s_full, s_ms = full.init(w_full), ms.init(w_ms)
    for _ in range(5):
      e, g = value_and_grad(w_full, x, y)
      u, s_full = full_update(g, s_full, w_full, value=e)
      w_full = optax.apply_updates(w_full, u)
      e_full = value_and_grad(w_ms, x, y)[0]
      for k in range(4):
        _, g = value_and_grad(w_ms, x[8 * k : 8 * k + 8], y[8 * k : 8 * k + 8])
        # the full-batch loss reaches the inner transform at the last mini-step
        u, s_ms = ms_update(g, s_ms, w_ms, value=e_full)
        w_ms = optax.apply_updates(w_ms, u)
    np.testing.assert_allclose(w_ms, w_full, rtol=1e-12, atol=1e-14)


def test_learning_rate_is_read_at_init():
  tx = optax.inject_hyperparams(nn.rprop, static_args=("variant",))(learning_rate=0.1)
  state = tx.init(jnp.zeros(2))
  state.hyperparams["learning_rate"] = jnp.asarray(5.0)
  u, _ = tx.update(jnp.ones(2), state)
  np.testing.assert_allclose(u, [-0.1, -0.1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_full_batch_convergence_least_squares(variant):
  rng = np.random.default_rng(2)
  a = rng.normal(size=(20, 5)) * np.logspace(0, 1.5, 5)
  w_star = rng.normal(size=5)
  b = a @ w_star
  f = lambda w: 0.5 * jnp.sum((a @ w - b) ** 2)  # noqa: E731
  tx = nn.rprop(0.01, variant=variant)
  with jax.enable_x64(True):
    w = jnp.zeros(5)
    state = tx.init(w)

    @jax.jit
    def step(w, state):
      e, g = jax.value_and_grad(f)(w)
      u, state = tx.update(g, state, w, value=e)
      return optax.apply_updates(w, u), state

    for _ in range(400):
      w, state = step(w, state)
    np.testing.assert_allclose(w, w_star, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "kwargs,name",
  [
    (dict(eta_plus=1.0), "eta_plus"),
    (dict(eta_plus=0.9), "eta_plus"),
    (dict(eta_minus=0.0), "eta_minus"),
    (dict(eta_minus=1.0), "eta_minus"),
    (dict(eta_minus=1.5), "eta_minus"),
    (dict(min_step_size=-1e-3), "min_step_size"),
    (dict(min_step_size=2.0, max_step_size=1.0), "min_step_size"),
    (dict(max_step_size=0.0), "max_step_size"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(learning_rate=-0.1), "learning_rate"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(eta_plus=lambda t: 0.9), "eta_plus"),  # a schedule probed at step 0
    (dict(variant="irprop"), "variant"),
  ],
)
def test_bad_input(kwargs, name):
  for factory in (nn.rprop, nn.scale_by_rprop):
    with pytest.raises(ValueError, match=name):
      factory(**kwargs)


def test_learning_rate_schedule_is_rejected():
  with pytest.raises(TypeError, match="learning_rate"):
    nn.rprop(lambda t: 0.1)


def test_irprop_plus_needs_value():
  tx = nn.rprop(0.1, variant="irprop+")
  state = tx.init(jnp.zeros(2))
  with pytest.raises(ValueError, match="value"):
    tx.update(jnp.ones(2), state, jnp.zeros(2))
  with pytest.raises(ValueError, match="value"):
    tx.update(jnp.ones(2), state, jnp.zeros(2), value=jnp.ones(2))
  with pytest.raises(ValueError, match="value"):
    jax.jit(tx.update)(jnp.ones(2), state, jnp.zeros(2))
  tx.update(jnp.ones(2), state, jnp.zeros(2), value=1.0, unknown=3)  # unknown extras ignored


def test_old_state_name_warns():
  with pytest.warns(DeprecationWarning, match="RpropState"):
    assert nn.ScaleByRpropState is nn.RpropState
  assert nn.RpropState._fields == (
    "count",
    "step_sizes",
    "prev_sign",
    "prev_value",
    "hyperparams_used",
    "prev_update",
  )  # 0.1.0's fields and the recorded hyperparameters (nnml_optax.migrate_0_1_state adds them)
