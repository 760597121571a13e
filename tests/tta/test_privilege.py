"""No method reads what its declaration does not give it (workers/tta/methods.py).

Structural test: every method that is handed the env state (best-of-N's lookahead, sysid's
`observe`; the others see only the observation) runs on the real env under the `imu` and
`latency` shifts twice, once as it is and once with every field of the env state that carries
a shift's true value replaced by garbage wherever the method is handed it (`make_rollout(method_view=...)`): the
clean observation and the true IMU reading (NaN), the episode's latency (0 substeps) and push
(NaN), and, unless it declares noise_free_state or privileged_state, the whole simulator state
(NaN). The results must be identical, episode for episode. The oracle (the old best_of_n: its
lookahead started from the true state) must differ under the same garbage: the test can fail.
Also: the measured-state estimator recovers a freshly reset robot within the sensor noise.
Also: sysid_best_of_n plans under sysid's estimate (at rate 0 it is best_of_n exactly).
Fresh small policies (the mechanics need no training); four rollout compiles (two with sysid's
forward-mode replay), each shared by the tests that run it: a few minutes on a quiet 2-core CPU,
much more under load.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wildrobot.envs import registry
from wildrobot.workers.tta import methods, shifts
from wildrobot.workers.tta.adapters import make_adapter
from wildrobot.workers.tta.evaluate import _fresh
from wildrobot.workers.tta.rollout import make_rollout

pytestmark = pytest.mark.slow

EPISODES, STEPS = 2, 6
SAMPLES, HORIZON = 2, 2
SHIFTS = ("imu", "latency")


@pytest.fixture(scope="module")
def env():
    return registry.make("WildRobotStand")


def garbage_view(method: methods.Method):
    """view(state, garbage) -> the env State with, where `garbage` (a traced flag: one compile
    serves both runs), every truth-carrying field the declaration excludes made garbage."""
    hidden = methods.truth_fields(method)

    def view(state, garbage):
        def spoil(tree):
            return jax.tree.map(
                lambda x: (
                    jnp.where(garbage, jnp.nan, x) if jnp.issubdtype(x.dtype, jnp.floating) else x
                ),
                tree,
            )

        info = dict(state.info)
        if hidden["info"]:
            # 0: no delay at all. (A large value would not do: the env clips the delay to two
            # control steps, so 1000 acts exactly as latency/5's 10 substeps.)
            info["action_substeps"] = jnp.where(garbage, 0, info["action_substeps"])
            info["push_force"] = spoil(info["push_force"])
            info["imu_prev"] = spoil(info["imu_prev"])
        return state.replace(
            info=info,
            obs=spoil(state.obs) if hidden["obs"] else state.obs,
            pipeline_state=(
                spoil(state.pipeline_state) if hidden["pipeline_state"] else state.pipeline_state
            ),
        )

    return view


class Program:
    """One method's compiled rollout (with `view_of`'s garbage view), run per shift; its plain
    and garbage results are computed once per module and shared by the tests below."""

    def __init__(self, env, source, method: methods.Method, view_of: methods.Method) -> None:
        self.source = source
        self.adapter = make_adapter(method.adapter, source, env=env, learning_rate=0.3)
        samples = SAMPLES if method.best_of_n else 1
        self.run = make_rollout(
            env,
            source,
            self.adapter,
            EPISODES,
            STEPS,
            samples=samples,
            horizon=HORIZON if samples > 1 else 0,
            privileged=method.privileged,
            method_view=garbage_view(view_of),
        )
        self.params = {
            name: shifts.shift_params(
                name, env.config, 5, jax.random.split(jax.random.PRNGKey(1), EPISODES)
            )
            for name in SHIFTS
        }

    def fresh(self):
        return _fresh(self.adapter, self.source, EPISODES)

    def values(self, shift: str, adapter_state=None, garbage: bool = False) -> dict:
        state = self.fresh() if adapter_state is None else adapter_state
        values, _ = self.run(
            self.source.params,
            self.params[shift],
            state,
            jax.random.PRNGKey(2),
            jnp.asarray(garbage),
        )
        return {k: np.asarray(v) for k, v in values.items()}

    @functools.cached_property
    def plain_and_garbage(self) -> tuple[dict, dict]:
        """({shift: values} as the method runs, the same with garbage in its view)."""
        return tuple(
            {shift: self.values(shift, garbage=garbage) for shift in SHIFTS}
            for garbage in (False, True)
        )


@pytest.fixture(scope="module")
def program(env, ln_source):
    """program(name, view_of=name) -> its Program, compiled once per module."""
    return functools.cache(
        lambda name, view_of=None: Program(
            env, ln_source, methods.REGISTRY[name], methods.REGISTRY[view_of or name]
        )
    )


def _handed_state(name: str, env, source) -> bool:
    """Whether the rollout hands the method an env State at all: best-of-N's lookahead and an
    adapter's `observe` get one; `act` gets only the observation."""
    method = methods.REGISTRY[name]
    adapter = make_adapter(method.adapter, source, env=env)
    return method.best_of_n or hasattr(adapter, "observe")


