"""``nnml_optax.hyperparams``: every hyperparameter as the last update used it, for every registry
entry and through optax's wrappers and ``nnx.Optimizer``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnml_optax as nn
from nnml_optax import schedules

from registry import ENTRIES, Entry, grads_of, loss, make_params

STEPS = 3  # the last update reads its schedules at count STEPS - 1


def _growing(v: float):
  """A schedule that starts at ``v`` and moves a little each step (stays in every range)."""
  return lambda count: v * (1.0 + 1e-3 * count)


def _run(tx, entry: Entry, n: int = STEPS):
  params = make_params()

  @jax.jit
  def step(params, state):
    u, state = tx.update(grads_of(params), state, params, **entry.extras(loss, params))
    return optax.apply_updates(params, u), state

  state = tx.init(params)
  for _ in range(n):
    params, state = step(params, state)
  return state


def _keys_named(out: dict, name: str) -> list[str]:
  return [k for k in out if k.rsplit("/", 1)[-1] == name]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_hyperparameter_as_last_used(entry: Entry):
  """Each float hyperparameter, given as a schedule, appears once with its value at the last
  update's count; each other number as given; the effective rate is the rate times the scales."""
  if "hyperparams" in entry.not_applicable:
    pytest.skip(entry.not_applicable["hyperparams"])
  floats = entry.float_hyperparams()
  tx = entry.make(**{k: _growing(entry.kwargs[k]) for k in floats})
  out = jax.jit(nn.hyperparams)(_run(tx, entry))
  assert all(v.shape == () for v in out.values()), out
  expected = {k: entry.kwargs[k] * (1.0 + 1e-3 * (STEPS - 1)) for k in floats}
  for k, v in entry.kwargs.items():
    if callable(v):  # a schedule in the entry itself (momentum schedules)
      expected[k] = float(v(jnp.asarray(STEPS - 1)))
    elif isinstance(v, int | float) and not isinstance(v, bool) and k not in expected:
      expected[k] = v
  for name, want in expected.items():
    keys = _keys_named(out, name)
    assert len(keys) == 1, f"{entry.name}: {name!r} found at {keys} in {sorted(out)}"
    np.testing.assert_allclose(float(out[keys[0]]), want, rtol=1e-6, err_msg=f"{entry.name}:{name}")
  if "effective_learning_rate" in out:
    scales = [out[k] for n in ("driver_scale", "plateau_scale") for k in _keys_named(out, n)]
    want = expected["learning_rate"] * math.prod(float(s) for s in scales)
    np.testing.assert_allclose(float(out["effective_learning_rate"]), want, rtol=1e-6)
  elif "learning_rate" in entry.kwargs and entry.factory not in (nn.rprop, nn.scale_by_rprop):
    raise AssertionError(f"{entry.name}: an alias with a learning rate has no effective rate")


@pytest.mark.parametrize(
  "entry",
  [e for e in ENTRIES if e.name in ("momentum", "rmsprop_momentum", "rprop+", "vsgd_fd")],
  ids=lambda e: e.name,
)
def test_inject_hyperparams_values_are_reported(entry: Entry):
  """Under ``inject_hyperparams`` the injected value is reported under its name and the
  transform's record (under its path) holds the same value."""
  if not entry.float_hyperparams():
    pytest.skip("no float hyperparameter to inject")
  tx = optax.inject_hyperparams(entry.factory, static_args=entry.static_args())(**entry.kwargs)
  state = _run(tx, entry)
  out = nn.hyperparams(state)
  for name in entry.float_hyperparams():
    keys = _keys_named(out, name)
    assert name in out and len(keys) == 2, (name, keys)
    np.testing.assert_allclose([float(out[k]) for k in keys], entry.kwargs[name], rtol=1e-6)


