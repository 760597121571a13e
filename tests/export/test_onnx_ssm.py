"""ONNX export of an SSM policy: the state is an input and an output; onnxruntime follows JAX
over a 200-step closed loop with episode resets; the metadata says the state's shape and reset."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import onnx
import pytest

from tests.training.tiny_runs import STAND_TINY, RecordingHooks
from wildrobot.specs import PpoSpec
from wildrobot.workers.export import check, onnx_policy, onnx_ssm
from wildrobot.workers.training.ppo import StatefulPolicy, load_policy, train_ppo
from wildrobot.workers.training.trainer import make_base_env

ACTION_TOLERANCE = 1e-5
STEPS = 200
SSM = {"policy_arch": "ssm", "ssm_layers": 2, "ssm_state_size": 8, "ssm_width": 16}


@pytest.fixture(scope="module")
def ssm_stand_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = train_ppo(
        PpoSpec(**{**STAND_TINY, **SSM}), tmp_path_factory.mktemp("ssm-job"), RecordingHooks()
    )
    return Path(result.checkpoint_dir)


@pytest.mark.slow
def test_ssm_export_follows_jax_over_a_closed_loop_with_resets(ssm_stand_checkpoint, tmp_path):
    env = make_base_env("WildRobotStand", {})
    path = onnx_policy.export_policy(ssm_stand_checkpoint, tmp_path / "policy.onnx", job_id="j")
    model = onnx.load(path)
    meta = onnx_policy.read_metadata(model)
    assert meta["policy_arch"] == "ssm"
    assert meta["policy_state_shape"] == [2, 8]
    assert meta["policy_state_input"] == "policy_state"
    assert meta["policy_state_output"] == "next_policy_state"
    assert "zeros" in meta["policy_state_reset"]
    assert [i.name for i in model.graph.input] == ["obs", "policy_state"]
    assert [o.name for o in model.graph.output] == ["action", "next_policy_state"]

    session = onnx_policy.onnx_session(path)
    policy = load_policy(ssm_stand_checkpoint)
    assert isinstance(policy, StatefulPolicy)
    stepper = check.Stepper(env)
    # The JAX policy drives the robot; ONNX sees the same observations and carries its own
    # state; both states are zeroed whenever an episode ends (a fall), as the metadata says.
    env_state = stepper.reset(jax.random.PRNGKey(0))
    jax_state = np.asarray(policy.init_state((1,)))
    onnx_state = np.zeros((1, 2, 8), np.float32)
    differences, state_gaps, actions, resets = [], [], [], 0
    for t in range(STEPS):
        obs = np.asarray(env_state.obs)[None]
        jax_state, jax_action = policy.step(jax_state, obs)
        onnx_state, onnx_action = onnx_ssm.run_onnx_step(session, obs, onnx_state)
        differences.append(np.abs(np.asarray(jax_action) - onnx_action).max())
        state_gaps.append(np.abs(np.asarray(jax_state) - onnx_state).max())
        actions.append(np.asarray(jax_action)[0])
        env_state = stepper.step(env_state, jax_action[0])
        if bool(env_state.done):
            resets += 1
            env_state = stepper.reset(jax.random.PRNGKey(t + 1))
            jax_state = np.asarray(policy.init_state((1,)))
            onnx_state = np.zeros_like(onnx_state)
    print(f"\nssm onnx vs jax, {STEPS} closed-loop steps ({resets} resets): max |action diff| "
          f"{max(differences):.2e}, max |state diff| {max(state_gaps):.2e}")  # fmt: skip
    assert max(differences) <= ACTION_TOLERANCE
    assert max(state_gaps) <= 1e-4  # float32 rounding on states of size ~1-10
    # Not vacuous: the actions vary, and the state matters (a zero state gives other actions).
    assert np.std(np.stack(actions)) > 0.01
    assert np.abs(np.asarray(jax_state)).max() > 1e-3 or resets > 0
    zero_next, zero_state_action = onnx_ssm.run_onnx_step(session, obs, np.zeros_like(onnx_state))
    ones_next, carried_action = onnx_ssm.run_onnx_step(session, obs, np.ones_like(onnx_state))
    # The state input is wired through: it changes the next state, and the action (this small
    # policy saturates most action dims at +-1 through the tanh, so the action's change is small).
    assert np.abs(zero_next - ones_next).max() > 1e-3
    assert np.abs(zero_state_action - carried_action).max() > 1e-6
