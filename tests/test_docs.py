"""The documentation site: its code runs, it builds, every public name has an API entry, its links
resolve, and a browser shows it offline with the math rendered.

Two groups, run in two places so that nothing runs twice in CI:

* ``test_page_code_runs[page]`` runs every Python code block of a page under ``docs/`` in a fresh
  process (blocks of a page share one namespace, like a notebook); a block written as
  ``{code-block} python`` with ``:class: not-run`` (a cluster launch, say) is skipped. It needs
  only the test extras and runs in the main suite.
* ``test_site_*`` read the built HTML. ``.ci/run`` builds the site once with the README's command
  (``python -m sphinx -W -b html docs docs/_build/html``, warnings as errors) and runs these tests
  with ``NNML_DOCS_HTML`` pointing at it and ``NNML_DOCS_REQUIRED=1`` (a missing Sphinx or
  Chromium is then a failure). Elsewhere they build the site themselves into a temporary folder,
  with ``-W``, and are skipped when Sphinx is not installed (as in the main suite of CI).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import nnml_optax

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REQUIRED = os.environ.get("NNML_DOCS_REQUIRED") == "1"
NAMESPACES = ("init", "schedules", "preprocessing", "data")

# ------------------------------------------------------------------------------------------------
# code blocks
# ------------------------------------------------------------------------------------------------

_FENCE = re.compile(
  r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)


def code_blocks(text: str) -> list[tuple[int, str, bool]]:
  """The Python blocks of a MyST page: ``(line, code, run)``; ``run`` is False for ``not-run``."""
  out = []
  for m in _FENCE.finditer(text):
    info, body = m["info"].strip(), m["body"]
    line = text.count("\n", 0, m.start("body")) + 1
    if info in ("python", "py"):
      out.append((line, body, True))
    elif re.fullmatch(r"\{code-block\}\s+(python|py)", info):
      options = re.findall(r"^:([\w-]+):[ \t]*(.*)$", body, re.M)
      run = not any(k == "class" and "not-run" in v.split() for k, v in options)
      code = re.sub(r"\A(?::[\w-]+:.*\n)*\n?", "", body)
      out.append((line, code, run))
  return out


def _pages() -> list[Path]:
  """The site's pages (not ``_build``, ``_static``, ``_ext``)."""
  return sorted(
    p
    for p in DOCS.rglob("*.md")
    if not any(part.startswith("_") for part in p.relative_to(DOCS).parts)
  )


_RUNNER = """
import json, sys
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for block in blocks:
  exec(compile(block["code"], block["where"], "exec"), namespace)
"""


