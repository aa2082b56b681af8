"""The README: its usage example runs as written (compiled), its test command is the one CI runs,
it stays short, and its links into the documentation resolve."""

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
  assert "@nnx.jit" in code  # the first code a user copies runs compiled, at full speed
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


def test_ci_builds_the_docs_as_the_readme_says():
  block = README.split("## Documentation", 1)[1]
  cmd = re.search(r"```bash\n(.*?)```", block, re.S).group(1).strip()
  build = cmd.split("&&")[-1].strip()
  assert build == "python -m sphinx -W -b html docs docs/_build/html"
  ci = (ROOT / ".ci" / "run").read_text()
  assert "pip install --quiet -e '.[docs]'" in ci
  assert "python -m sphinx -W --keep-going -q -b html docs docs/_build/html" in ci.splitlines()


def test_readme_is_the_essentials():
  prose = re.sub(r"```.*?```", " ", README, flags=re.S)
  words = len(re.findall(r"[A-Za-z0-9][\w'’.-]*", prose))
  code_words = sum(len(b.split()) for b in re.findall(r"```.*?```", README, flags=re.S))
  assert words + code_words <= 1200, f"README has {words + code_words} words; at most 1,200"
  assert not re.search(r"\bSPEC\b|\bTV-\d", README), "the README cites internal notes"


def _github_slug(heading: str) -> str:
  """The anchor GitHub gives a markdown heading (lowercase, punctuation dropped, spaces -> -)."""
  text = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*]{1,2}", "", heading.strip()).lower()
  return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_readme_links_resolve():
  links = re.findall(r"\]\(([^)\s]+)\)", README)
  assert any(link.startswith("docs/lecture.md#") for link in links)
  for link in links:
    if re.match(r"[a-z]+://", link):
      continue
    path, _, anchor = link.partition("#")
    target = ROOT / path
    assert target.exists(), f"README links to a missing file: {link}"
    if anchor:
      headings = re.findall(r"^#{1,6} (.+)$", target.read_text(), re.M)
      slugs = {_github_slug(h) for h in headings}
      assert anchor in slugs, f"README link {link}: no heading with that anchor in {path}"
