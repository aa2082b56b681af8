"""Sphinx configuration of the nnml_optax documentation.

Build (offline, warnings as errors), from the repository root:

  python -m sphinx -W -b html docs docs/_build/html

Sphinx with MyST, autodoc and napoleon, as optax's documentation; math is converted to MathML at
build time (``_ext/mathml.py``), so the pages need no JavaScript and no network to show formulas.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the nnml_optax of this checkout, installed or not

import nnml_optax  # noqa: E402

project = "nnml_optax"
author = "nnml_optax developers"
copyright = "2026, nnml_optax developers"
release = version = nnml_optax.__version__

extensions = [
  "myst_parser",
  "sphinx.ext.autodoc",
  "sphinx.ext.napoleon",
  "mathml",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "compare-run", "README.md", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

html_math_renderer = "mathml"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_type_aliases = {
  "ScalarOrSchedule": "optax.ScalarOrSchedule",
  "optax.ScalarOrSchedule": "optax.ScalarOrSchedule",
}
autodoc_preserve_defaults = True
autodoc_default_options = {"members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

html_theme = "furo"
html_title = f"nnml_optax {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
pygments_style = "default"
