"""The throughput benchmark's smoke preset runs and writes every field the README table reads."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # ~2 min: six small programs compiled in a subprocess
def test_smoke_benchmark_json_fields(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--preset", "smoke", "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["preset"] == "smoke" and result["device"]["platform"] == "cpu"
    assert {"jax", "device_kind", "date", "num_devices"} <= set(result["device"])
    (mlp,) = result["models"]
    assert mlp["model"] == "mlp"
    for key in ("plain_inner_steps_per_s", "deploy_inner_steps_per_s", "train_inner_steps_per_s",
                "train_env_steps_per_s", "flops_per_inner_step"):
        assert mlp[key] > 0, key
    assert mlp["ratio_deploy"] == mlp["deploy_inner_steps_per_s"] / mlp["plain_inner_steps_per_s"]
    peak = result["roofline"]
    assert peak["matmul_flops_per_s"] > 0 and peak["conv_flops_per_s"] > 0
    assert mlp["fraction_of_peak"] == mlp["achieved_flops_per_s"]["plain"] / peak["matmul_flops_per_s"]
    assert mlp["ratio_train"] == mlp["train_inner_steps_per_s"] / mlp["plain_inner_steps_per_s"]
    assert set(mlp["compile_s"]) == {"plain", "deploy", "train"}
    assert mlp["achieved_flops_per_s"]["plain"] == mlp["flops_per_inner_step"] * mlp["plain_inner_steps_per_s"]
    # The forward matmuls alone are 2·128·(784·256 + 256·256 + 256·10) FLOPs; a training step
    # (forward, backward, AdamW) does about three times that.
    forward = 2 * 128 * (784 * 256 + 256 * 256 + 256 * 10)
    assert 2 * forward < mlp["flops_per_inner_step"] < 10 * forward
    assert [r["num_envs"] for r in result["scaling_envs"]] == [1, 2]
    assert all(r["train_env_steps_per_s"] > 0 and r["deploy_inner_steps_per_s"] > 0
               for r in result["scaling_envs"])
    assert [r["model"] for r in result["user_loop"]] == ["user_mlp", "user_cnn"]
    assert all(r["ratio_user_loop"] == r["adamw_ms_per_step"] / r["scheduler_ms_per_step"] for r in result["user_loop"])


def test_readme_table_is_rendered_from_the_committed_json():
    """`benchmarks.report` reads every figure from the JSON: the committed CPU result's ratios and
    scaling appear as measured, each next to its goal."""
    from benchmarks import report

    with open(os.path.join(ROOT, "benchmarks", "results", "throughput-cpu.json")) as f:
        result = json.load(f)
    text = report.render(result)
    cnn2, cnn5 = result["models"]
    row = next(line for line in text.splitlines() if line.startswith("| deployment / plain |"))
    assert row == f"| deployment / plain | {cnn2['ratio_deploy']:.2f} | {cnn5['ratio_deploy']:.2f} | ≥ 0.95 |"
    base = result["scaling_envs"][0]["deploy_inner_steps_per_s"]
    last = result["scaling_envs"][-1]
    assert f"| {last['num_envs']} | {last['num_devices']} | {last['deploy_inner_steps_per_s']:,.1f} | " \
           f"{last['deploy_inner_steps_per_s'] / base:.2f} |" in text
    assert result["device"]["jax"] in text.splitlines()[0]
    for r in result.get("user_loop", []):  # the scheduler's cost in a user's own loop
        assert f"| {r['model']} | {r['steps']} | {r['adamw_ms_per_step']:,.3f} |" in text
        assert f"| {r['ratio_user_loop']:.2f} | ≥ 0.95 |" in text


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu"])
def test_every_presets_inputs_have_the_shapes_the_loops_need(preset):
    """Shapes only (jax.eval_shape, nothing timed or materialised): the plain loop's minibatches at
    every tau a preset measures, from a split of the preset's size (the cpu preset's tau-100
    deployment measurement once asked 400 minibatches of 128 from 50,000 examples and failed)."""
    import jax
    import jax.numpy as jnp

    from benchmarks import throughput as tp

    p = tp.PRESETS[preset]
    x = jax.ShapeDtypeStruct((p["n_train"], *tp.INPUT_SHAPE), jnp.float32)
    y = jax.ShapeDtypeStruct((p["n_train"],), jnp.int32)
    for tau in (p["tau"], *p["deploy_taus"]):
        steps = tau * p["env_steps"]
        xb, yb = jax.eval_shape(lambda x, y: tp.plain_batches(x, y, steps), x, y)
        assert xb.shape == (steps, tp.BATCH, *tp.INPUT_SHAPE) and yb.shape == (steps, tp.BATCH)
    assert 4 * p["n_val"] <= p["n_train"]  # the validation split synthetic_env slices