def test_code_block_parser():
  page = (
    "text\n```python\nx = 1\n```\n```bash\nls\n```\n"
    "```{code-block} python\n:class: not-run\n\njax.distributed.initialize()\n```\n"
    "```{code-block} python\n:caption: c\n\ny = 2\n```\n"
  )
  assert code_blocks(page) == [
    (3, "x = 1\n", True),
    (9, "jax.distributed.initialize()\n", False),
    (14, "y = 2\n", True),
  ]


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_runs(page: Path, tmp_path: Path):
  rel = page.relative_to(ROOT)
  blocks = [
    {"where": f"{rel}, code block at line {line}", "code": code}
    for line, code, run in code_blocks(page.read_text())
    if run
  ]
  if not blocks:
    pytest.skip(f"{rel} has no Python code to run")
  (tmp_path / "blocks.json").write_text(json.dumps(blocks))
  (tmp_path / "runner.py").write_text(_RUNNER)
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # as a user runs it
  env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
  env["MPLBACKEND"] = "Agg"
  proc = subprocess.run(
    [sys.executable, "runner.py", "blocks.json"],
    cwd=tmp_path,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, (
    f"{rel}: a code block failed\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
  )


# ------------------------------------------------------------------------------------------------
# the built site
# ------------------------------------------------------------------------------------------------


def _unavailable(why: str):
  if REQUIRED:
    pytest.fail(why + " (NNML_DOCS_REQUIRED=1)")
  pytest.skip(why)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
  given = os.environ.get("NNML_DOCS_HTML")
  if given:
    out = Path(given).resolve()
    assert (out / "index.html").is_file(), f"NNML_DOCS_HTML={given} holds no built site"
    return out
  try:
    import myst_parser  # noqa: F401
    import sphinx  # noqa: F401
  except ImportError:
    _unavailable("sphinx/myst-parser not installed: pip install -e '.[docs]'")
  out = tmp_path_factory.mktemp("html")
  cmd = [
    sys.executable,
    "-m",
    "sphinx",
    "-W",
    "--keep-going",
    "-q",
    "-b",
    "html",
    str(DOCS),
    str(out),
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, f"docs build failed (warnings are errors):\n{proc.stderr[-8000:]}"
  return out


def _html_pages(site: Path) -> list[Path]:
  return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


def test_site_builds(site: Path):
  pages = {p.relative_to(site).as_posix() for p in _html_pages(site)}
  for name in ("index", "getting_started", "lecture", "api", "benchmarks", "gallery", "changelog"):
    assert f"{name}.html" in pages, f"{name}.html missing from the built site"


def _inventory(site: Path) -> dict[str, str]:
  """``objects.inv`` as ``{name: role}`` (format: four header lines, then zlib-compressed text)."""
  raw = (site / "objects.inv").read_bytes()
  body = raw.split(b"\n", 4)[4]
  entries = {}
  for line in zlib.decompress(body).decode().splitlines():
    m = re.match(r"(?x)(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
    if m:
      entries[m.group(1)] = m.group(2)
  return entries


def test_site_api_lists_every_public_name(site: Path):
  entries = _inventory(site)
  expected = [f"nnml_optax.{name}" for name in nnml_optax.__all__]
  for ns in NAMESPACES:
    module = getattr(nnml_optax, ns)
    expected += [f"nnml_optax.{ns}.{name}" for name in module.__all__]
  missing = [name for name in expected if name not in entries]
  assert not missing, f"public names without an API entry in docs/api.md: {missing}"
  for ns in NAMESPACES:
    assert entries[f"nnml_optax.{ns}"] == "py:module"


class _Links(HTMLParser):
  def __init__(self):
    super().__init__()
    self.ids: set[str] = set()
    self.links: list[tuple[str, str]] = []  # (tag, url)

  def handle_starttag(self, tag, attrs):
    a = dict(attrs)
    for key in ("id", "name"):
      if a.get(key):
        self.ids.add(a[key])
    for key in ("href", "src"):
      if a.get(key) is not None:
        self.links.append((tag, a[key]))


def _parse(path: Path) -> _Links:
  p = _Links()
  p.feed(path.read_text(encoding="utf-8"))
  return p


def test_site_internal_links_resolve_and_nothing_loads_from_the_network(site: Path):
  parsed = {p: _parse(p) for p in _html_pages(site)}
  broken, remote = [], []
  for page, p in parsed.items():
    for tag, url in p.links:
      parts = urlsplit(url)
      if parts.scheme in ("http", "https") or url.startswith("//"):
        if tag != "a":  # a script, stylesheet, image or font from elsewhere: not offline
          remote.append(f"{page.name}: <{tag}> {url}")
        continue
      if parts.scheme in ("mailto", "javascript", "data"):
        continue
      target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
      if target.is_dir():
        target = target / "index.html"
      if not target.exists():
        broken.append(f"{page.relative_to(site)}: {url} (no file)")
        continue
      if parts.fragment and target.suffix == ".html":
        ids = parsed[target].ids if target in parsed else _parse(target).ids
        if unquote(parts.fragment) not in ids:
          broken.append(f"{page.relative_to(site)}: {url} (no anchor)")
  assert not broken, "broken internal links:\n" + "\n".join(broken[:40])
  assert not remote, "resources loaded from the network:\n" + "\n".join(remote[:40])


def test_site_lecture_anchors_are_stable(site: Path):
  """Code and docstrings cite these anchors of the lecture page: they must keep existing."""
  ids = _parse(site / "lecture.html").ids
  for anchor in (
    "lecture-minibatches",
    "lecture-bold-driver",
    "lecture-plateau",
    "lecture-init",
    "lecture-whitening",
    "lecture-fan-in",
    "lecture-momentum",
    "lecture-nesterov",
    "lecture-sutskever-schedule",
    "lecture-local-gains",
    "lecture-gains-momentum",
    "lecture-delta-bar-delta",
    "lecture-rprop",
    "lecture-rprop-minibatch",
    "lecture-rmsprop",
    "lecture-rmsprop-momentum",
    "lecture-vsgd",
    "lecture-decisions",
  ):
    assert anchor in ids, f"lecture.html lost the anchor #{anchor}"


def _text(path: Path) -> str:
  page = path.read_text(encoding="utf-8")
  page = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", page)
  page = re.sub(r"(?s)<math\b.*?</math>", " ", page)  # MathML: rendered formulas, not text
  return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_site_math_is_rendered_at_build_time(site: Path):
  for name in ("lecture.html", "api.html"):
    page = (site / name).read_text(encoding="utf-8")
    assert page.count("<math") >= 20, f"{name}: expected MathML formulas"
    text = _text(site / name)
    raw = re.findall(r"\\(?:frac|sqrt|leftarrow|mathrm|odot|operatorname)\b|\$\$", text)
    assert not raw, f"{name}: raw LaTeX left in the page text: {sorted(set(raw))}"


def test_site_cites_no_internal_notes(site: Path):
  """Users cannot see the project's internal notes: the site cites the papers and its own pages."""
  found = []
  for page in _html_pages(site):
    text = " ".join(_text(page).split())
    for m in re.finditer(r"\bSPEC(?:\.md| §)|\bTV-\d", text):
      found.append(f"{page.name}: ...{text[max(0, m.start() - 60) : m.end() + 20]}...")
  assert not found, f"{len(found)} citations of internal notes:\n" + "\n".join(found[:20])


def _chromium() -> str:
  for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
    found = shutil.which(name)
    if found:
      return found
  _unavailable("no Chromium on PATH (Debian: apt-get install chromium)")
  raise AssertionError  # unreachable


def _run_chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
  cmd = [
    _chromium(),
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no name resolves
    f"--user-data-dir={tmp_path / 'profile'}",
    *args,
  ]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["index.html", "api.html"])
def test_site_chromium_shows_the_page_offline(site: Path, name: str, tmp_path: Path):
  import numpy as np
  from matplotlib.image import imread

  url = (site / name).as_uri()
  shot = tmp_path / "shot.png"
  proc = _run_chromium([f"--screenshot={shot}", "--window-size=1280,1000", url], tmp_path)
  assert shot.is_file(), f"Chromium wrote no screenshot of {name}:\n{proc.stderr[-3000:]}"
  pixels = imread(str(shot))[..., :3]
  flat = pixels.reshape(-1, 3)
  background = np.median(flat, axis=0)
  differs = np.mean(np.any(np.abs(flat - background) > 0.1, axis=1))
  assert differs > 0.02, f"the screenshot of {name} is blank ({differs:.2%} of pixels differ)"
  assert float(pixels.std()) > 0.05

  dom = _run_chromium(["--dump-dom", url], tmp_path).stdout
  assert "<math" in dom or name == "index.html", f"{name}: no rendered math in the DOM"
  text = html.unescape(
    re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<(script|style|math)\b.*?</\1>", " ", dom))
  )
  assert len(text.split()) > 100, f"{name}: the page shows almost no text"
  assert "\\frac" not in text and "$$" not in text, f"{name}: raw LaTeX shown"
