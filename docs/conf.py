"""Sphinx configuration for the binaryvision documentation.

Build with ``sphinx-build -W -b html docs docs/_build`` (warnings are errors). Only
Sphinx's bundled extensions and theme are used, and nothing is fetched from the network:
there is no intersphinx mapping. The figures under ``_static/figures/`` are committed;
``docs/make_figures.py`` regenerates them and is never run by the build.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))  # the package, when it is not installed

from binaryvision import _version  # noqa: E402

project = "binaryvision"
author = "The binaryvision developers"
copyright = "the binaryvision developers; Apache-2.0"  # noqa: A001 (Sphinx's own name)
release = _version.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "alabaster"
html_title = f"binaryvision {release}"
html_theme_options = {
    "description": "Binary image classification in three lines",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}

# numpydoc docstrings, read by napoleon
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = False  # "Attributes" become attribute entries, trailing "_" kept
napoleon_use_rtype = False

# autodoc: types live in the docstrings; signatures stay short and never need resolving
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
autodoc_default_options = {"members": True}
autodoc_inherit_docstrings = False  # never pull in torch's or scikit-learn's docstrings
add_module_names = False

nitpicky = False
default_role = "literal"  # `x` renders as code instead of an unresolvable reference


def _skip_sklearn_request_methods(app, what, name, obj, skip, options):
    """Hide the ``set_*_request`` methods scikit-learn generates for metadata routing.

    They follow the signatures of ``fit``, ``score``... and carry scikit-learn's own
    docstrings, which refer to its glossary; they are scikit-learn's API, not ours.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):  # noqa: D103
    app.connect("autodoc-skip-member", _skip_sklearn_request_methods)
