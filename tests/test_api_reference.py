"""The API reference (docs/api.md) names every exported entry, and every entry has a docstring."""

import os
import re

import ganno_jax

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "api.md")


def test_api_reference_names_every_export_with_a_heading():
    text = open(DOC).read()
    headings = set(re.findall(r"^### `ganno_jax\.(\w+)", text, flags=re.M))
    assert headings == set(ganno_jax.__all__), (headings ^ set(ganno_jax.__all__))
    assert "update(grads, state, params, *, loss, accuracy, val_loss=None, val_accuracy=None)" in text


def test_every_export_has_a_docstring():
    for name in ganno_jax.__all__:
        assert (getattr(ganno_jax, name).__doc__ or "").strip(), name


def test_one_version_source():
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ganno_jax.__version__"}
    cff = open(os.path.join(root, "CITATION.cff")).read()
    assert f"version: {ganno_jax.__version__}" in cff
