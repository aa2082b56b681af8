"""Every public transform and alias against the optax contract (see ``tests/registry``).

Compilation is what these checks cost on a CPU (tiny trees, a few steps), so compiled work is
shared where a check does not depend on compiling separately: the jitted 3-step reference run of
each entry (``registry.reference_run``, also used by ``test_sharding.py``) serves every check that
compares against it; a check with several transforms runs them all in one ``jax.jit``
(:func:`_run_many`); the three zoo problems of an entry run in one program (:func:`_zoo_finals`).
The tests of one entry are one ``xdist_group``, so that under ``pytest -n 2`` (pyproject sets
``--dist loadgroup``) they share those runs on one worker.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from registry import (
  ENTRIES,
  ZOO,
  Entry,
  grads_of,
  group,
  loss,
  make_params,
  reference_run,
  run_zoo,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _steps(tx, entry: Entry, params, n: int, *, jit: bool = True, unknown: bool = False):
  """Runs ``n`` update/apply steps on the canonical loss; returns the updates and final state."""
  state = tx.init(params)

  def step(params, state):
    g = grads_of(params)
    kw = entry.extras(loss, params)
    if unknown:
      kw["some_unknown_extra_arg"] = jnp.ones([])
    u, state = tx.update(g, state, params, **kw)
    return optax.apply_updates(params, u), state, u

  fn = jax.jit(step) if jit else step
  out = []
  for _ in range(n):
    params, state, u = fn(params, state)
    out.append(u)
  return out, state, params


def _scanned(txs, entry: Entry, params, n: int) -> list[list]:
  """The updates of ``n`` steps of each transform in ``txs`` on the canonical loss (each a
  ``lax.scan``, so that a transform is traced and compiled once, not once per step)."""
  out = []
  for tx in txs:

    def body(carry, _, tx=tx):
      p, state = carry
      u, state = tx.update(grads_of(p), state, p, **entry.extras(loss, p))
      return (optax.apply_updates(p, u), state), u

    _, us = jax.lax.scan(body, (params, tx.init(params)), length=n)
    out.append([jax.tree.map(lambda x, i=i: x[i], us) for i in range(n)])
  return out


def _run_many(txs, entry: Entry, params, n: int) -> list[list]:
  """:func:`_scanned` in one ``jax.jit`` (one compilation instead of one per transform)."""
  return jax.jit(lambda p: _scanned(txs, entry, p, n))(params)


def _assert_trees_equal(a, b, *, exact: bool = True, rtol: float = 1e-6):
  ta, tb = jax.tree.structure(a), jax.tree.structure(b)
  assert ta == tb, f"{ta} != {tb}"
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if exact:
      np.testing.assert_array_equal(x, y)
    else:
      np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol)


def _applies(entry: Entry, check: str) -> None:
  if check in entry.not_applicable:
    pytest.skip(f"{entry.name}: {entry.not_applicable[check]}")


def _jit_update(tx, kw: dict):
  """``jax.jit(tx.update)`` with callable extra args (a line search's ``value_fn``) closed over;
  call it with :func:`_plain` extra args."""
  return jax.jit(functools.partial(tx.update, **{k: v for k, v in kw.items() if callable(v)}))


def _plain(kw: dict) -> dict:
  return {k: v for k, v in kw.items() if not callable(v)}


def _dtypes(tree):
  return jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tree)


@pytest.fixture(
  params=[pytest.param(e, marks=group(e)) for e in ENTRIES],
  ids=lambda e: e.name,
)
def entry(request) -> Entry:
  return request.param


# 1. finite updates with the params' shapes; dtype kept for f32 and bf16 ----------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_shapes_dtypes_finite(entry, dtype):
  params = make_params(dtype)
  run = reference_run(entry, dtype)
  updates, state = run.updates, run.states[-1]
  for u in updates:
    assert jax.tree.structure(u) == jax.tree.structure(params)
    for ui, p in zip(jax.tree.leaves(u), jax.tree.leaves(params), strict=True):
      assert ui.shape == p.shape and ui.dtype == p.dtype, (ui.shape, ui.dtype, p.shape, p.dtype)
      assert bool(jnp.all(jnp.isfinite(ui)))
  for leaf in jax.tree.leaves(state):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert bool(jnp.all(jnp.isfinite(leaf) | jnp.isinf(leaf) & (leaf > 0))), "state not finite"


# 2. jit == no jit; stable under lax.scan; traces once ----------------------------------------


def test_jit_equals_nojit(entry):
  params = make_params()
  run = reference_run(entry)  # jitted
  a, sa = run.updates, run.states[-1]
  b, sb, _ = _steps(entry.make(), entry, params, 3, jit=False)
  _assert_trees_equal(a, b, exact=False)
  _assert_trees_equal(sa, sb, exact=False)


def test_scan_stable_and_traces_once(entry):
  # the reference run called its jitted step 3 times, each time with the state the last call
  # returned: a second trace means the state's structure or dtype changed
  run = reference_run(entry)
  assert run.traces == 1, "the jitted update retraced: state structure or dtype changed"
  assert _dtypes(run.states[-1]) == _dtypes(run.state0)
  tx = entry.make()
  params = make_params()
  state0 = tx.init(params)

  def body(carry, _):
    params, state = carry
    u, state = tx.update(grads_of(params), state, params, **entry.extras(loss, params))
    return (optax.apply_updates(params, u), state), None

  # lax.scan refuses a carry whose structure or dtypes change while tracing: no need to compile
  (_, s_scan), _ = jax.eval_shape(lambda c: jax.lax.scan(body, c, None, length=3), (params, state0))
  assert _dtypes(s_scan) == _dtypes(state0)


# 3. unknown extra args are accepted inside optax.chain --------------------------------------


def test_unknown_extra_args_in_chain(entry):
  _applies(entry, "unknown_extra_args")
  params = make_params()
  a, _, _ = _steps(optax.chain(entry.make()), entry, params, 2, unknown=True)
  _assert_trees_equal(a, reference_run(entry).updates[:2])


# 4. float hyperparameters as schedules; inject_hyperparams ----------------------------------


def test_constant_schedules_bit_identical(entry):
  # every variant runs in one program with the plain entry as its reference, so that "bit
  # identical" compares like with like (one compilation, the same fusion decisions)
  names = entry.float_hyperparams()
  if not names:
    pytest.skip(f"{entry.name}: no float hyperparameter to try as a schedule")
  constant = [entry.make(**{k: (lambda count, v=entry.kwargs[k]: v)}) for k in names]
  # a schedule that really varies must also be accepted
  varying = [
    entry.make(**{k: (lambda count, v=entry.kwargs[k]: v * (1.0 - 1e-3 * jnp.minimum(count, 1)))})
    for k in names
  ]
  ref, *runs = _run_many([entry.make(), *constant, *varying], entry, make_params(), 3)
  for name, got in zip(names, runs[: len(names)], strict=True):
    try:
      _assert_trees_equal(got, ref)
    except AssertionError as e:
      raise AssertionError(f"{entry.name}: {name} as a constant schedule") from e
  for got in runs[len(names) :]:
    assert all(bool(jnp.all(jnp.isfinite(x))) for u in got for x in jax.tree.leaves(u))


def test_inject_hyperparams(entry):
  params = make_params()
  ref = reference_run(entry).updates
  injected = optax.inject_hyperparams(entry.factory, static_args=entry.static_args())(
    **entry.kwargs
  )
  got, state, _ = _steps(injected, entry, params, 3)
  _assert_trees_equal(got, ref, exact=False)
  for name in entry.float_hyperparams():
    assert name in state.hyperparams


# 5. masked, MultiSteps, apply_if_finite -------------------------------------------------------


def test_masked(entry):
  _applies(entry, "masked")
  params = make_params()
  mask = {"w": True, "b": False, "s": True, "k": True}
  sub = [k for k in params if mask[k]]

  @jax.jit  # the masked run and its reference on the subtree, in one program
  def both(params):
    masked, tx = optax.masked(entry.make(), mask), entry.make()

    def body(carry, _):
      full, s_masked, s_sub = carry
      g = grads_of(full)
      u, s_masked = masked.update(g, s_masked, full, **entry.extras(loss, full))
      p_sub = {k: full[k] for k in sub}
      ref, s_sub = tx.update({k: g[k] for k in sub}, s_sub, p_sub, **entry.extras(loss, p_sub))
      return (optax.apply_updates(full, u), s_masked, s_sub), (u, ref, g["b"])

    init = (params, masked.init(params), tx.init({k: params[k] for k in sub}))
    _, out = jax.lax.scan(body, init, length=3)
    return [jax.tree.map(lambda x, i=i: x[i], out) for i in range(3)]

  for u, ref, g_b in both(params):
    np.testing.assert_array_equal(np.asarray(u["b"]), np.asarray(g_b))  # passed through
    _assert_trees_equal({k: u[k] for k in sub}, ref, exact=False)


def test_multisteps(entry):
  params = make_params()

  @jax.jit  # one program: MultiSteps' two updates and the reference on the mean gradient
  def run(params):
    tx = entry.make()
    ms = optax.MultiSteps(entry.make(), every_k_schedule=2)
    s_ms = ms.init(params)
    g1 = grads_of(params)
    g2 = jax.tree.map(lambda g: -0.5 * g + 0.1, g1)
    p2 = jax.tree.map(lambda p: p + 0.01, params)
    u1, s_ms = ms.update(g1, s_ms, params, **entry.extras(loss, params))
    u2, s_ms = ms.update(g2, s_ms, p2, **entry.extras(loss, p2))
    mean = jax.tree.map(lambda a, b: (a + b) / 2, g1, g2)
    ref, _ = tx.update(mean, tx.init(params), p2, **entry.extras(loss, p2))
    return u1, u2, ref

  u1, u2, ref = run(params)
  assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u1))
  _assert_trees_equal(u2, ref, exact=False, rtol=1e-5)


def test_apply_if_finite(entry):
  params = make_params()
  tx = optax.apply_if_finite(entry.make(), max_consecutive_errors=3)
  s0 = tx.init(params)
  g = grads_of(params)
  kw = entry.extras(loss, params)
  update = _jit_update(tx, kw)
  u1, s1 = update(g, s0, params, **_plain(kw))
  p1 = optax.apply_updates(params, u1)
  g_nan = jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(jnp.nan), grads_of(p1))
  u_nan, s_nan = update(g_nan, s1, p1, **_plain(entry.extras(loss, p1)))
  assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(u_nan))
  _assert_trees_equal(s_nan.inner_state, s1.inner_state)
  u2, _ = update(grads_of(p1), s_nan, p1, **_plain(entry.extras(loss, p1)))
  ref, _ = update(grads_of(p1), s1, p1, **_plain(entry.extras(loss, p1)))
  _assert_trees_equal(u2, ref)


# 6. orbax round trip --------------------------------------------------------------------------


def test_orbax_round_trip(entry, tmp_path):
  run = reference_run(entry)
  s2, p2 = run.states[1], run.params[1]  # after 2 steps
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(tmp_path / "state", s2)
  ckpt.wait_until_finished()
  restored = ckpt.restore(tmp_path / "state", jax.tree.map(ocp.utils.to_shape_dtype_struct, s2))
  ckpt.close()
  assert jax.tree.structure(restored) == jax.tree.structure(s2)
  assert _dtypes(restored) == _dtypes(s2)

  def cont(state):  # two more steps of the reference run's compiled step
    p, out = p2, []
    for _ in range(2):
      p, state, u = run.step(p, state)
      out.append(u)
    return out, state

  a, sa = cont(s2)
  b, sb = cont(restored)
  _assert_trees_equal(a, b)
  _assert_trees_equal(sa, sb)
  _assert_trees_equal(a[0], run.updates[2])  # and the saved run's own third step


# 7. abstract init -----------------------------------------------------------------------------


def test_init_on_abstract_params(entry):
  params = make_params()
  tx = entry.make()
  abstract = jax.eval_shape(
    tx.init, jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
  )
  concrete = tx.init(params)
  assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
  assert _dtypes(abstract) == _dtypes(concrete)


# 8. convergence on the zoo --------------------------------------------------------------------


_ZOO_FINALS: dict[str, dict[str, float]] = {}


def _zoo_finals(entry: Entry) -> dict[str, float]:
  """The entry's final loss on every zoo problem, run once per test process (one program)."""
  if entry.name not in _ZOO_FINALS:
    _ZOO_FINALS[entry.name] = run_zoo(entry)
  return _ZOO_FINALS[entry.name]


@pytest.mark.parametrize("problem", list(ZOO))
def test_zoo_convergence(entry, problem):
  _, _, tol = ZOO[problem]
  tol = entry.zoo_tol.get(problem, tol)
  final = _zoo_finals(entry)[problem]
  assert np.isfinite(final) and final < tol, f"{entry.name} on {problem}: {final} >= {tol}"


# 0. the registry covers the public API -------------------------------------------------------


def test_every_public_transform_is_registered():
  import nnml_optax as nn

  covered = {getattr(e.factory, "__name__", "") for e in ENTRIES}
  covered |= {"fuse_leaves"} if any(e.name.startswith("fuse_leaves(") for e in ENTRIES) else set()
  # not transforms: helpers on a whole state (epoch-level plateau, logging), a checkpoint converter
  helpers = {"update_plateau", "hyperparams", "migrate_0_1_state"}
  public = {
    n
    for n in nn.__all__
    if n[0].islower() and callable(getattr(nn, n)) and not isinstance(getattr(nn, n), type(nn))
  }
  assert public - helpers - covered == set()
