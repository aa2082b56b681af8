"""The ``nnml-optax`` command: compare (table, JSON, PNG), demos, and clear errors (exit code 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nnml_optax import cli

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


def test_compare_all_methods(tmp_path, capsys):
  from nnml_optax.cli import _compare

  rc = cli.main(["compare", "--steps", "6", "--eval-every", "3", "--out", str(tmp_path), "--quiet"])
  assert rc == 0
  out = capsys.readouterr().out
  for name in _compare.METHODS:
    assert name in out
  assert "train loss" in out and "steps to" in out and "state B/param" in out
  data = json.loads((tmp_path / "results.json").read_text())
  assert [r["method"] for r in data["results"]] == list(_compare.METHODS)
  for r in data["results"]:
    assert {
      "final_train_loss",
      "val_accuracy",
      "test_accuracy",
      "steps_to_target",
      "wall_time_s",
      "state_bytes_per_param",
      "curve",
    } <= set(r)
    assert r["curve"]["step"][-1] == 6
  png = tmp_path / "compare.png"
  assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_compare_deterministic(tmp_path):
  args = ["compare", "--methods", "sgd,rmsprop", "--steps", "5", "--no-plot", "--quiet"]
  cli.main([*args, "--out", str(tmp_path / "a")])
  cli.main([*args, "--out", str(tmp_path / "b")])
  a = json.loads((tmp_path / "a" / "results.json").read_text())["results"]
  b = json.loads((tmp_path / "b" / "results.json").read_text())["results"]
  assert [r["curve"] for r in a] == [r["curve"] for r in b]
  assert not (tmp_path / "a" / "compare.png").exists()


@pytest.mark.parametrize(
  "args,message",
  [
    (["compare", "--methods", "sgd,adamw"], "unknown method"),
    (["compare", "--steps", "0"], "--steps must be an integer >= 1"),
    (["compare", "--steps", "x"], "--steps must be an integer"),
    (["compare", "--batch-size", "-3"], "--batch-size"),
    (["demo", "nope"], "invalid choice"),
  ],
)
def test_bad_arguments_exit_2(args, message, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(args)
  assert e.value.code == 2
  assert message in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out_nonroot(tmp_path, capsys):
  ro = tmp_path / "ro"
  ro.mkdir(mode=0o500)
  with pytest.raises(SystemExit) as e:
    cli.main(["compare", "--out", str(ro / "x"), "--steps", "1"])
  assert e.value.code == 2


def test_unwritable_out(tmp_path, capsys):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(SystemExit) as e:
    cli.main(["compare", "--out", str(blocker / "sub"), "--steps", "1"])
  assert e.value.code == 2
  assert "not a writable directory" in capsys.readouterr().err


def test_console_script_no_traceback(tmp_path):
  exe = os.path.join(os.path.dirname(sys.executable), "nnml-optax")
  cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "nnml_optax.cli"]
  p = subprocess.run([*cmd, "compare", "--methods", "bogus"], capture_output=True, text=True)
  assert p.returncode == 2 and "Traceback" not in p.stderr and "unknown method" in p.stderr


@pytest.mark.parametrize(
  "name,steps",
  [("ravine", 20), ("rprop-minibatch", 20), ("whitening", None), ("momentum-schedule", 12)],
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
  assert "irprop-" in capsys.readouterr().out
