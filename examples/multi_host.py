"""Multi-host training: nnml_optax transforms in a multi-process JAX run, one process per host.

Every process calls ``jax.distributed.initialize``, sees all devices of the run in ``jax.devices()``
and reads only its own rows of each global batch (``jax.make_array_from_process_local_data``). The
model is a Flax NNX MLP. By default it is replicated and the batch split over every device
(data-parallel); with ``--shard-params`` its hidden layer is split over a ``model`` axis inside each
host and the batch over the ``data`` axis. ``tx.init`` creates each optimizer state array with its
parameter's sharding on every process (no gather), and orbax checkpoints with every process
writing and reading its own shards: a restart with the same number of processes continues bit for
bit.

Here the hosts are N processes on this machine, each with fake CPU devices
(``--xla_force_host_platform_device_count``), joined over loopback with CPU collectives through
gloo. The launcher starts them, waits with a timeout, stops them all if one fails, and reports::

  python examples/multi_host.py --processes 2 --steps 100
  python examples/multi_host.py --processes 2 --steps 50 --workdir /tmp/run           # checkpoint
  python examples/multi_host.py --processes 2 --steps 100 --workdir /tmp/run --resume

On a cluster, start one process per host instead (docs: the multi-host guide)::

  python examples/multi_host.py --coordinator HOST0:PORT --num-processes N --process-id I
  srun --ntasks-per-node=1 python examples/multi_host.py --process-id auto   # SLURM
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import nnml_optax as nn


class Case(NamedTuple):
  make: Callable[[], optax.GradientTransformationExtraArgs]
  full_batch: bool = False  # Rprop is a full-batch method (lecture 6e)
  grad_fn: bool = False  # vSGD-fd also reads the gradient function of the same mini-batch


CASES: dict[str, Case] = {
  "momentum": Case(lambda: nn.momentum(0.05, 0.9)),
  "rmsprop": Case(lambda: nn.rmsprop(1e-3, momentum=0.9, nesterov=True)),
  "irprop-": Case(lambda: nn.rprop(0.01), full_batch=True),
  "local_gains": Case(lambda: nn.local_gains(0.05)),
  "vsgd": Case(lambda: nn.vsgd(n0=2), grad_fn=True),
}


class MLP(nnx.Module):
  """A one-hidden-layer classifier; the partitioning metadata names each weight's mesh axes."""

  def __init__(self, d_in: int, hidden: int, d_out: int, *, shard: bool, rngs: nnx.Rngs):
    m = "model" if shard else None
    zeros = nnx.initializers.zeros_init()
    self.l1 = nnx.Linear(
      d_in,
      hidden,
      kernel_init=nnx.with_partitioning(nn.init.fan_in(), (None, m)),
      bias_init=nnx.with_partitioning(zeros, (m,)),
      rngs=rngs,
    )
    self.l2 = nnx.Linear(
      hidden,
      d_out,
      kernel_init=nnx.with_partitioning(nn.init.fan_in(), (m, None)),
      bias_init=nnx.with_partitioning(zeros, (None,)),
      rngs=rngs,
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.l2(jnp.tanh(self.l1(x)))


def make_data(seed: int, n: int = 2048, d: int = 32, classes: int = 10):
  """Gaussian clusters, one per class, generated identically on every host (no download)."""
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(classes, d)).astype(np.float32)
  y = rng.integers(0, classes, size=n).astype(np.int32)
  x = centers[y] + 1.5 * rng.normal(size=(n, d)).astype(np.float32)
  return x, y


# ----------------------------------------------------------------------------------------------
# one process of the run (a host)


def make_mesh(model_axis: int) -> Mesh:
  """A ``data`` x ``model`` mesh over every device of the run; each host's devices are consecutive,
  so the ``model`` axis stays inside a host and the ``data`` axis spans the hosts."""
  if jax.local_device_count() % model_axis:
    raise ValueError(
      f"model_axis={model_axis} must divide the {jax.local_device_count()} devices of a host"
    )
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  grid = np.array(devices).reshape(-1, model_axis)
  return Mesh(grid, ("data", "model"), axis_types=(AxisType.Auto, AxisType.Auto))


