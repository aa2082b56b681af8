"""The ``nnml-optax`` command: the fair race end to end (table, JSON, PNGs), the checks that exit 2
before any training, results kept per method, determinism, the demos."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nnml_optax import cli
from nnml_optax.cli import _compare, _tune

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

TINY = ["--epochs", "0.2", "--quiet"]  # 2 mini-batch updates, 1 full-batch update per run


def test_compare_end_to_end(tmp_path, capsys):
  rc = cli.main(["compare", "--methods", "sgd,irprop-", *TINY, "--out", str(tmp_path)])
  assert rc == 0
  out = capsys.readouterr().out
  for text in ("whitened:", "raw:", "epochs to 0.01", "epochs to 0.1", "lr=", "Lecture 6e"):
    assert text in out
  data = json.loads((tmp_path / "results.json").read_text())
  meta = data["meta"]
  assert set(meta["versions"]) >= {"jax", "jaxlib", "optax", "flax", "nnml_optax"}
  assert meta["device"]["kind"] and meta["date"] and "compare" in meta["command"]
  assert meta["seeds"] == [0, 1] and meta["problems"]["raw"]["n_train"] == 1079
  for problem in ("whitened", "raw"):
    rows = data["results"][problem]
    assert [r["method"] for r in rows] == ["sgd", "irprop-"]
    sgd, rprop = rows
    # the same budget in examples: 0.2 epochs = 215 examples = 2 mini-batches; a full-batch
    # update (1079 examples) is over it, and one is still taken
    assert sgd["updates"] == 2 and sgd["examples_per_update"] == 100
    assert rprop["updates"] == 1 and rprop["examples_per_update"] == 1079
    assert sgd["hypers"]["lr"] in _compare.METHODS["sgd"].grid["lr"]
    assert len(sgd["grid"]) == 5 and len(sgd["curve"]["train_loss_mean"]) == 2
    assert sgd["final_train_loss"]["min"] <= sgd["final_train_loss"]["mean"]
  for png in ("compare-whitened.png", "compare-raw.png"):
    assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / png).stat().st_size > 20_000
  assert "Lecture 6e" in (tmp_path / "results.txt").read_text()


def test_compare_deterministic(tmp_path):
  args = ["compare", "--problem", "whitened", "--methods", "sgd", "--no-plot", *TINY]
  assert cli.main([*args, "--out", str(tmp_path / "a")]) == 0
  assert cli.main([*args, "--out", str(tmp_path / "b")]) == 0
  a = json.loads((tmp_path / "a" / "results.json").read_text())["results"]["whitened"]
  b = json.loads((tmp_path / "b" / "results.json").read_text())["results"]["whitened"]
  assert a[0]["curve"] == b[0]["curve"] and a[0]["grid"] == b[0]["grid"]
  assert not (tmp_path / "a" / "compare-whitened.png").exists()


def test_results_written_per_method(tmp_path, monkeypatch, capsys):
  """An interruption during the second method keeps the first one's results on disk."""
  real, calls = _tune.prepare, []

  def prepare(method, *args, **kwargs):
    calls.append(method.name)
    if len(calls) == 2:
      raise KeyboardInterrupt
    return real(method, *args, **kwargs)

  monkeypatch.setattr(_tune, "prepare", prepare)
  args = ["compare", "--problem", "whitened", "--methods", "sgd,rmsprop", "--no-plot", *TINY]
  assert cli.main([*args, "--out", str(tmp_path)]) == 130
  assert "interrupted" in capsys.readouterr().out
  rows = json.loads((tmp_path / "results.json").read_text())["results"]["whitened"]
  assert [r["method"] for r in rows] == ["sgd"] and rows[0]["curve"]["train_loss_mean"]


def test_tune_vmaps_grid_and_seeds():
  """One jitted run covers every grid point x seed; each seed matches its own run."""
  p = _compare.load_problem("whitened", 0)
  m = _compare.METHODS["rmsprop"]
  m = _tune.Method(m.name, m.help, m.make, {"lr": (0.001, 0.01)})
  both = _tune.tune(m, p, epochs=0.3, batch_size=100, seeds=[0, 1])
  one = _tune.tune(m, p, epochs=0.3, batch_size=100, seeds=[1])
  assert both["train_loss"].shape == (2, 2, 2)
  np.testing.assert_allclose(both["train_loss"][:, 1], one["train_loss"][:, 0], rtol=1e-5)
  assert both["chosen"] == 1  # 0.01 learns faster than 0.001 in 3 updates
  assert not np.allclose(both["train_loss"][:, 0], both["train_loss"][:, 1])  # seeds differ


