"""The Makefile's evaluation targets put their output where the README says (dry runs: `make -n`)."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _evaluate_line(*args: str) -> list[str]:
    out = subprocess.run(["make", "-n", "-s", "-C", ROOT, *args], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return next(line for line in out.splitlines() if "ganno_jax.evaluate" in line).split()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_benchmark_of_a_policy_file_writes_beside_the_runs_and_of_a_run_inside_it(tmp_path):
    line = _evaluate_line("benchmark", "CKPT=ganno_jax/pretrained/default.policy")
    out = line[line.index("--out") + 1]
    assert out.startswith("runs/default-benchmark-")  # never inside the policy file
    assert "--env" not in line  # in-distribution: the policy's own env
    run = str(tmp_path / "run")
    os.makedirs(run)
    line = _evaluate_line("benchmark", f"CKPT={run}", "ENV=mlp_mnist")
    assert line[line.index("--out") + 1].startswith(f"{run}/benchmark-")
    assert line[line.index("--env") + 1] == "mlp_mnist"
    line = _evaluate_line("evaluate", f"CKPT={run}", "OUT=somewhere")
    assert line[line.index("--out") + 1] == "somewhere"