def local_rows(sharding: NamedSharding, n: int) -> np.ndarray:
  """The rows of an ``(n, ...)`` batch split over its first axis that this process holds, in the
  order ``jax.make_array_from_process_local_data`` expects them."""
  held = sharding.addressable_devices_indices_map((n,)).values()
  spans = sorted({index[0].indices(n)[:2] for index in held})
  return np.concatenate([np.arange(a, b) for a, b in spans])


def sharding_errors(opt_state: Any, params: Any) -> tuple[int, list[str]]:
  """Every optimizer state array that mirrors a parameter (same tree path suffix and shape) must
  have that parameter's sharding. Returns (number of mirrors, mismatches)."""
  named = [(jax.tree_util.keystr(k), p) for k, p in jax.tree.leaves_with_path(params)]
  found, errors = 0, []
  for key, leaf in jax.tree.leaves_with_path(opt_state):
    path = jax.tree_util.keystr(key)
    for ppath, p in named:
      if path.endswith(ppath) and leaf.shape == p.shape:
        found += 1
        if not leaf.sharding.is_equivalent_to(p.sharding, p.ndim):
          errors.append(f"{path}: {leaf.sharding} differs from its parameter's {p.sharding}")
  return found, errors


class Task(NamedTuple):
  """One transform's training, built once per process: the jitted step is compiled once and
  serves a fresh start, a resumed run and the resume check alike."""

  tx: optax.GradientTransformationExtraArgs
  step: Callable[..., tuple[Any, Any, jax.Array]]
  batch: Callable[[int], tuple[jax.Array, jax.Array]]


def make_task(
  name: str,
  graphdef: nnx.GraphDef,
  data: tuple[np.ndarray, np.ndarray],
  mesh: Mesh,
  *,
  seed: int,
  batch_size: int,
) -> Task:
  case, (x, y) = CASES[name], data
  tx = case.make()
  n_data = mesh.shape["data"]
  size = x.shape[0] // n_data * n_data if case.full_batch else batch_size
  if size % n_data:
    raise ValueError(f"batch_size={batch_size} must be a multiple of the data axis ({n_data})")
  sharding = NamedSharding(mesh, P("data"))
  mine = local_rows(sharding, size)
  per_epoch = x.shape[0] // size

  def batch(step: int) -> tuple[jax.Array, jax.Array]:
    """Global batch ``step``, a pure function of the step so that a resumed run sees the same
    data; this process reads only its rows of it."""
    epoch, i = divmod(step, per_epoch)
    rows = np.random.default_rng([seed, epoch]).permutation(x.shape[0])[i * size : (i + 1) * size]
    rows = rows[mine]
    local = jax.make_array_from_process_local_data
    return local(sharding, x[rows], (size, *x.shape[1:])), local(sharding, y[rows], (size,))

  def loss_fn(p, xb, yb):
    return optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, p)(xb), yb).mean()

  @jax.jit
  def step(p, s, xb, yb):
    loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
    extra = {"grad_fn": lambda q: jax.grad(loss_fn)(q, xb, yb)} if case.grad_fn else {}
    u, s = tx.update(g, s, p, **extra)
    return optax.apply_updates(p, u), s, loss

  return Task(tx, step, batch)


def init_state(tx: optax.GradientTransformation, params: Any, mesh: Mesh) -> Any:
  """``tx.init`` on the sharded parameters: every process creates its shards of each state array,
  with its parameter's sharding. A scalar step counter is created on one local device; it is
  made one replicated array of the run."""
  replicated = NamedSharding(mesh, P())
  return jax.tree.map(
    lambda a: a if isinstance(a.sharding, NamedSharding) else jax.device_put(a, replicated),
    tx.init(params),
  )