def test_pick_and_plan():
  ev = np.array([0, 10, 20])
  loss = np.array(
    [
      [[2.0, 0.5, 0.001], [2.0, 0.6, 0.002]],  # both seeds reach 0.01 at 20
      [[2.0, 0.005, 0.0001], [2.0, 0.5, 0.001]],  # one at 10, one at 20: mean 15, best
      [[2.0, 0.001, np.nan], [2.0, 0.001, 0.0]],  # diverges: last
    ]
  )
  assert _tune.pick({"train_loss": loss, "eval_updates": ev}, 0.01) == 1
  assert _tune.pick({"train_loss": loss[[0, 2]], "eval_updates": ev}, 1e-9) == 0
  p = _compare.load_problem("whitened", 0)
  fb, mb = _compare.METHODS["irprop-"], _compare.METHODS["sgd"]
  assert _tune.plan(p, fb, epochs=3, batch_size=100) == _tune.Plan(3, 1079, 1)
  plan = _tune.plan(p, mb, epochs=3, batch_size=100)
  assert (plan.updates, plan.chunk, plan.eval_updates()[-1]) == (32, 11, 32)


@pytest.mark.parametrize(
  "args,message",
  [
    (["--methods", "sgd,adamw"], "unknown method"),
    (["--epochs", "0"], "--epochs must be a number > 0"),
    (["--epochs", "nan"], "--epochs must be a number > 0"),
    (["--batch-size", "-3"], "--batch-size"),
    (["--seeds", "0"], "--seeds must be an integer >= 1"),
    (["--x", "minutes"], "invalid choice"),
    (["--batch-size", "5000", "--methods", "sgd"], "--batch-size 5000 is larger than"),
    (["--batch-size", "2000", "--methods", "local_gains,sgd"], "larger than the training set"),
    (["--epochs", "0.05"], "less than one mini-batch of 100"),
  ],
)
def test_bad_arguments_exit_2_before_training(args, message, capsys, monkeypatch, tmp_path):
  monkeypatch.setattr(_tune, "prepare", lambda *a, **k: pytest.fail("trained"))
  with pytest.raises(SystemExit) as e:
    cli.main(["compare", *args, "--out", str(tmp_path)])
  assert e.value.code == 2
  assert message in capsys.readouterr().err


def _npz(tmp_path, name="d.npz", **arrays):
  path = tmp_path / name
  np.savez(path, **arrays)
  return path


def _xy(n=40, d=5, classes=3):
  rng = np.random.default_rng(0)
  return rng.normal(size=(n, d)).astype(np.float32), np.arange(n) % classes


