"""Smoke tests: the benchmark scripts run end to end on tiny trees (numbers are not checked)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(autouse=True, scope="module")
def _bench_on_path():
  sys.path.insert(0, str(ROOT / "benchmarks"))
  yield
  sys.path.remove(str(ROOT / "benchmarks"))


def test_step_time_smoke(tmp_path):
  import step_time

  rc = step_time.main(
    [
      "--leaves",
      "4",
      "--params",
      "4096",
      "--iters",
      "2",
      "--compile-leaves",
      "8",
      "--only",
      "rprop(irprop-)",
      "--only",
      "momentum",
      "--out",
      str(tmp_path),
      "--machine",
      "smoke",
    ]
  )
  assert rc == 0
  data = json.loads((tmp_path / "smoke.json").read_text())
  names = [r["name"] for r in data["rows"]]
  assert "rprop(irprop-)" in names and "momentum" in names
  for r in data["rows"]:
    assert "skipped" not in r, r
    assert r["ms"] > 0 and r["optax_ms"] > 0 and r["roofline"] > 0 and "compile_ratio" in r
  assert (tmp_path / "smoke.md").read_text().count("|") > 10


def test_every_case_builds():
  import nnml_optax as nn

  from cases import CASES

  for case in CASES:
    case.ours(), case.theirs()
  assert len({c.name for c in CASES}) == len(CASES)
  del nn


def test_gpu_script_runs_on_cpu(tmp_path):
  import gpu

  assert (
    gpu.main(
      ["--params", "8000", "--leaves", "2", "--iters", "1", "--reps", "1", "--out", str(tmp_path)]
    )
    == 0
  )
  assert "copy_bandwidth_GBps" in json.loads((tmp_path / "gpu.json").read_text())["meta"]


def test_whole_step_smoke(tmp_path):
  """benchmarks/whole_step.py (forward + backward + update, ours vs optax) runs end to end."""
  import whole_step

  out = tmp_path / "rows.json"
  args = ["--hidden", "16", "--rounds", "1", "--iters", "1", "--only", "sgd", "--json", str(out)]
  assert whole_step.main(args) == 0
  rows = json.loads(out.read_text())["rows"]
  assert [r["name"] for r in rows] == ["sgd"] and rows[0]["ours/optax"]["median"] > 0


def test_same_program_and_compile_phases_smoke(capsys):
  import compile_phases
  import same_program

  # this checkout against itself: the same program, whatever the case
  assert same_program.main(["--against", str(ROOT), "--leaves", "3", "--only", "rmsprop"]) == 0
  out = capsys.readouterr().out
  assert "rmsprop" in out and "same" in out and "DIFFERENT" not in out
  assert (
    compile_phases.main(
      ["--against", str(ROOT), "--leaves", "3", "--rounds", "1", "--only", "momentum"]
    )
    == 0
  )
  assert "ours/other" in capsys.readouterr().out