def test_wrappers_hand_computed():
  """chain, named_chain, inject_hyperparams, masked, partition, MultiSteps, apply_if_finite and
  fuse_leaves, with the keys and values written out."""
  mu = schedules.sutskever_momentum(0.99, period=2)  # 0.5, 0.75 at counts 0-1 and 2-3
  lr = optax.linear_schedule(0.1, 0.0, 10)
  part = optax.partition(
    {
      "a": optax.named_chain(("mom", nn.nesterov(lr, mu)), ("fan", nn.scale_by_fan_in(0.5))),
      "b": optax.inject_hyperparams(optax.adam)(learning_rate=0.01),
    },
    {"w": "a", "b": "b"},
  )
  tx = optax.MultiSteps(
    optax.apply_if_finite(
      optax.chain(
        part,
        optax.masked(nn.fuse_leaves(nn.rmsprop(0.5, momentum=0.9)), {"w": False, "b": True}),
        nn.bold_driver(),
      ),
      max_consecutive_errors=3,
    ),
    every_k_schedule=1,
  )
  params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
  state = tx.init(params)
  for t in range(3):
    g = jax.tree.map(lambda p: p + 1.0, params)
    u, state = tx.update(g, state, params, value=jnp.asarray(3.0 - t))
    params = optax.apply_updates(params, u)
  out = nn.hyperparams(state)
  scale = float(out["2/driver_scale"])
  assert scale == pytest.approx(1.1**2)  # two accepted steps after the first
  want = {
    "0/a/mom/0/learning_rate": 0.1 * (1 - 2 / 10),  # the last update read count 2
    "0/a/mom/1/momentum": 0.75,
    "0/a/fan/power": 0.5,
    "0/b/learning_rate": 0.01,
    "0/b/b1": 0.9,
    "0/b/b2": 0.999,
    "0/b/eps": 1e-8,
    "0/b/eps_root": 0.0,
    "1/0/decay": 0.9,
    "1/0/eps": 1e-8,
    "1/0/initial_scale": 0.0,
    "1/1/learning_rate": 0.5,
    "1/2/momentum": 0.9,
    "2/increase": 1.1,
    "2/decrease": 0.5,
    "2/tolerance": 0.0,
    "2/max_scale": 1e3,
    "2/driver_scale": scale,
    # partition: each label's rate times the scales outside the partition (the masked rmsprop's
    # rate and the driver's scale apply to every leaf they touch)
    "0/a/effective_learning_rate": 0.08 * 0.5 * scale,
    "0/b/effective_learning_rate": 0.01 * 0.5 * scale,
  }
  assert sorted(out) == sorted(want)
  for k, v in want.items():
    np.testing.assert_allclose(float(out[k]), v, rtol=1e-6, err_msg=k)


def test_per_parameter_statistics_hand_computed():
  params = {"w": jnp.asarray([[1.0, -2.0], [3.0, 0.5]]), "b": jnp.zeros(0)}
  txs = (nn.rprop(0.1), nn.local_gains(0.1))
  state = tuple(tx.init(params) for tx in txs)  # laid out as a chain's state, each fed g
  for g in ([[1.0, 1.0], [1.0, -1.0]], [[1.0, -1.0], [1.0, -1.0]]):
    grads = {"w": jnp.asarray(g), "b": jnp.zeros(0)}
    state = tuple(tx.update(grads, s, params)[1] for tx, s in zip(txs, state, strict=True))
  out = nn.hyperparams(state)
  steps = np.asarray(state[0][0].step_sizes["w"])
  np.testing.assert_allclose(steps, [[0.12, 0.05], [0.12, 0.12]], rtol=1e-6)  # x1.2, x0.5
  gains = np.asarray(state[1][0].gains["w"])
  # a sign change or no previous sign: x0.95; the same sign: +0.05
  np.testing.assert_allclose(gains, [[1.0, 0.9025], [1.0, 1.0]], rtol=1e-6)
  for prefix, arr in (("0/0/step_sizes/w", steps), ("1/0/gains/w", gains)):
    np.testing.assert_allclose(float(out[f"{prefix}/mean"]), arr.mean(), rtol=1e-6)
    np.testing.assert_allclose(float(out[f"{prefix}/min"]), arr.min(), rtol=1e-6)
    np.testing.assert_allclose(float(out[f"{prefix}/max"]), arr.max(), rtol=1e-6)
  assert not any("/b/" in k for k in out)  # an empty leaf has no statistics
  assert not any("/w/" in k for k in nn.hyperparams(state, statistics=False))