def test_observation_only_methods_are_never_handed_the_state(env, ln_source):
    """none, obs_norm and tent act on the observation alone (no lookahead, no `observe`), and
    maml also on its own episodes' observations, actions and rewards (`collect`): the rollout
    never hands them an env State, so the garbage test below need not run them."""
    handed = {name: _handed_state(name, env, ln_source) for name in methods.METHODS}
    assert {n for n, h in handed.items() if not h} == {"none", "obs_norm", "tent", "maml"}
    for name in (n for n, h in handed.items() if not h):
        assert set(methods.REGISTRY[name].inputs) <= {"observation", "own_episodes"}, name


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("name", ["sysid", "best_of_n", "sysid_best_of_n"])
def test_no_method_reads_the_truth(program, name):
    plain, garbage = program(name).plain_and_garbage
    for shift in plain:
        assert plain[shift]["steps_alive"].min() > 0
        for key, value in plain[shift].items():
            np.testing.assert_array_equal(garbage[shift][key], value, err_msg=f"{shift} {key}")


@pytest.mark.timeout(1200)
def test_the_oracle_reads_the_truth(program):
    """best_of_n_oracle is the old best_of_n: under best_of_n's garbage its choices change."""
    plain, garbage = program("best_of_n_oracle", "best_of_n").plain_and_garbage
    for shift in plain:
        assert not np.array_equal(plain[shift]["return"], garbage[shift]["return"]), shift


@pytest.mark.timeout(1200)
def test_sysid_best_of_n_plans_under_the_estimate(program):
    """At sysid rate 0 the estimate stays the nominal model, so sysid_best_of_n is best_of_n
    exactly; started from another estimate (kp x 0.4, held by rate 0) the lookahead's model
    changes and so do the chosen actions: the combination really plans under sysid's estimate.
    The rate is part of sysid's state, so these runs reuse the compile of the test above."""
    best_of_n, _ = program("best_of_n").plain_and_garbage
    combined = program("sysid_best_of_n")
    still = combined.fresh().replace(rate=jnp.zeros(EPISODES))
    start = still.log_scale.at[:, 1].set(jnp.log(0.4))
    held = still.replace(log_scale=start, anchor=start)  # the trust region's centre too
    for shift in SHIFTS:
        values = combined.values(shift, still)
        for name, value in best_of_n[shift].items():
            np.testing.assert_array_equal(values[name], value, err_msg=f"{shift} {name}")
        np.testing.assert_array_equal(values["estimate/kp_scale"], 1.0)
        moved = combined.values(shift, held)
        np.testing.assert_allclose(moved["estimate/kp_scale"], 0.4, rtol=1e-6)
        assert not np.array_equal(moved["return"], values["return"]), shift


def test_declarations():
    assert methods.REGISTRY["best_of_n_oracle"].privileged
    assert not any(m.privileged for n, m in methods.REGISTRY.items() if n != "best_of_n_oracle")
    with pytest.raises(ValueError, match="only them"):
        methods.Method("best_of_n_cheat", "none", True, ("observation", "privileged_state"))
    with pytest.raises(ValueError, match="only them"):
        methods.Method("x_oracle", "none", True, ("observation",))
    with pytest.raises(ValueError, match="unknown inputs"):
        methods.Method("x", "none", False, ("the_answer",))


def test_state_from_measurement_recovers_a_reset_robot(env):
    """From a reset state's own (noisy) observation: joints within the encoder noise, tilt within
    the gravity reading's noise, angular velocity within the gyro's, the base height within
    1 cm (the reset pose stands on its feet). (best_of_n steps from it in the tests above.)"""
    cfg = env.config.noise
    state = jax.jit(env.reset)(jax.random.PRNGKey(3))
    est = jax.jit(env.state_from_measurement)(state.obs, state.info)
    true, guess = state.pipeline_state, est.pipeline_state
    joints = env.joint_qpos_addresses
    np.testing.assert_allclose(
        guess.qpos[joints], true.qpos[joints], atol=cfg.level * cfg.joint_pos + 1e-5
    )

    def down_in_base(quat):  # world (0, 0, -1) in the base frame
        w, x, y, z = quat
        return -jnp.array([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])

    np.testing.assert_allclose(
        down_in_base(guess.qpos[3:7]),
        down_in_base(true.qpos[3:7]),
        atol=4 * cfg.level * cfg.gravity,
    )
    np.testing.assert_allclose(guess.qvel[3:6], true.qvel[3:6], atol=2 * cfg.level * cfg.gyro)
    assert abs(float(guess.qpos[2] - true.qpos[2])) < 0.01
    assert float(jnp.abs(guess.qvel[:3]).max()) == 0.0  # assumed: no linear velocity
