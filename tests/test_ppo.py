"""PPO maths against hand-computed values; normaliser against numpy; GRU resets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganno_jax.agent import normalizer, ppo
from ganno_jax.agent.networks import Actor, ScannedGRU


@pytest.mark.parametrize("jit", [False, True])
def test_gae_hand_computed(jit):
    r = jnp.array([1.0, 0.0, 2.0])
    v = jnp.array([0.5, 1.0, 0.0])
    done = jnp.array([False, True, False])
    g, lam = 0.9, 0.5
    fn = jax.jit(ppo.gae, static_argnums=(4, 5)) if jit else ppo.gae
    adv, tgt = fn(r, v, done, jnp.array(3.0), g, lam)
    d2 = 2.0 + 0.9 * 3.0 - 0.0  # 4.7, bootstraps from v_last
    d1 = 0.0 + 0.0 - 1.0  # -1.0, episode ended: no bootstrap
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a1 = d1  # the episode boundary cuts the recursion
    a0 = d0 + 0.9 * 0.5 * a1
    np.testing.assert_allclose(adv, [a0, a1, d2], rtol=1e-6)
    np.testing.assert_allclose(tgt, np.array([a0, a1, d2]) + np.array(v), rtol=1e-6)


def test_ppo_loss_hand_computed():
    lp_new = jnp.log(jnp.array([0.5, 0.2]))
    lp_old = jnp.log(jnp.array([0.25, 0.4]))  # ratios 2.0 and 0.5
    adv = jnp.array([1.0, -1.0])
    value, old_value, target = jnp.array([1.0, 0.0]), jnp.array([0.5, 0.1]), jnp.array([2.0, 0.0])
    ent = jnp.array([1.0, 3.0])
    total, aux = ppo.ppo_loss(lp_new, lp_old, adv, value, old_value, target, ent, clip_eps=0.2,
                              value_clip_eps=0.2, vf_coef=0.5, ent_coef=0.01,
                              normalize_advantages=False)
    # Surrogates: min(2*1, 1.2*1) = 1.2; min(0.5*-1, 0.8*-1) = -0.8 → policy loss -(0.4)/2 = -0.2.
    np.testing.assert_allclose(aux.policy_loss, -0.2, rtol=1e-6)
    # Values: unclipped (1-2)^2 = 1, clipped 0.5+0.2 = 0.7 → (0.7-2)^2 = 1.69, max 1.69;
    # second: unclipped 0, clipped 0.1+clip(-0.1) = 0 → 0.
    np.testing.assert_allclose(aux.value_loss, 0.5 * (1.69 + 0.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(total, -0.2 + 0.5 * 0.4225 - 0.01 * 2.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(aux.clip_fraction, 1.0)


def test_ppo_loss_normalises_advantages_over_the_minibatch():
    """The trainer's setting: advantages (3, 1) normalise to (1, −1) (mean 2, std 1), which turns
    this case into the hand-computed one above; unnormalised, the same inputs give another loss."""
    lp_new, lp_old = jnp.log(jnp.array([0.5, 0.2])), jnp.log(jnp.array([0.25, 0.4]))
    value, old_value, target = jnp.array([1.0, 0.0]), jnp.array([0.5, 0.1]), jnp.array([2.0, 0.0])
    args = (lp_new, lp_old, jnp.array([3.0, 1.0]), value, old_value, target, jnp.array([1.0, 3.0]))
    kw = dict(clip_eps=0.2, value_clip_eps=0.2, vf_coef=0.5, ent_coef=0.01)
    total, aux = ppo.ppo_loss(*args, **kw, normalize_advantages=True)
    np.testing.assert_allclose(aux.policy_loss, -0.2, rtol=1e-6)
    np.testing.assert_allclose(total, -0.2 + 0.5 * 0.4225 - 0.01 * 2.0, rtol=1e-6, atol=1e-6)
    _, raw = ppo.ppo_loss(*args, **kw, normalize_advantages=False)
    # Raw: min(2·3, 1.2·3) = 3.6 and min(0.5·1, 0.8·1) = 0.5 → −(3.6 + 0.5)/2.
    np.testing.assert_allclose(raw.policy_loss, -2.05, rtol=1e-6)


def test_running_stats_equal_numpy_over_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (5, 17, 40)]
    stats = normalizer.init_stats((4,))
    for b in batches:
        stats = normalizer.update_stats(stats, jnp.asarray(b))
    allx = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, allx.mean(0), rtol=1e-4)
    np.testing.assert_allclose(stats.var, allx.var(0), rtol=1e-3)


def test_gru_state_resets_at_episode_boundaries():
    gru = ScannedGRU()
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 3, 5))
    resets = jnp.zeros((6, 3), bool).at[3].set(True)
    h0 = jax.random.normal(jax.random.PRNGKey(1), (3, 64))
    params = gru.init(jax.random.PRNGKey(2), h0, (x, resets))
    _, ys = gru.apply(params, h0, (x, resets))
    # After the reset the outputs equal a fresh run from a zero carry on the remaining inputs.
    _, fresh = gru.apply(params, jnp.zeros((3, 64)), (x[3:], jnp.zeros((3, 3), bool)))
    np.testing.assert_allclose(ys[3:], fresh, rtol=1e-5, atol=1e-6)
    # Without the reset they differ (the carry matters).
    _, no_reset = gru.apply(params, h0, (x, jnp.zeros((6, 3), bool)))
    assert not np.allclose(no_reset[3:], fresh, atol=1e-3)


def test_gru_resets_only_the_rows_whose_episode_starts():
    """A reset in row 1 at step 3 restarts row 1 alone; rows 0 and 2 keep their carry."""
    gru = ScannedGRU()
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 3, 5))
    h0 = jax.random.normal(jax.random.PRNGKey(1), (3, 64))
    params = gru.init(jax.random.PRNGKey(2), h0, (x, jnp.zeros((6, 3), bool)))
    resets = jnp.zeros((6, 3), bool).at[3, 1].set(True)
    _, ys = gru.apply(params, h0, (x, resets))
    _, no_reset = gru.apply(params, h0, (x, jnp.zeros((6, 3), bool)))
    _, fresh = gru.apply(params, jnp.zeros((3, 64)), (x[3:], jnp.zeros((3, 3), bool)))
    np.testing.assert_array_equal(ys[:, [0, 2]], no_reset[:, [0, 2]])
    np.testing.assert_array_equal(ys[:3, 1], no_reset[:3, 1])
    np.testing.assert_allclose(ys[3:, 1], fresh[:, 1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(ys[3:, 1], no_reset[3:, 1], atol=1e-3)


def test_actor_runs_on_any_number_of_agents():
    actor = Actor(9)
    params = actor.init(jax.random.PRNGKey(0), jnp.zeros((1, 64)), jnp.zeros((1, 1, 31)),
                        jnp.zeros((1, 1), bool))
    for n in (2, 5, 18):
        h, dist = actor.apply(params, jnp.zeros((n, 64)), jnp.ones((4, n, 31)), jnp.zeros((4, n), bool))
        assert h.shape == (n, 64) and dist.logits.shape == (4, n, 9)