@pytest.mark.parametrize(
  "arrays,message",
  [
    (lambda x, y: {"x": x}, "missing array(s) ['y']"),
    (lambda x, y: {"x": x, "y": y, "X_val": x}, "unexpected array(s) ['X_val']"),
    (lambda x, y: {"x": x[0], "y": y}, "x must be 2-D"),
    (lambda x, y: {"x": x.astype(np.complex64), "y": y}, "x must hold real numbers"),
    (lambda x, y: {"x": np.where(x > 2, np.nan, x), "y": y}, "non-finite entries"),
    (lambda x, y: {"x": x, "y": y.astype(np.float32)}, "y must hold integer class labels"),
    (lambda x, y: {"x": x, "y": y[:-1]}, "y must have shape (40,)"),
    (lambda x, y: {"x": x, "y": y - 1}, "negative label"),
    (lambda x, y: {"x": x, "y": 0 * y}, "at least 2 classes"),
    (lambda x, y: {"x": x, "y": y, "x_val": x}, "x_val and y_val come together"),
    (lambda x, y: {"x": x, "y": y, "x_val": x[:, :2], "y_val": y}, "x_val has 2 features"),
    (lambda x, y: {"x": x, "y": y, "x_val": x, "y_val": y + 5}, "unseen in y"),
  ],
)
def test_bad_data_exit_2(arrays, message, tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(_tune, "prepare", lambda *a, **k: pytest.fail("trained"))
  path = _npz(tmp_path, **arrays(*_xy()))
  with pytest.raises(SystemExit) as e:
    cli.main(["compare", "--data", str(path), "--out", str(tmp_path / "o")])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert "--data" in err and message in err


def test_unreadable_and_pickled_data_exit_2(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(_tune, "prepare", lambda *a, **k: pytest.fail("trained"))
  cases = {}
  bad = tmp_path / "not.npz"
  bad.write_bytes(b"this is not a zip archive")
  cases[bad] = "is not an .npz archive"
  cases[tmp_path / "absent.npz"] = "cannot be read (No such file"
  x, y = _xy()
  objects = np.empty(len(y), dtype=object)
  objects[:] = [int(v) for v in y]
  cases[_npz(tmp_path, "pickled.npz", x=x, y=objects)] = "holds Python objects (pickled)"
  for path, message in cases.items():
    with pytest.raises(SystemExit) as e:
      cli.main(["compare", "--data", str(path), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err, path
  with pytest.raises(SystemExit) as e:
    cli.main(["compare", "--data", str(bad), "--problem", "raw", "--out", str(tmp_path / "o")])
  assert "exclude each other" in capsys.readouterr().err


def test_user_data_is_raced(tmp_path, capsys):
  x, y = _xy(n=60, d=7, classes=3)
  x[y == 1] += 2.0
  path = _npz(tmp_path, x=x, y=y, x_test=x[:9], y_test=y[:9])
  args = ["compare", "--data", str(path), "--methods", "rmsprop", "--batch-size", "16"]
  assert cli.main([*args, "--epochs", "1", "--no-plot", "--quiet", "--out", str(tmp_path)]) == 0
  data = json.loads((tmp_path / "results.json").read_text())
  assert data["meta"]["problems"]["data"]["n_train"] == 48  # 20% held out for validation
  (row,) = data["results"]["data"]
  assert row["updates"] == 3 and row["test_accuracy"] is not None


@pytest.mark.parametrize(
  "args", [["compare", "--quiet"], ["compare", "--no-plot"], ["demo", "ravine"]]
)
def test_missing_extra_exit_2(args, tmp_path, capsys, monkeypatch):
  for module in ("flax", "matplotlib"):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
  with pytest.raises(SystemExit) as e:
    cli.main([*args, "--out", str(tmp_path)])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert "pip install 'nnml-optax[examples]'" in err and "flax" in err


def test_unwritable_out(tmp_path, capsys):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(SystemExit) as e:
    cli.main(["compare", "--out", str(blocker / "sub")])
  assert e.value.code == 2
  assert "not a writable directory" in capsys.readouterr().err


def test_version_and_python_m(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["--version"])
  assert e.value.code == 0
  import nnml_optax

  assert capsys.readouterr().out.strip() == f"nnml-optax {nnml_optax.__version__}"
  p = subprocess.run(
    [sys.executable, "-m", "nnml_optax", "compare", "--methods", "bogus"],
    capture_output=True,
    text=True,
  )
  assert p.returncode == 2 and "Traceback" not in p.stderr and "unknown method" in p.stderr


def test_demo_registry_is_one_line_per_demo(tmp_path, monkeypatch, capsys):
  import types

  seen = {}

  def demo(out, steps=None, seed=0):
    seen.update(out=out, steps=steps, seed=seed)
    return {}

  monkeypatch.setitem(sys.modules, "fake_demo", types.SimpleNamespace(main=demo))
  monkeypatch.setitem(cli.DEMOS, "fake", "fake_demo:main")
  assert cli.main(["demo", "fake", "--out", str(tmp_path), "--steps", "7", "--seed", "3"]) == 0
  assert seen == {"out": tmp_path, "steps": 7, "seed": 3}


@pytest.mark.parametrize(
  "name,steps",
  [
    ("ravine", 20),
    ("rprop-minibatch", 20),
    ("whitening", None),
    ("momentum-schedule", 12),
    ("full-batch", 10),
  ],
)
def test_demos(name, steps, tmp_path, capsys):
  args = ["demo", name, "--out", str(tmp_path)] + (["--steps", str(steps)] if steps else [])
  assert cli.main(args) == 0
  out = capsys.readouterr().out
  assert (tmp_path / f"{name}.png").stat().st_size > 5_000
  assert out.count("\n") >= 3


def test_whitening_demo_numbers(tmp_path):
  from nnml_optax.cli import _demos

  numbers = _demos.whitening(tmp_path)
  assert numbers["raw (101,101)->2, (101,99)->0"] > 1e4
  assert numbers["shifted (1,1)->2, (1,-1)->0"] == pytest.approx(1.0)
  assert numbers["PCA-whitened"] == pytest.approx(1.0, abs=0.05)  # eps shrinkage


def test_rprop_minibatch_demo_numbers(tmp_path):
  from nnml_optax.cli import _demos

  numbers = _demos.rprop_minibatch(tmp_path, steps=10)
  assert abs(numbers["SGD lr=0.1"]) < 1e-6
  assert numbers["Rprop (iRprop-, step 0.01)"] == pytest.approx(-0.2079890176, rel=1e-5)
  assert abs(numbers["rmsprop lr=0.01"]) < abs(numbers["Rprop (iRprop-, step 0.01)"])


def test_methods_listing(capsys):
  assert cli.main(["methods"]) == 0
  out = capsys.readouterr().out
  assert "irprop-" in out and "grid: lr in" in out and "factor in" in out


def test_x_seconds(tmp_path, capsys):
  args = ["compare", "--problem", "whitened", "--methods", "irprop-", "--x", "seconds"]
  assert cli.main([*args, "--no-plot", *TINY, "--out", str(tmp_path)]) == 0
  assert "s to 0.01" in capsys.readouterr().out
  (row,) = json.loads((tmp_path / "results.json").read_text())["results"]["whitened"]
  assert row["seconds_per_update"] > 0
  assert _compare.x_of(row, "seconds", 1079)[-1] == row["updates"] * row["seconds_per_update"]
