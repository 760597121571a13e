"""The SSM ONNX graph alone (no training): onnxruntime equals SsmPolicy.step over 200 steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from wildrobot.workers.export import onnx_policy, onnx_ssm
from wildrobot.workers.training.ssm import SsmPolicy

OBS, ACTIONS, LAYERS, STATES, WIDTH = 7, 3, 2, 8, 16


def test_graph_equals_the_step_form_carrying_the_state() -> None:
    module = SsmPolicy(output_size=2 * ACTIONS, width=WIDTH, state_size=STATES, layers=LAYERS)
    key_init, key_obs, key_norm = jax.random.split(jax.random.PRNGKey(0), 3)
    variables = module.init(key_init, jnp.zeros((1, 1, OBS)), jnp.zeros((1, LAYERS, STATES)),
                            jnp.zeros((1, 1)))  # fmt: skip
    p = variables["params"]
    mean = np.asarray(jax.random.normal(key_norm, (OBS,)), np.float32)
    std = np.full(OBS, 1.5, np.float32)
    layers = [{"nu": p[f"ssm_{i}"]["nu"], "B": p[f"ssm_{i}"]["B"], "C": p[f"ssm_{i}"]["C"],
               "d": p[f"ssm_{i}"]["d"], "W": p[f"ssm_{i}"]["out"]["kernel"],
               "w": p[f"ssm_{i}"]["out"]["bias"]} for i in range(LAYERS)]  # fmt: skip
    params = {
        "mean": mean,
        "std": std,
        "encoder": (np.asarray(p["encoder"]["kernel"]), np.asarray(p["encoder"]["bias"])),
        "decoder": (np.asarray(p["decoder"]["kernel"]), np.asarray(p["decoder"]["bias"])),
        "layers": [{k: np.asarray(v, np.float32) for k, v in layer.items()} for layer in layers],
    }
    model = onnx_ssm.build_ssm_model(params, ACTIONS, True, {}, "test")
    session = onnx_policy.onnx_session(model.SerializeToString())

    @jax.jit
    def jax_step(obs, state):
        logits, state = module.apply(variables, (obs - mean) / std, state, method=SsmPolicy.step)
        return state, jnp.tanh(logits[..., :ACTIONS])

    batch = 4
    observations = 2.0 * np.asarray(jax.random.normal(key_obs, (200, batch, OBS)), np.float32)
    jax_state = onnx_state = np.zeros((batch, LAYERS, STATES), np.float32)
    worst = 0.0
    for obs in observations:
        jax_state, jax_action = jax_step(obs, jax_state)
        onnx_state, onnx_action = onnx_ssm.run_onnx_step(session, obs, onnx_state)
        worst = max(worst, float(np.abs(np.asarray(jax_action) - onnx_action).max()))
        np.testing.assert_allclose(onnx_state, jax_state, rtol=1e-5, atol=1e-5)
    assert worst <= 1e-5
    assert np.abs(onnx_state).max() > 1e-2  # the state carried something
