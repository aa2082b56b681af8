"""The README's usage example runs as written, and its test command is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ten_line_example_runs():
  section = README.split("## Ten lines", 1)[1]
  code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  assert len([line for line in code.splitlines() if line.strip()]) <= 16
  namespace: dict = {}
  exec(compile(code, "README.md", "exec"), namespace)
  assert float(namespace["loss"]) < 2.3  # learned something in five epochs


def test_ci_runs_the_readme_test_command():
  block = README.split("Install and run the tests", 1)[1]
  cmd = re.search(r"```bash\n(.*?)```", block, re.S).group(1).strip()
  test_cmd = cmd.split("&&")[-1].strip()
  ci = (ROOT / ".ci" / "run").read_text()
  assert test_cmd in ci.splitlines()
  assert "pip install -e '.[test,examples]'" in cmd and "pip install -q" not in cmd


def test_main_job_command_is_compare():
  block = README.split("## Set up", 1)[1].split("Install and run the tests", 1)[0]
  assert "nnml-optax compare" in block
