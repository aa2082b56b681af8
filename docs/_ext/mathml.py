"""Render ``math`` at build time as MathML (no JavaScript, no network).

Sphinx's default renderer, MathJax, loads a script from a CDN in the reader's browser. This
extension converts every inline and display formula to MathML while the site is built, with the
pure-Python ``latex2mathml`` package; browsers render MathML natively. A formula the converter
cannot read, or one that leaves an unknown command in the output, is a build warning (an error
under ``sphinx -W``), so a typo in a docstring's math fails the docs build instead of showing raw
LaTeX to readers.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from latex2mathml.converter import convert
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

logger = logging.getLogger(__name__)

_UNKNOWN = re.compile(r"<m[io][^>]*>(\\[A-Za-z]+)</m[io]>")


def _to_mathml(self: Any, node: nodes.Element, latex: str, display: str) -> str:
  latex = latex.strip()
  latex = latex.replace(r"\begin{aligned}", r"\begin{split}").replace(
    r"\end{aligned}", r"\end{split}"
  )
  try:
    out = convert(latex, display=display)
  except Exception as e:  # latex2mathml raises several error types for malformed input
    logger.warning(
      "math could not be rendered: %r (%s: %s)", latex, type(e).__name__, e, location=node
    )
    return '<code class="math-error">' + self.encode(latex) + "</code>"
  unknown = _UNKNOWN.findall(out)
  if unknown:
    logger.warning(
      "math uses unsupported command(s) %s: %r",
      ", ".join(sorted(set(unknown))),
      latex,
      location=node,
    )
  return out


_ENV = re.compile(r"\\begin\{|\\end\{|\\\\")


def _top_level_lines(latex: str) -> list[str]:
  r"""Splits at the ``\\`` line breaks that are outside every ``\begin{..}..\end{..}``."""
  lines, depth, start = [], 0, 0
  for m in _ENV.finditer(latex):
    token = m.group()
    if token == r"\begin{":
      depth += 1
    elif token == r"\end{":
      depth -= 1
    elif depth == 0:
      lines.append(latex[start : m.start()])
      start = m.end()
  lines.append(latex[start:])
  return lines


def visit_math(self: Any, node: nodes.math) -> None:
  self.body.append(self.starttag(node, "span", "", CLASS="math"))
  self.body.append(_to_mathml(self, node, node.astext(), "inline"))
  self.body.append("</span>")
  raise nodes.SkipNode


def visit_displaymath(self: Any, node: nodes.math_block) -> None:
  self.body.append(self.starttag(node, "div", CLASS="math"))
  if node.get("number"):
    number = get_node_equation_number(self, node)
    self.body.append(f'<span class="eqno">({number})')
    self.add_permalink_ref(node, "Link to this equation")
    self.body.append("</span>")
  for part in node.astext().split("\n\n"):
    # lines broken with \\ outside an environment: one centred formula per line
    for line in _top_level_lines(part):
      if r"\begin{" not in line:
        line = re.sub(r"(?<!\\)&", "", line)  # alignment marks of a bare aligned formula
      if line.strip():
        self.body.append(_to_mathml(self, node, line, "block"))
  self.body.append("</div>\n")
  raise nodes.SkipNode


def setup(app: Any) -> dict[str, Any]:
  app.add_html_math_renderer(
    "mathml", inline_renderers=(visit_math, None), block_renderers=(visit_displaymath, None)
  )
  return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