def fit(
  task: Task,
  params: Any,
  opt_state: Any,
  start: int,
  stop: int,
  *,
  mngr: ocp.CheckpointManager | None = None,
  save_at: int | None = None,
) -> tuple[Any, Any, list[float]]:
  """Global steps ``start`` to ``stop``; saves a checkpoint after step ``save_at`` (every process
  writes its own shards)."""
  losses = []
  for t in range(start, stop):
    params, opt_state, loss = task.step(params, opt_state, *task.batch(t))
    losses.append(float(loss))
    if mngr is not None and t + 1 == save_at:
      mngr.save(t + 1, args=ocp.args.StandardSave((params, opt_state)))
  if mngr is not None:
    mngr.wait_until_finished()
  return params, opt_state, losses


def restore(mngr: ocp.CheckpointManager, step: int, like: Any) -> Any:
  """Reads checkpoint ``step`` into arrays with the shapes, dtypes and shardings of ``like``; each
  process reads only its shards."""
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  return mngr.restore(step, args=ocp.args.StandardRestore(target))


def save_shards(path: Path, tree: Any, **info: Any) -> None:
  """Writes the shards of every array in ``tree`` that this process holds (the tree flattened, so
  that a reader compares by position), with their global index and shape."""
  arrays: dict[str, np.ndarray] = {}
  for i, leaf in enumerate(jax.tree.leaves(tree)):
    arrays[f"L{i}_shape"] = np.asarray(leaf.shape, np.int64)
    for j, shard in enumerate(leaf.addressable_shards):
      box = [sl.indices(n)[:2] for sl, n in zip(shard.index, leaf.shape, strict=True)]
      arrays[f"L{i}_S{j}_index"] = np.asarray(box, np.int64).reshape(-1, 2)
      arrays[f"L{i}_S{j}_data"] = np.asarray(shard.data)
  np.savez(path, **info, **arrays)


def same_shards(a: Any, b: Any) -> bool:
  """Whether the shards this process holds of two trees are equal bit for bit."""
  return all(
    np.asarray(x.data).tobytes() == np.asarray(y.data).tobytes()
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    for x, y in zip(u.addressable_shards, v.addressable_shards, strict=True)
  )


def run_process(args: argparse.Namespace) -> None:
  """One process of the run: joins the others, trains every transform, writes what it holds."""
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if args.process_id == "auto":  # SLURM, Open MPI, ...: jax reads the cluster from the environment
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(args.coordinator, args.num_processes, int(args.process_id))
  pid = jax.process_index()
  mesh = make_mesh(args.model_axis if args.shard_params else 1)
  data = make_data(args.seed)
  with jax.set_mesh(mesh):  # each process makes its own shards of the initial parameters
    graphdef, params0 = jax.jit(
      lambda: nnx.split(
        MLP(data[0].shape[1], 32, 10, shard=args.shard_params, rngs=nnx.Rngs(args.seed)),
        nnx.Param,
      )
    )()
  if pid == 0:
    layout = "parameter-sharded" if args.shard_params else "data-parallel"
    print(
      f"{jax.process_count()} processes x {jax.local_device_count()} devices, mesh "
      f"{dict(mesh.shape)}, {layout}",
      flush=True,
    )
  out = Path(args.out) if args.out else None
  for name in args.transforms:
    task = make_task(name, graphdef, data, mesh, seed=args.seed, batch_size=args.batch_size)
    opt_state0 = init_state(task.tx, params0, mesh)
    mirrors, errors = sharding_errors(opt_state0, params0)
    params, opt_state, start, mngr = params0, opt_state0, 0, None
    if args.workdir:
      mngr = ocp.CheckpointManager(Path(args.workdir).absolute() / name)
      if args.resume and mngr.latest_step() is not None:
        start = mngr.latest_step()
        params, opt_state = restore(mngr, start, (params0, opt_state0))
      elif mngr.latest_step() is not None:
        raise ValueError(f"{mngr.directory} holds checkpoints: pass --resume or a new --workdir")
    save_at = args.save_at or args.steps
    params, opt_state, losses = fit(
      task, params, opt_state, start, args.steps, mngr=mngr, save_at=save_at
    )
    found, more = sharding_errors(opt_state, params)
    info = {"losses": np.asarray(losses, np.float32), "start": start}
    if out:
      save_shards(
        out / f"{name}.process{pid}.npz",
        (params, opt_state),
        **info,
        mirrors=mirrors + found,
        sharding_errors=np.asarray(errors + more, dtype=str),
      )
    message = (
      (
        f"{name:12s} steps {start + 1}-{args.steps}: batch loss {losses[0]:.4f} -> "
        f"{losses[-1]:.4f}; state sharded like the params: {not errors + more}"
      )
      if losses
      else f"{name:12s} nothing to do: the checkpoint is at step {start}"
    )
    if mngr is not None and start < save_at < args.steps:
      # the resume check: read the checkpoint back in these processes and replay the rest
      again, state_again = restore(mngr, save_at, (params0, opt_state0))
      again, state_again, _ = fit(task, again, state_again, save_at, args.steps)
      if out:
        save_shards(out / f"{name}.resumed.process{pid}.npz", (again, state_again))
      same = same_shards((again, state_again), (params, opt_state))
      message += f"; resumed from step {save_at}: bit-identical {same}"
    if mngr is not None:
      mngr.close()
    if pid == 0:
      print(message, flush=True)
  jax.distributed.shutdown()


