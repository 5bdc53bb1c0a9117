"""What users pick instead of a learned schedule: reduce-on-plateau, schedule-free AdamW
and the LR-free optimisers as evaluation methods, and the benchmark's untuned/tuned answers."""

import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ganno_jax
from ganno_jax.evaluation import baselines, controllers
from ganno_jax.evaluation.report import user_questions
from ganno_jax.evaluation.rollout import make_rollout
from ganno_jax.inner.models import MLP
from ganno_jax.inner.task import TaskData


def _data(n=640):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, 6, 6, 1))
    y = (jnp.arange(n) % 10).astype(jnp.int32)
    x = x.at[:, 0, 0, 0].add(y.astype(jnp.float32))
    return TaskData(x, y, x[:200], y[:200], x[:100], y[:100])


@pytest.fixture(scope="module")
def env_and_params():
    env, params = ganno_jax.make_env(MLP(width=0.25), _data(), tau=3, episode_length=4, n_val=64, batch_size=32,
                                     noop_branch=False, reward="accuracy")
    return env, params.replace(init_lr_low=jnp.float32(2e-3), init_lr_high=jnp.float32(2e-3),
                               wd_low=jnp.float32(0.1), wd_high=jnp.float32(0.1))


def test_schedule_free_is_trained_as_optax_does_and_scored_at_its_averaged_point(env_and_params):
    """The rollout equals a plain loop of optax's schedule_free_adamw on the env's init and
    minibatches, and its test loss is that of `schedule_free_eval_params`, not of the iterate."""
    env, params = env_and_params
    key = jax.random.PRNGKey(3)
    ours = jax.jit(make_rollout(env, controllers.METHODS["schedule_free"](controllers.MethodContext(9))))(key, params)
    n = env.config.tau * env.config.episode_length
    tx = optax.contrib.schedule_free_adamw(2e-3, warmup_steps=max(1, n // 20), weight_decay=0.1)
    _, state = env.reset(jax.random.split(key)[0], params)
    inner, stream = state.inner.replace(opt_state=tx.init(state.inner.params)), state.stream
    for _ in range(env.config.episode_length):
        indices, stream = env.task.next_indices(stream, env.config.tau)
        for idx in indices:
            inner = env.task.train_step(inner, params.data.x_train[idx], params.data.y_train[idx], optimizer=tx)[0]
    averaged = inner.replace(params=optax.contrib.schedule_free_eval_params(inner.opt_state, inner.params))
    test = env.task.evaluate(averaged, params.data.x_test, params.data.y_test)
    iterate = env.task.evaluate(inner, params.data.x_test, params.data.y_test)
    np.testing.assert_allclose(ours.test_loss, test.loss, rtol=1e-5)
    assert abs(float(test.loss) - float(iterate.loss)) > 1e-4  # the two points differ: the test can tell


def test_plateau_scale_drops_by_ten_after_patience_validations_without_improvement():
    tx, lr = baselines.plateau(jnp.float32(1e-3), 0.1, 100)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    scales = []
    for _ in range(13):  # a loss that never improves: the first sets the best, 10 more exhaust patience
        state = baselines.plateau_observe(state, jnp.float32(1.0))
        scales.append(float(baselines.plateau_scale(state)))
    assert scales[:10] == [1.0] * 10 and scales[11] == pytest.approx(0.1)
    updates, _ = tx.update({"w": jnp.ones(3)}, state, params)  # the step is AdamW's × 0.1
    ref, _ = optax.adamw(1e-3, weight_decay=0.1).update({"w": jnp.ones(3)}, tx.init(params)[0], params)
    np.testing.assert_allclose(updates["w"], 0.1 * ref["w"], rtol=1e-6)
    assert float(lr(50)) == pytest.approx(1e-3)


SLOW = pytest.mark.slow  # the fast tier keeps one LR-free optimiser; all run in `make test-slow`


@pytest.mark.parametrize("name", ["plateau", "prodigy", pytest.param("dadapt_adamw", marks=SLOW),
                                  pytest.param("dog", marks=SLOW), pytest.param("cocob", marks=SLOW),
                                  pytest.param("mechanic", marks=SLOW)])
def test_rivals_run_through_the_rollout(env_and_params, name):
    env, params = env_and_params
    res = jax.jit(make_rollout(env, controllers.METHODS[name](controllers.MethodContext(9))))(
        jax.random.PRNGKey(0), params)
    assert not bool(res.diverged) and np.isfinite(float(res.test_loss))
    if name in controllers.LR_FREE_METHODS:
        assert np.all(np.isnan(res.lrs))  # no LR to record
    else:
        np.testing.assert_allclose(res.lrs, 2e-3, rtol=1e-6)  # the scale stays 1 over 4 validations


def test_user_questions_by_hand():
    """untuned = mean over LRs per seed; tuned = the LR with the best mean validation accuracy."""
    test = {"agent": {1e-3: [0.80, 0.82], 1e-2: [0.90, 0.88]}, "base": {1e-3: [0.85, 0.85], 1e-2: [0.86, 0.84]}}
    val = {"agent": {1e-3: 0.5, 1e-2: 0.9}, "base": {1e-3: 0.9, 1e-2: 0.5}}  # base's val picks 1e-3
    rows = [{"method": m, "init_lr": lr, "weight_decay": 0.1, "seed": s, "test_accuracy": v,
             "final_val_accuracy": val[m][lr]}
            for m in test for lr in test[m] for s, v in enumerate(test[m][lr])]
    out = user_questions(rows, "agent")
    # untuned: agent (85, 85) − base (85.5, 84.5) = (−0.5, +0.5); tuned: agent at 1e-2 (90, 88) − base at 1e-3 (85, 85).
    assert out["untuned"]["base"]["mean_diff"] == pytest.approx(0.0)
    assert out["tuned"]["base"]["mean_diff"] == pytest.approx(4.0) and out["tuned"]["base"]["wins"] == 2
    assert out["per_method"]["base"]["tuned_init_lr"] == 1e-3
    assert out["per_method"]["agent"]["tuned_init_lr"] == 1e-2
    assert out["per_method"]["base"]["by_init_lr"]["0.01"] == pytest.approx(85.0)
    # Skip tuning? agent untuned (85, 85) − the best tuned rival, base at 1e-3 (85, 85): 0 on each seed.
    assert out["untuned_vs_best_tuned"]["rival"] == "base"
    assert out["untuned_vs_best_tuned"]["mean_diff"] == pytest.approx(0.0)


@pytest.mark.slow  # ~40 s: trains a smoke agent and evaluates three methods (keeps make test < 10 min)
def test_benchmark_runs_an_lr_free_method_once_per_seed_and_answers_both_questions(tmp_path, monkeypatch):
    from conftest import write_tiny_mnist

    from ganno_jax import evaluate, train

    write_tiny_mnist(str(tmp_path / "data"), "fashion_mnist")
    for k, v in {"GANNO_DATA_DIR": str(tmp_path / "data"), "GANNO_SKIP_CHECKSUMS": "1",
                 "GANNO_NO_PROGRESS": "1"}.items():
        monkeypatch.setenv(k, v)
    run = str(tmp_path / "run")
    assert train.main(["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32", "--out", run]) == 0
    out = str(tmp_path / "bench")
    assert evaluate.main(["--ckpt", run, "--methods", "ganno,prodigy,wsd", "--preset", "smoke", "--seeds", "2",
                          "--init-lrs", "1e-3,3e-3", "--out", out]) == 0
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    prodigy = {(r["init_lr"], r["seed"]): r["test_accuracy"] for r in rows if r["method"] == "prodigy"}
    assert len(prodigy) == 4 and all(prodigy[("0.001", s)] == prodigy[("0.003", s)] for s in ("0", "1"))
    summary = json.load(open(os.path.join(out, "summary.json")))
    for question in ("untuned", "tuned"):
        assert set(summary[question]) == {"prodigy", "wsd"} and summary[question]["wsd"]["n"] == 2
    assert summary["methods"]["wsd"]["tuned_init_lr"] in (1e-3, 3e-3)
    md = open(os.path.join(out, "results.md")).read()
    assert "A user's two questions" in md and "(LR-free)" in md
    assert summary["methods"]["prodigy"]["lr_free"] and "lr_free" not in summary["methods"]["wsd"]


COMMITTED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "rivals")


@pytest.mark.parametrize("env_id", sorted(os.listdir(COMMITTED)))
def test_committed_rivals_rows_are_intact_complete_and_above_chance(env_id):
    """The committed rows match their digests, hold every rival of the benchmark over the whole
    grid, and no rival scores near chance (one that did would be a harness bug: DoG once did)."""
    from ganno_jax.evaluate import BENCHMARK_BASELINES
    from ganno_jax.evaluation import report, reuse

    folder = os.path.join(COMMITTED, env_id)
    command = json.load(open(os.path.join(folder, "command.json")))
    for name in reuse.REUSED_FILES:
        assert reuse.sha256(os.path.join(folder, name)) == command["sha256"][name], name
    p = command["protocol"]
    grid = len(p["init_lrs"]) * len(p["wds"]) * p["seeds"]
    assert p["seeds"] == 5 and p["init_lrs"] == [1e-4, 3e-4, 1e-3, 3e-3, 1e-2] and p["wds"] == [0.1]
    reused = reuse.reuse_rows(folder, p, list(BENCHMARK_BASELINES), grid)
    assert set(reused) == set(BENCHMARK_BASELINES)  # every rival, at its current version
    rows = report.read_csv(os.path.join(folder, "results.csv"))
    for m in BENCHMARK_BASELINES:
        mean = np.mean([r["test_accuracy"] for r in rows if r["method"] == m])
        assert mean > 0.80, (m, mean)


def test_benchmark_reuses_committed_rows_of_the_same_protocol_and_computes_them_otherwise(
        tiny_data, tmp_path, monkeypatch, capsys):
    """`--benchmark` runs only the agent when rows for its env and protocol are committed; with
    another protocol it says so in one line and computes every rival; a changed rival is rerun."""
    from ganno_jax import evaluate, train
    from ganno_jax.evaluation import baselines, reuse, rollout

    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    run = str(tmp_path / "run")
    assert train.main(["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32", "--out", run]) == 0
    grid = ["--preset", "smoke", "--seeds", "1", "--init-lrs", "1e-3,3e-3"]
    committed = tmp_path / "rivals"
    monkeypatch.setattr(reuse, "COMMITTED_ROWS", str(committed))
    monkeypatch.setattr(evaluate, "BENCHMARK_BASELINES", ("constant", "cosine"))
    assert evaluate.main(["--ckpt", run, "--benchmark", "--methods", "constant,cosine", *grid,
                          "--out", str(committed / "mlp_fmnist")]) == 0
    computed = []
    real_run_grid = rollout.run_grid
    monkeypatch.setattr(rollout, "run_grid", lambda env, ctrl, *a: computed.append(ctrl.name) or real_run_grid(
        env, ctrl, *a))
    assert evaluate.main(["--ckpt", run, "--benchmark", *grid, "--out", str(tmp_path / "b1")]) == 0
    assert computed == ["ganno"]
    first = json.load(open(tmp_path / "b1" / "summary.json"))
    assert set(first["untuned"]) == {"constant", "cosine"}
    computed.clear()
    capsys.readouterr()
    assert evaluate.main(["--ckpt", run, "--benchmark", *grid, "--set", "tau=1", "--out", str(tmp_path / "b2")]) == 0
    assert computed == ["ganno", "constant", "cosine"]
    assert "not reusing the committed rivals' rows" in capsys.readouterr().err
    computed.clear()
    monkeypatch.setitem(baselines.RIVAL_VERSIONS, "cosine", 99)  # its definition changed since
    assert evaluate.main(["--ckpt", run, "--benchmark", *grid, "--out", str(tmp_path / "b3")]) == 0
    assert computed == ["ganno", "cosine"]