def test_vsgd_rates_are_the_ones_used():
  """vSGD's logged per-parameter rates reproduce its last update: direction = rate * gradient."""
  f = lambda w: 0.5 * jnp.sum(jnp.asarray([1.0, 10.0]) * w**2)  # noqa: E731
  tx = nn.scale_by_vsgd(n0=2)
  w = jnp.asarray([1.0, 1.0])
  state = tx.init(w)
  for t in range(6):
    g = jax.grad(f)(w)
    u, state = tx.update(g, state, w, grad_fn=jax.grad(f))
    out = nn.hyperparams(state)
    rates = np.asarray([float(out[f"learning_rate/{s}"]) for s in ("min", "max")])
    got = np.sort(np.asarray(u) / np.asarray(g))
    np.testing.assert_allclose(rates, got, rtol=1e-5, err_msg=f"update {t}")
    w = w - 0.5 * u
  assert float(out["robust"]) == 1.0 and float(out["n0"]) == 2.0


def test_float64_parameters_give_float64_values():
  with jax.enable_x64(True):
    tx = nn.momentum(0.1, 0.9)
    out = nn.hyperparams(tx.init(jnp.zeros(2, jnp.float64)))
    assert {v.dtype for v in out.values()} == {jnp.dtype(jnp.float64)}
    out = nn.hyperparams(tx.init(jnp.zeros(2, jnp.bfloat16)))
    assert {v.dtype for v in out.values()} == {jnp.dtype(jnp.float32)}


def test_nnx_optimizer_and_its_state():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
  opt = nnx.Optimizer(model, nn.nesterov(0.1, 0.9), wrt=nnx.Param)
  want = {"0/learning_rate": 0.1, "1/momentum": 0.9, "effective_learning_rate": 0.1}
  for got in (nn.hyperparams(opt), nn.hyperparams(opt.opt_state), nnx.jit(nn.hyperparams)(opt)):
    assert {k: pytest.approx(float(v)) for k, v in got.items()} == want


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_plateau_logging_example():
  """examples/plateau_logging.py: NNX (in place, inside nnx.jit), Linen (pure) and iRprop+ with
  the plateau. Each log is checked against the plateau rule replayed on the logged validation
  losses alone, the schedule at the logged step and rate x scale."""
  import importlib
  import sys
  from pathlib import Path

  sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
  try:
    main = importlib.import_module("plateau_logging").main
  finally:
    sys.path.pop(0)
  logs = main(epochs=3, rprop_steps=10)
  for name, log in logs.items():
    replay = nn.reduce_on_plateau(0.5, patience=1 if name != "irprop+" else 0, value_arg=None)
    state = replay.init(jnp.zeros(1))
    for row in log:
      state = nn.update_plateau(state, row["val_loss"])
      assert row["1/plateau_scale"] == pytest.approx(float(state.plateau_scale)), name
      rate = next(v for k, v in row.items() if k.endswith("/learning_rate"))
      if name != "irprop+":
        np.testing.assert_allclose(
          row["effective_learning_rate"], rate * row["1/plateau_scale"], rtol=1e-6
        )
  nnx_log, linen_log = logs["nnx"], logs["linen"]
  # the momentum schedule steps once per epoch: 0.5, 0.75, 0.833
  np.testing.assert_allclose([r["0/1/momentum"] for r in nnx_log], [0.5, 0.75, 5 / 6], 1e-6)
  assert [r["0/1/momentum"] for r in linen_log] == [r["0/1/momentum"] for r in nnx_log]
  assert "effective_learning_rate" not in logs["irprop+"][0]  # Rprop has no global rate
  assert logs["irprop+"][-1]["0/0/step_sizes/w/max"] > 0
