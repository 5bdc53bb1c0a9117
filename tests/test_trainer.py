"""The IPPO trainer: it learns, resumes exactly, shards over devices, compiles once."""

import os
import subprocess
import sys

import chex
import jax
import numpy as np

from ganno_jax.trainer import checkpoint
from ganno_jax.trainer.anakin import make_trainer
from ganno_jax.trainer.config import TrainConfig
from toy_env import MatchEnv

TOY = TrainConfig(num_envs=8, total_env_steps=8 * 32 * 25, rollout_len=32, seq_len=8,
                  num_minibatches=4, lr=3e-3)


def test_ppo_learns_an_observation_dependent_task():
    trainer = make_trainer(TOY, MatchEnv(), None)
    _, (metrics, _) = trainer.train(jax.random.PRNGKey(0))
    # Optimal return per step is 1.0; a uniform policy gets 0.25.
    assert float(np.mean(metrics["reward"][-3:])) >= 0.9
    assert float(metrics["reward"][0]) < 0.5


def test_resume_from_checkpoint_is_exact(tmp_path):
    cfg = TrainConfig(num_envs=4, total_env_steps=4 * 16 * 4, rollout_len=16, seq_len=8,
                      num_minibatches=2)
    trainer = make_trainer(cfg, MatchEnv(), None)
    straight, _ = trainer.run_updates(trainer.init(jax.random.PRNGKey(3)), None, 4)

    half, _ = trainer.run_updates(trainer.init(jax.random.PRNGKey(3)), None, 2)
    mngr = checkpoint.manager(str(tmp_path))
    checkpoint.save(mngr, 2, half, {"note": "half"})
    del half
    fresh = make_trainer(cfg, MatchEnv(), None)  # as a new process would
    like = fresh.init(jax.random.PRNGKey(99))
    restored, meta = checkpoint.restore_runner(mngr, like, fresh.shardings)
    assert meta["note"] == "half" and int(restored.update) == 2
    resumed, _ = fresh.run_updates(restored, None, 2)
    chex.assert_trees_all_equal(resumed.agent, straight.agent)
    chex.assert_trees_all_equal(resumed.env_state, straight.env_state)


def test_run_updates_compiles_once():
    cfg = TrainConfig(num_envs=2, total_env_steps=64, rollout_len=8, seq_len=4, num_minibatches=2)
    trainer = make_trainer(cfg, MatchEnv(), None)
    runner = trainer.init(jax.random.PRNGKey(0))
    runner, _ = trainer.run_updates(runner, None, 2)
    before = trainer.run_updates._cache_size()
    for _ in range(3):
        runner, _ = trainer.run_updates(runner, None, 2)
    assert trainer.run_updates._cache_size() == before == 1


def test_two_forced_host_devices_share_one_agent():
    code = (
        "import sys, jax, numpy as np; sys.path.insert(0, 'tests');"
        "from toy_env import MatchEnv;"
        "from ganno_jax.trainer.anakin import make_trainer;"
        "from ganno_jax.trainer.config import TrainConfig;"
        "assert jax.local_device_count() == 2;"
        "cfg = TrainConfig(num_envs=4, total_env_steps=4*16*2, rollout_len=16, seq_len=8, num_minibatches=2);"
        "t = make_trainer(cfg, MatchEnv(), None);"
        "r, (m, tr) = t.train(jax.random.PRNGKey(0));"
        "assert tr['lrs'].shape[0] == 2;"  # one trace per device
        "leaf = jax.tree.leaves(r.agent.actor_params)[0];"
        "assert len(leaf.sharding.device_set) == 2 and leaf.sharding.is_fully_replicated;"
        "print('ok', float(m['reward'][-1]))"
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok" in out.stdout
