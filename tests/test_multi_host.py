"""Multi-process training (``examples/multi_host.py``): 2 processes x 2 fake CPU devices joined by
``jax.distributed`` over loopback, against 1 process with 4 devices.

One 2-process launch trains every transform (momentum, rmsprop with Nesterov momentum, full-batch
iRprop-, local gains, vSGD) with the parameters sharded over a 2 x 2 ``data`` x ``model`` mesh, saves
an orbax checkpoint half-way and replays the second half from it; beside it, 1 process with 4
devices trains the same; then 2 new processes restart one transform from the checkpoint. All use
gloo collectives, so the reductions run in the same order and the results are compared bit for
bit. Each process writes the shards it holds to an ``.npz``; the state is compared leaf by leaf in
tree order (not by field name), so the checks do not depend on the state classes."""

from __future__ import annotations

import importlib.util
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS, SAVE_AT, TIMEOUT = 6, 3, 480.0  # TIMEOUT: a hard limit per launch, against hangs
RESTARTED = "rmsprop"  # the transform also restarted in new processes (one, to bound the time)

_spec = importlib.util.spec_from_file_location("multi_host", ROOT / "examples" / "multi_host.py")
assert _spec is not None and _spec.loader is not None
multi_host = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(multi_host)
CASES = sorted(multi_host.CASES)

pytestmark = pytest.mark.slow


def _main(base: Path, name: str, **kwargs):
  """``multi_host.main`` writing into ``base/name``; it raises with every failed process's
  output if one fails or the launch outlives TIMEOUT."""
  common = dict(steps=STEPS, shard_params=True, model_axis=2, timeout=TIMEOUT, echo=False)
  multi_host.main(**common, **kwargs, out=str(base / name))


def _run_all(base: Path) -> None:
  """The 2-process run and the 1-process reference side by side, then the restart of one
  transform in 2 new processes, all writing into ``base``."""
  ckpt = str(base / "ckpt")
  with pytest.MonkeyPatch.context() as env, ThreadPoolExecutor(2) as pool:
    # a compilation cache private to this test: the restart loads what the first run compiled
    env.setenv("JAX_COMPILATION_CACHE_DIR", str(base / "jax-cache"))
    env.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    jobs = [
      pool.submit(_main, base, "multi", transforms=CASES, workdir=ckpt, save_at=SAVE_AT),
      pool.submit(_main, base, "single", transforms=CASES, processes=1, local_devices=4),
    ]
    for job in jobs:
      job.result()
    _main(base, "restart", transforms=[RESTARTED], workdir=ckpt, resume=True)


def _load(path: Path):
  """(info, leaves): ``leaves[i]`` is (global shape, [(index box, data) for each shard held])."""
  with np.load(path) as f:
    files = dict(f)
  leaves = []
  i = 0
  while f"L{i}_shape" in files:
    shards = []
    j = 0
    while f"L{i}_S{j}_data" in files:
      box = tuple(slice(int(a), int(b)) for a, b in files[f"L{i}_S{j}_index"])
      shards.append((box, files[f"L{i}_S{j}_data"]))
      j += 1
    leaves.append((tuple(int(n) for n in files[f"L{i}_shape"]), shards))
    i += 1
  info = {k: v for k, v in files.items() if not k.startswith("L")}
  return info, leaves