# ----------------------------------------------------------------------------------------------
# the local launcher


def free_port() -> int:
  """A TCP port free on the loopback interface now (the coordinator binds it moments later)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Launch(NamedTuple):
  returncodes: list[int | None]  # None: still running at the end, stopped by the launcher
  logs: list[Path]
  timed_out: bool

  @property
  def ok(self) -> bool:
    return all(c == 0 for c in self.returncodes)

  def report(self, tail: int = 20) -> str:
    """One line per process, with the end of its output where it did not finish cleanly."""
    lines = []
    for i, (code, log) in enumerate(zip(self.returncodes, self.logs, strict=True)):
      status = {0: "ok", None: "stopped"}.get(code, f"failed (exit {code})")
      lines.append(f"process {i}: {status}; output in {log}")
      if code != 0:
        lines += ["  | " + s for s in log.read_text(errors="replace").splitlines()[-tail:]]
    if self.timed_out:
      lines.append("timed out: the processes still running were stopped")
    return "\n".join(lines)


def launch(
  processes: int,
  local_devices: int,
  argv: Sequence[str],
  *,
  timeout: float,
  logdir: Path,
  echo: bool = True,
  script: str | Path = __file__,
) -> Launch:
  """Starts ``processes`` copies of this script as one run on 127.0.0.1, each with
  ``local_devices`` fake CPU devices, and waits until all exit, one fails or ``timeout`` seconds
  pass; then stops the rest (they would wait for the lost one forever). Process ``i`` writes to
  ``logdir/process<i>.log``; ``echo`` copies process 0's output here as it comes. ``script`` is
  the program each process runs (this file)."""
  coordinator = f"127.0.0.1:{free_port()}"
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
  flags.append(f"--xla_force_host_platform_device_count={local_devices}")  # before jax starts
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join(flags))
  logdir.mkdir(parents=True, exist_ok=True)
  logs = [logdir / f"process{i}.log" for i in range(processes)]
  procs = []
  for i, log in enumerate(logs):
    cmd = [sys.executable, str(script), "--coordinator", coordinator]
    cmd += ["--num-processes", str(processes), "--process-id", str(i), *argv]
    with open(log, "wb") as f:
      procs.append(subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT))
  deadline, timed_out = time.monotonic() + timeout, False
  with open(logs[0], errors="replace") as first:
    while True:
      if echo:
        sys.stdout.write(first.read())
        sys.stdout.flush()
      codes = [p.poll() for p in procs]
      if all(c == 0 for c in codes) or any(c not in (None, 0) for c in codes):
        break
      if time.monotonic() > deadline:
        timed_out = True
        break
      time.sleep(0.1)
    for p in procs:
      if p.poll() is None:
        p.terminate()
    for p in procs:
      try:
        p.wait(5)
      except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if echo:
      sys.stdout.write(first.read())
  return Launch(
    [None if c is None else p.returncode for p, c in zip(procs, codes, strict=True)],
    logs,
    timed_out,
  )


def main(
  steps: int = 100,
  seed: int = 0,
  *,
  processes: int = 2,
  local_devices: int = 2,
  transforms: Sequence[str] = ("rmsprop",),
  shard_params: bool = False,
  model_axis: int = 2,
  batch_size: int = 64,
  workdir: str | None = None,
  save_at: int | None = None,
  resume: bool = False,
  out: str | None = None,
  timeout: float = 600.0,
  echo: bool = True,
) -> dict[str, list[float]]:
  """Runs ``processes`` processes on this machine; returns process 0's batch losses per transform.

  Raises:
    ValueError: an unknown transform name.
    RuntimeError: a process failed or the run timed out (the message has their output).
  """
  unknown = sorted(set(transforms) - set(CASES))
  if unknown:
    raise ValueError(f"transforms: unknown {unknown}; choose from {sorted(CASES)}")
  outdir = Path(out or tempfile.mkdtemp(prefix="multi_host-")).absolute()
  outdir.mkdir(parents=True, exist_ok=True)
  argv = ["--steps", str(steps), "--seed", str(seed), "--batch-size", str(batch_size)]
  argv += ["--model-axis", str(model_axis), "--out", str(outdir), "--transforms", *transforms]
  argv += ["--shard-params"] * shard_params + ["--resume"] * resume
  argv += ["--workdir", str(Path(workdir).absolute())] if workdir else []
  argv += ["--save-at", str(save_at)] if save_at else []
  run = launch(processes, local_devices, argv, timeout=timeout, logdir=outdir / "logs", echo=echo)
  if not run.ok:  # the logs stay where the report says
    raise RuntimeError("the multi-process run failed:\n" + run.report())
  losses = {}
  for name in transforms:
    with np.load(outdir / f"{name}.process0.npz") as f:
      losses[name] = f["losses"].tolist()
  if out is None:
    shutil.rmtree(outdir)
  return losses


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--processes", type=int, default=2, help="launcher: processes on this machine")
  ap.add_argument("--local-devices", type=int, default=2, help="launcher: fake CPU devices each")
  ap.add_argument("--timeout", type=float, default=600.0, help="launcher: seconds for the run")
  ap.add_argument("--process-id", help="run as one process of a run: its index I, or 'auto'")
  ap.add_argument("--num-processes", type=int, help="with --process-id I: processes in the run")
  ap.add_argument("--coordinator", help="with --process-id I: HOST:PORT where process 0 listens")
  ap.add_argument("--transforms", nargs="+", default=["rmsprop"], choices=sorted(CASES))
  ap.add_argument("--steps", type=int, default=100)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--batch-size", type=int, default=64, help="global batch, over all hosts")
  ap.add_argument("--shard-params", action="store_true", help="split the hidden layer too")
  ap.add_argument("--model-axis", type=int, default=2, help="with --shard-params: its size")
  ap.add_argument("--workdir", help="checkpoint directory, on a filesystem every host sees")
  ap.add_argument("--save-at", type=int, help="with --workdir: the step to save at (default last)")
  ap.add_argument("--resume", action="store_true", help="with --workdir: continue from the latest")
  ap.add_argument("--out", help="a directory where every process writes the arrays it holds")
  args = ap.parse_args(argv)
  if args.process_id not in (None, "auto") and not (args.coordinator and args.num_processes):
    ap.error("--process-id I needs --coordinator HOST:PORT and --num-processes N")
  return args


if __name__ == "__main__":
  a = parse()
  if a.process_id is not None:
    run_process(a)
  else:
    try:
      main(
        a.steps,
        a.seed,
        processes=a.processes,
        local_devices=a.local_devices,
        transforms=a.transforms,
        shard_params=a.shard_params,
        model_axis=a.model_axis,
        batch_size=a.batch_size,
        workdir=a.workdir,
        save_at=a.save_at,
        resume=a.resume,
        out=a.out,
        timeout=a.timeout,
      )
    except RuntimeError as e:
      sys.exit(str(e))
