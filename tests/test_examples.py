"""The user-facing examples run: examples/own_loop.py and every Python block of the README."""

import os
import re
import runpy
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_own_loop_example_trains_a_user_model_with_the_pretrained_scheduler(tiny_data, tmp_path, monkeypatch):
    out = str(tmp_path / "lrs.png")
    monkeypatch.setattr(sys, "argv", ["own_loop.py", "--steps", "60", "--n-val", "50", "--out", out])
    module = runpy.run_path(os.path.join(ROOT, "examples", "own_loop.py"), run_name="own_loop")
    acc_g, acc_c, acc_cos = module["main"]()
    assert all(0.0 <= a <= 1.0 for a in (acc_g, acc_c, acc_cos))
    assert os.path.getsize(out) > 0


def readme_python_blocks() -> list[str]:
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_every_python_block_of_the_readme_runs(tiny_data, tmp_path, monkeypatch):
    """Run in order in one namespace, as a reader would paste them, on tiny dataset files."""
    blocks = readme_python_blocks()
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    lrs = namespace.get("lrs")
    assert lrs is not None and np.all(np.isfinite(np.asarray(lrs)))
    # The policy moved the rates away from the initial 1e-3 (they change over training).
    assert not np.allclose(np.asarray(lrs), 1e-3)