def _bits(a: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def _assert_same_shards(got, want_full, what: str):
  assert len(got) == len(want_full), (
    f"{what}: {len(got)} state/param leaves, expected {len(want_full)}"
  )
  for i, ((shape, shards), full) in enumerate(zip(got, want_full, strict=True)):
    assert shape == full.shape, f"{what}: leaf {i} has shape {shape}, expected {full.shape}"
    for box, data in shards:
      want = full[box]
      if not np.array_equal(_bits(data), _bits(want)):
        diff = np.max(np.abs(data.astype(np.float64) - want.astype(np.float64)))
        raise AssertionError(
          f"{what}: leaf {i} {shape} shard {box} differs (max |diff| {diff:.3g})"
        )


def _assemble(leaves):
  """Whole arrays from the shards one process holds (all of them in the 1-process run)."""
  out = []
  for shape, shards in leaves:
    full = np.zeros(shape, shards[0][1].dtype)
    seen = np.zeros(shape, bool)
    for box, data in shards:
      full[box], seen[box] = data, True
    assert seen.all(), "the 1-process run does not hold every element"
    out.append(full)
  return out


def _check_equals_one_process(runs: Path, case: str):
  """Parameters and optimizer state on each of the 2 processes equal, bit for bit, the slices of
  the 1-process run on 4 devices; the processes' shards together cover every element."""
  ref_info, ref = _load(runs / "single" / f"{case}.process0.npz")
  want = _assemble(ref)
  covered = [np.zeros(w.shape, bool) for w in want]
  for p in range(2):
    info, leaves = _load(runs / "multi" / f"{case}.process{p}.npz")
    _assert_same_shards(leaves, want, f"{case}, process {p}")
    np.testing.assert_array_equal(info["losses"], ref_info["losses"])
    assert len(info["losses"]) == STEPS
    for mask, (_, shards) in zip(covered, leaves, strict=True):
      for box, _ in shards:
        mask[box] = True
  assert all(m.all() for m in covered), f"{case}: the 2 processes do not hold every element"


def _kernel_index(leaves) -> int:
  return next(i for i, (shape, _) in enumerate(leaves) if shape == (32, 32))


def _check_sharding(runs: Path, case: str):
  """Every state array that mirrors a parameter has that parameter's sharding, after ``init`` and
  after training, on every process (checked inside each process with ``Sharding``)."""
  for p in range(2):
    info, leaves = _load(runs / "multi" / f"{case}.process{p}.npz")
    n_params = 4  # two kernels, two biases; each has a state array, checked after init and after
    assert int(info["mirrors"]) >= 2 * n_params, f"{case}: too few state arrays mirror the params"
    assert not info["sharding_errors"].size, "\n".join(info["sharding_errors"])
    # the sharded kernels: each process holds half the columns of the hidden layer
    shape, shards = leaves[_kernel_index(leaves)]
    held = [data.shape for _, data in shards]
    assert all(h[1] == shape[1] // 2 for h in held), (
      f"{case}: the hidden kernel is not split: {held}"
    )


def _assert_identical(got, want, what: str):
  """Two runs' shards on one process: the same boxes, the same bits."""
  assert len(got) == len(want), f"{what}: {len(got)} leaves, expected {len(want)}"
  for i, ((shape, a), (shape_want, b)) in enumerate(zip(got, want, strict=True)):
    assert shape == shape_want and [box for box, _ in a] == [box for box, _ in b]
    for (box, x), (_, y) in zip(a, b, strict=True):
      assert np.array_equal(_bits(x), _bits(y)), f"{what}: leaf {i} {shape} shard {box} differs"


def _check_resume(runs: Path, case: str):
  """The checkpoint saved after step SAVE_AT, read back by the 2 processes and trained to STEPS,
  gives bit for bit the uninterrupted run's parameters and state on every process."""
  assert (runs / "ckpt" / case / str(SAVE_AT)).is_dir()
  for p in range(2):
    _, straight = _load(runs / "multi" / f"{case}.process{p}.npz")
    _, resumed = _load(runs / "multi" / f"{case}.resumed.process{p}.npz")
    _assert_identical(resumed, straight, f"{case}, process {p}")


def _check_restart(runs: Path):
  """Two new processes started with ``--resume`` read the checkpoint at step SAVE_AT and reach the
  uninterrupted run's parameters and state at step STEPS, bit for bit, with the same losses."""
  for p in range(2):
    info, restarted = _load(runs / "restart" / f"{RESTARTED}.process{p}.npz")
    straight_info, straight = _load(runs / "multi" / f"{RESTARTED}.process{p}.npz")
    assert int(info["start"]) == SAVE_AT
    np.testing.assert_array_equal(info["losses"], straight_info["losses"][SAVE_AT:])
    _assert_identical(restarted, straight, f"{RESTARTED}, process {p}")


def test_two_processes_train_like_one(tmp_path):
  """One test, so that ``pytest -n 2`` runs the launches once (a module fixture would run once
  per worker). Every check runs for every transform; the failures are reported together."""
  _run_all(tmp_path)
  failures = []
  checks = [
    (check, case)
    for case in CASES
    for check in (_check_equals_one_process, _check_sharding, _check_resume)
  ]
  for check, *args in [*checks, (_check_restart,)]:
    try:
      check(tmp_path, *args)
    except AssertionError as e:
      failures.append(f"{check.__name__}{tuple(args)}: {e}")
  assert not failures, "\n".join(failures)


def test_launcher_stops_everyone_when_one_fails(tmp_path):
  """Process 1 exits with an error at once; process 0 would wait forever; the launcher stops it
  and reports both."""
  script = tmp_path / "worker.py"
  script.write_text(
    textwrap.dedent("""
      import sys, time
      if sys.argv[sys.argv.index("--process-id") + 1] == "1":
        sys.exit("process 1: broken")
      time.sleep(120)
    """)
  )
  t0 = time.monotonic()
  run = multi_host.launch(2, 1, [], timeout=60, logdir=tmp_path / "logs", echo=False, script=script)
  assert time.monotonic() - t0 < 30
  assert run.returncodes == [None, 1] and not run.ok and not run.timed_out
  report = run.report()
  assert "process 0: stopped" in report and "process 1: failed (exit 1)" in report
  assert "process 1: broken" in report


def test_launcher_timeout_stops_everyone(tmp_path):
  script = tmp_path / "worker.py"
  script.write_text("import time\ntime.sleep(120)\n")
  run = multi_host.launch(2, 1, [], timeout=1, logdir=tmp_path / "logs", echo=False, script=script)
  assert run.timed_out and run.returncodes == [None, None]
  assert "timed out" in run.report()


def test_unknown_transform_is_rejected():
  with pytest.raises(ValueError, match="transforms: unknown"):
    multi_host.main(transforms=("adam",))
