"""Demonstrations from handcrafted schedules, behaviour cloning, and the central critic."""

import csv
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ganno_jax
from ganno_jax import evaluate, train
from ganno_jax.agent.networks import Critic, critic_features, critic_input_dim
from ganno_jax.evaluation.controllers import policy_controller
from ganno_jax.evaluation.rollout import make_rollout
from ganno_jax.deploy.policy import from_agent
from ganno_jax.inner.models import MLP
from ganno_jax.inner.task import TaskData
from ganno_jax.trainer import bc, demos
from ganno_jax.trainer.anakin import init_agent
from ganno_jax.trainer.config import TrainConfig


def _env(**kw):
    x = jax.random.normal(jax.random.PRNGKey(0), (640, 6, 6, 1))
    y = (jnp.arange(640) % 10).astype(jnp.int32)
    data = TaskData(x.at[:, 0, 0, 0].add(y), y, x[:200], y[:200], x[:100], y[:100])
    cfg = dict(tau=2, episode_length=10, n_val=32, batch_size=32, action_set="log", lr_min=1e-5,
               reward="telescoping_accuracy", init_lr_low=1e-4, init_lr_high=1e-2)
    return ganno_jax.make_env(MLP(width=0.25), data, **{**cfg, **kw})


def test_track_picks_the_action_closest_in_log_space():
    env, _ = _env()
    lrs = jnp.array([1e-3, 1e-3, 1e-3])
    # log set: ×2 reaches 2e-3 exactly; 1.1e-3 is closest to ×1.05; 1e-3 is the no-op.
    np.testing.assert_array_equal(demos.track(env, lrs, jnp.array([2e-3, 1.1e-3, 1e-3])), [7, 1, 0])
    np.testing.assert_array_equal(demos.track(env, lrs, jnp.array([1e-5, 4e-4, 6.6e-4])), [8, 8, 6])


def test_demonstrations_follow_the_schedule_and_round_trip(tmp_path):
    env, params = _env()
    d = demos.generate(env, params, "cosine", 4, jax.random.PRNGKey(0))
    assert d["obs"].shape == (4, 10, 3, env.obs_dim) and d["actions"].shape == (4, 10, 3)
    assert d["dones"][:, -1].all() and not d["dones"][:, :-1].any()
    # Multiplicative steps of at most ×2: a cosine over 10 blocks is tracked within a factor 1.2 at
    # the median step (its last steps fall faster than ÷2 per block can follow).
    assert float(np.median(d["log10_error"])) < np.log10(1.2)
    demos.save(str(tmp_path / "cosine.npz"), d, env.obs_names)
    back, names = demos.load(str(tmp_path / "cosine.npz"))
    assert names == env.obs_names
    for k in demos.FIELDS:
        np.testing.assert_array_equal(back[k], d[k])


@pytest.mark.slow  # ~30 s
def test_behaviour_cloning_lowers_the_loss_and_the_clone_follows_the_schedule_on_held_out_seeds():
    env, params = _env()
    cfg = TrainConfig(tau=2, episode_length=10, action_set="log", lr_min=1e-5)
    train_demos = [demos.generate(env, params, "cosine", 16, jax.random.PRNGKey(0))]
    agent = init_agent(jax.random.PRNGKey(1), cfg, env.obs_dim, env.num_actions)
    cloned, hist = bc.behaviour_clone(agent, train_demos, env.num_actions, jax.random.PRNGKey(2), epochs=150, lr=3e-3)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0] and hist["accuracy"][-1] > 0.8
    # Held-out episodes (other keys, other initial LRs): the greedy clone's LR path vs the target.
    held = demos.generate(env, params, "cosine", 4, jax.random.PRNGKey(99))
    policy = from_agent(cloned, cfg, env.obs_layout, env.num_actions)
    rollout = jax.jit(jax.vmap(make_rollout(env, policy_controller(policy, greedy=True)), in_axes=(0, None)))
    keys = jax.random.split(jax.random.PRNGKey(99), 4)  # the same episodes (reset keys) as `held`
    res = rollout(keys, params)
    err = np.abs(np.log10(np.asarray(res.lrs)) - np.log10(held["targets"]))
    assert float(np.median(err)) < np.log10(1.5), err  # tolerance: within a factor 1.5 at the median step


@pytest.mark.parametrize("agents", [2, 5, 21])
def test_central_critic_input_has_one_size_for_any_number_of_agents(agents):
    obs = jax.random.normal(jax.random.PRNGKey(agents), (3, agents, 31))  # 3 envs
    feats = critic_features(obs, "central")
    assert feats.shape == (3, agents, critic_input_dim(31, "central")) == (3, agents, 93)
    np.testing.assert_allclose(feats[:, 1, 31:62], obs.mean(1))  # the mean over agents, for everyone
    np.testing.assert_allclose(feats[:, 0, 62:], obs.max(1))
    params = Critic().init(jax.random.PRNGKey(0), jnp.zeros((1, 93)))
    assert Critic().apply(params, feats).shape == (3, agents)  # one critic for every depth
    np.testing.assert_array_equal(critic_features(obs, "independent"), obs)


@pytest.mark.slow  # ~75 s: two train + evaluate runs
@pytest.mark.parametrize("extra", [["--set", "critic=central"], ["--set", "pretrain=bc", "--set", "bc_episodes=2",
                                                                "--set", "bc_epochs=5"]])
def test_central_critic_and_bc_runs_evaluate_zero_shot_on_a_deeper_net(tiny_data, tmp_path, monkeypatch, extra):
    monkeypatch.setenv("GANNO_NO_PROGRESS", "1")
    run = str(tmp_path / "run")
    args = ["--env", "mlp_fmnist", "--preset", "smoke", "--set", "n_val=32", "--set", "action_set=log"]
    assert train.main(args + extra + ["--out", run]) == 0
    if "pretrain=bc" in extra:
        assert sorted(os.listdir(os.path.join(run, "demos"))) == [f"{s}.npz" for s in
                                                                  sorted(("cosine", "onecycle", "warmup_cosine", "sgdr"))]
        assert os.path.exists(os.path.join(run, "bc.json"))
    out = str(tmp_path / "eval")
    assert evaluate.main(["--ckpt", run, "--env", "mlp5_fmnist", "--methods", "ganno", "--init-lrs", "1e-3",
                          "--seeds", "1", "--preset", "smoke", "--set", "n_val=32", "--out", out]) == 0
    rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
    assert len(rows) == 1 and rows[0]["diverged"] == "False"
    assert np.load(os.path.join(out, "curves.npz"))["ganno|0.001|0.1|lrs"].shape == (1, 4, 5)  # 5 agents
