"""fuse_leaves: identical numbers, per-dtype buffers, partitioned leaves left alone."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import nnml_optax as nn


def _tree(seed=0):
  rng = np.random.default_rng(seed)
  tree = {f"a{i}": jnp.asarray(rng.normal(size=(i % 4 + 1, 3)), jnp.float32) for i in range(40)}
  tree["half"] = jnp.asarray(rng.normal(size=(5,)), jnp.bfloat16)
  tree["half2"] = jnp.asarray(rng.normal(size=(2, 2)), jnp.bfloat16)
  tree["scalar"] = jnp.asarray(0.3, jnp.float32)
  tree["nested"] = (jnp.ones((2,)), {"x": -jnp.ones((3, 1))})
  return tree


TRANSFORMS = {
  "momentum": lambda: nn.momentum(0.1, 0.9),
  "nesterov": lambda: nn.nesterov(0.1, 0.9),
  "optax.adam": lambda: optax.adam(1e-2),
  "optax.rmsprop": lambda: optax.rmsprop(1e-2, momentum=0.9, centered=True),
  "optax.sgd": lambda: optax.sgd(0.1, 0.5),
  # these read the parameters (fused only for them)
  "optax.adamw": lambda: optax.adamw(1e-2, weight_decay=0.1),
  "decay+momentum": lambda: optax.chain(optax.add_decayed_weights(0.05), nn.momentum(0.1, 0.9)),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("jit", [False, True])
def test_identical_to_unwrapped(name, jit):
  params = _tree()
  plain, fused = TRANSFORMS[name](), nn.fuse_leaves(TRANSFORMS[name]())
  s1, s2 = plain.init(params), fused.init(params)
  up1, up2 = (jax.jit(plain.update), jax.jit(fused.update)) if jit else (plain.update, fused.update)
  for step in range(4):
    g = jax.tree.map(lambda x: (x * (step + 1) - 0.25).astype(x.dtype), params)
    u1, s1 = up1(g, s1, params)
    u2, s2 = up2(g, s2, params)
    assert jax.tree.structure(u1) == jax.tree.structure(u2)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
      assert a.dtype == b.dtype and a.shape == b.shape
      a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
      if jit:  # XLA may pick other vector instructions for other buffer sizes: a few ulp
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
      else:
        np.testing.assert_array_equal(a, b)
    params = optax.apply_updates(params, u1)


def test_one_buffer_per_dtype():
  params = _tree()
  state = nn.fuse_leaves(nn.momentum(0.1, 0.9)).init(params)
  velocity = state.inner_state[1].velocity
  assert sorted(velocity) == ["fused_bfloat16", "fused_float32"]
  assert velocity["fused_bfloat16"].dtype == jnp.bfloat16
  n32 = sum(x.size for x in jax.tree.leaves(params) if x.dtype == jnp.float32)
  assert velocity["fused_float32"].shape == (n32,)
  assert state.unfused == {}


def test_extra_args_forwarded_and_masked():
  params = _tree()
  mask = jax.tree.map(lambda x: x.dtype == jnp.float32, params)
  # mask outside: inside fuse_leaves the inner transform sees buffers, not the param tree
  tx = optax.masked(nn.fuse_leaves(nn.momentum(0.1, 0.9)), mask)
  ref = optax.masked(nn.momentum(0.1, 0.9), mask)
  tx = optax.chain(tx)
  u1, _ = tx.update(params, tx.init(params), params, value=jnp.ones([]), unknown="x")
  u2, _ = ref.update(params, ref.init(params))
  jax.tree.map(
    lambda a, b: np.testing.assert_array_equal(
      np.asarray(a, np.float32), np.asarray(b, np.float32)
    ),
    u1,
    u2,
  )


def test_callable_and_tree_extra_args_are_fused():
  seen = {}

  def init(params):
    return optax.EmptyState()

  def update(updates, state, params=None, *, grad_fn, curvature, value):
    seen["keys"] = sorted(updates)
    seen["curv"] = sorted(curvature)
    g = grad_fn(params)
    assert sorted(g) == sorted(updates)
    return jax.tree.map(lambda u, gi, c: u + gi + c + value, updates, g, curvature), state

  inner = optax.GradientTransformationExtraArgs(init, update)
  params = {"a": jnp.ones((2,)), "b": jnp.ones((3, 1))}
  with pytest.raises(ValueError, match="assume_elementwise=True"):  # needs curvature: unchecked
    nn.fuse_leaves(inner).init(params)
  tx = nn.fuse_leaves(inner, assume_elementwise=True)
  u, _ = tx.update(
    params,
    tx.init(params),
    params,
    grad_fn=lambda p: jax.tree.map(lambda x: 2 * x, p),
    curvature=jax.tree.map(jnp.zeros_like, params),
    value=jnp.asarray(1.0),
  )
  assert seen["keys"] == ["fused_float32"] == seen["curv"]
  np.testing.assert_array_equal(u["b"], 4.0 * jnp.ones((3, 1)))


@pytest.mark.skipif(len(jax.devices()) < 8, reason="needs 8 fake devices")
def test_partitioned_leaves_stay_unfused():
  mesh = Mesh(np.array(jax.devices()[:8]), ("d",))
  params = _tree()
  params["big"] = jax.device_put(jnp.arange(32.0).reshape(8, 4), NamedSharding(mesh, P("d")))
  params["a0"] = jax.device_put(params["a0"], NamedSharding(mesh, P()))  # replicated: fused
  tx = nn.fuse_leaves(nn.momentum(0.1, 0.9))
  state = tx.init(params)
  leaves = jax.tree.leaves(params)
  idx = [i for i, x in enumerate(leaves) if x.shape == (8, 4)]
  assert list(state.unfused) == [f"leaf{idx[0]:06d}"]
  velocity = state.inner_state[1].velocity
  assert velocity[f"leaf{idx[0]:06d}"].sharding.is_equivalent_to(params["big"].sharding, 2)
  u, state = jax.jit(tx.update)(params, state, params)
  ref, _ = nn.momentum(0.1, 0.9).update(params, nn.momentum(0.1, 0.9).init(params))
  jax.tree.map(
    lambda a, b: np.testing.assert_array_equal(
      np.asarray(a, np.float32), np.asarray(b, np.float32)
    ),
    u,
    ref,
  )
  assert u["big"].sharding.is_equivalent_to(params["big"].sharding, 2)


def test_fewer_kernels_for_many_leaves():
  """The point of fusing: the compiled update has O(dtypes) elementwise kernels, not O(leaves)."""
  params = {f"p{i}": jnp.ones((3,)) for i in range(300)}
  tx_plain, tx_fused = (
    optax.rmsprop(0.1, momentum=0.9),
    nn.fuse_leaves(optax.rmsprop(0.1, momentum=0.9)),
  )

  def n_fusions(tx):
    st = tx.init(params)
    hlo = jax.jit(tx.update).lower(params, st).compile().as_text()
    return hlo.count(" fusion(") + hlo.count("fusion.")

  assert n_fusions(tx_fused) < n_fusions(tx_plain)


def test_split_reads_run_time_positions():
  """In its dtype's buffer each leaf sits in the run of the leaves of its shape; it is cut at the
  run's start (constant) plus its position in the run (an int32 read from the state), so XLA
  compiles one split kernel per leaf *shape*: a constant offset would make every slice a distinct
  kernel (3,000 of them took longer to compile than the unfused update). A shape that occurs once
  is cut at a constant offset."""
  params = {f"p{i:03d}": jnp.full((2 + i % 3, 3), float(i)) for i in range(30)}
  params["h"] = jnp.ones((4,), jnp.bfloat16)
  params["z"] = jnp.arange(7.0)
  tx = nn.fuse_leaves(nn.momentum(0.1, 0.9))
  state = tx.init(params)
  assert {k: int(v) for k, v in state.positions.items()} == {f"pos{j:06d}": j for j in range(10)}
  assert all(v.dtype == jnp.int32 and v.shape == () for v in state.positions.values())
  hlo = jax.jit(tx.update).lower(params, state).as_text()
  assert hlo.count("stablehlo.dynamic_slice") == 30
  assert hlo.count("stablehlo.slice") == 2  # "z" and "h": shapes that occur once
  u, new_state = jax.jit(tx.update)(params, state)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  jax.tree.map(np.testing.assert_array_equal, new_state.positions, state.positions)
  for k, x in params.items():
    np.testing.assert_array_equal(u[k], -0.1 * x)
  # the buffer: the runs of shapes (2, 3), (3, 3), (4, 3) in order of first appearance, then "z"
  velocity = new_state.inner_state[1].velocity["fused_float32"]
  runs = [params[f"p{i:03d}"].ravel() for r in range(3) for i in range(r, 30, 3)]
  np.testing.assert_array_equal(velocity, -0.1 * jnp.concatenate([*runs, params["z"]]))


def test_runs_of_scalars_empty_leaves_and_two_dtypes_identical():
  """Runs of scalars, of zero-size leaves and of one shape in two dtypes (each dtype's buffer has
  its own runs; the positions serve the longest, here 12 bfloat16 leaves)."""
  rng = np.random.default_rng(3)
  params = {f"s{i}": jnp.float32(rng.normal()) for i in range(5)}
  params.update({f"e{i}": jnp.zeros((0, 3)) for i in range(3)})
  params.update({f"f{i}": jnp.asarray(rng.normal(size=(2, 2)), jnp.float32) for i in range(4)})
  params.update({f"h{i}": jnp.asarray(rng.normal(size=(2, 2)), jnp.bfloat16) for i in range(12)})
  plain = optax.rmsprop(0.1, momentum=0.9)
  fused = nn.fuse_leaves(optax.rmsprop(0.1, momentum=0.9))
  s1, s2 = plain.init(params), fused.init(params)
  assert len(s2.positions) == 12
  for _ in range(2):
    u1, s1 = plain.update(params, s1)
    u2, s2 = jax.jit(fused.update)(params, s2)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), u2) == jax.tree.map(
      lambda x: (x.shape, x.dtype), u1
    )
    for k in u1:  # bfloat16: within one of its ulps (XLA may vectorise another length differently)
      rtol = 1e-2 if u1[k].dtype == jnp.bfloat16 else 1e-6
      np.testing.assert_allclose(
        np.asarray(u1[k], np.float32), np.asarray(u2[k], np.float32), rtol=rtol
      )


def test_many_leaves_concatenated_in_chunks_identical():
  """More than 64 leaves: the buffer is concatenated in chunks; the numbers do not change."""
  rng = np.random.default_rng(1)
  params = {
    f"p{i:03d}": jnp.asarray(rng.normal(size=(1 + i % 5,)), jnp.float32) for i in range(150)
  }
  plain, fused = optax.rmsprop(0.1, momentum=0.9), nn.fuse_leaves(optax.rmsprop(0.1, momentum=0.9))
  s1, s2 = plain.init(params), fused.init(params)
  for _ in range(3):
    u1, s1 = plain.update(params, s1)
    u2, s2 = jax.jit(fused.update)(params, s2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9), u1, u2)
  buf = s2.inner_state[0].nu["fused_float32"]
  by_shape = {}  # the buffer holds the leaves of one shape together, in order of first appearance
  for x in jax.tree.leaves(s1[0].nu):
    by_shape.setdefault(x.shape, []).append(x.ravel())
  runs = [x for run in by_shape.values() for x in run]
  np.testing.assert_allclose(buf, jnp.concatenate(runs), rtol=1e-6)


def test_constant_offsets_option():
  params = {f"p{i:03d}": jnp.full((2 + i % 3,), float(i)) for i in range(20)}
  tx = nn.fuse_leaves(nn.momentum(0.1, 0.9), runtime_offsets=False)
  state = tx.init(params)
  assert state.positions == {}
  hlo = jax.jit(tx.update).lower(params, state).as_text()
  assert "stablehlo.dynamic_slice" not in hlo
  ref = nn.fuse_leaves(nn.momentum(0.1, 0.9))
  u1, _ = jax.jit(tx.update)(params, state)
  u2, _ = jax.jit(ref.update)(params, ref.init(params))
  jax.tree.map(np.testing.assert_array_equal, u1, u2)


def test_bad_arguments():
  with pytest.raises(TypeError, match="inner"):
    nn.fuse_leaves(lambda g: g)
  with pytest.raises(TypeError, match="runtime_offsets"):
    nn.fuse_leaves(nn.momentum(0.1), runtime_offsets=1)


@pytest.mark.parametrize(
  "make, reads",
  [
    (lambda: nn.rmsprop(0.1, momentum=0.9), False),
    (lambda: optax.sgd(0.1, 0.9), False),
    (lambda: optax.adamw(1e-2, weight_decay=0.1), True),
    (lambda: optax.chain(optax.add_decayed_weights(0.05), nn.momentum(0.1, 0.9)), True),
  ],
)
def test_parameters_fused_only_when_read(make, reads):
  """The parameters are concatenated (a copy every step) only for an inner update that reads them;
  the others get the fused updates in their place, which they never read."""
  params = _tree()
  tx = nn.fuse_leaves(make())
  state = tx.init(params)
  base = nn.fuse_leaves(optax.identity())  # concatenates the updates only
  n_base = str(jax.make_jaxpr(base.update)(params, base.init(params), params)).count("concatenate")
  n = str(jax.make_jaxpr(tx.update)(params, state, params)).count("concatenate")
  assert n > 0 and (n > n_base) == reads
  u, _ = tx.update(params, state, params)
  ref, _ = make().update(params, make().init(params), params)
  for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(ref), strict=True):
    np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def test_shape_or_structure_dependent_inner_is_refused():
  # fan-in is lost on the fused buffer: fused, the (100, 10) kernel's step would be -1.0 per entry
  # where unwrapped it is -1 / sqrt(100)
  params = {"kernel": jnp.ones((100, 10)), "bias": jnp.ones(10)}
  fan_in = nn.fuse_leaves(optax.chain(nn.scale_by_fan_in(), optax.scale_by_learning_rate(1.0)))
  with pytest.raises(ValueError, match=r"cannot wrap optax\.chain.*leaf shapes"):
    fan_in.init(params)
  with pytest.raises(ValueError, match="cannot wrap"):  # also when init is traced
    jax.jit(fan_in.init)(params)
  kernels = lambda t: jax.tree.map(lambda x: x.ndim > 1, t)  # noqa: E731
  by_rank = nn.fuse_leaves(optax.masked(nn.momentum(0.1), kernels))
  with pytest.raises(ValueError, match=r"cannot wrap optax\.masked"):
    by_rank.init(params)
  by_tree = nn.fuse_leaves(optax.masked(nn.momentum(0.1), {"kernel": True, "bias": False}))
  with pytest.raises(ValueError, match=r"optax\.masked.*outside"):
    by_tree.init(params)
  # the caller may vouch for a transform (the check is skipped, the numbers are then its own)
  unchecked = nn.fuse_leaves(nn.scale_by_fan_in(), assume_elementwise=True)
  unchecked.init(params)
  with pytest.raises(TypeError, match="assume_elementwise"):
    nn.fuse_leaves(nn.momentum(0.1), assume_elementwise=1)


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax.chain(nn.sgd(0.1), nn.bold_driver()),  # needs value=
    lambda: nn.vsgd(),  # needs grad_fn=
    lambda: optax.rmsprop(0.1, momentum=0.9),
    lambda: optax.clip_by_global_norm(1.0),  # global, not per leaf
  ],
)
def test_elementwise_and_global_inner_pass_the_check(make):
  params = {"kernel": jnp.ones((100, 10)), "bias": jnp.ones(10), "s": jnp.ones([], jnp.bfloat16)}
  nn.fuse_leaves(make()).init(params)
