"""ONNX export of an SSM policy: one control step, its recurrent state an input and an output.

    obs [N, O], policy_state [N, L, P] -> action [N, A], next_policy_state [N, L, P]

    u   = elu(((obs - mean) / std) @ We + be)
    per layer l:  x_l = a_l * policy_state[:, l] + (1 - a_l) * (u @ B_l)
                  u   = u + elu(x_l @ C_l + d_l * u) @ W_l + w_l
    action = tanh(u @ Wd[:, :A] + bd[:A]);  next_policy_state[:, l] = x_l

exactly `SsmPolicy.step` (workers/training/ssm.py) under the deterministic tanh-normal policy.
The caller keeps the state: zeros at every episode start (reset, fall, time limit), then each
step's next_policy_state fed back as the next policy_state. The metadata says so
(`wildrobot.policy_state_*`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

STATE_INPUT = "policy_state"
STATE_OUTPUT = "next_policy_state"
STATE_RESET = (
    "zeros of policy_state_shape per env at every episode start (after reset, a fall or a time "
    "limit); otherwise feed each step's next_policy_state back as the next policy_state"
)


def read_ssm_params(checkpoint_dir: Path) -> dict[str, Any]:
    """Normalizer and SsmPolicy parameters as float32 numpy (no JAX tracing)."""
    import orbax.checkpoint as ocp

    from ..training import checkpoint as ckpt

    with ocp.StandardCheckpointer() as checkpointer:
        tree = checkpointer.restore(Path(checkpoint_dir).absolute() / ckpt.POLICY_DIR)
    params = tree["policy"]["params"]
    f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
    names = sorted((n for n in params if n.startswith("ssm_")), key=lambda n: int(n[4:]))
    return {
        "mean": f32(tree["normalizer"]["mean"]),
        "std": f32(tree["normalizer"]["std"]),
        "encoder": (f32(params["encoder"]["kernel"]), f32(params["encoder"]["bias"])),
        "decoder": (f32(params["decoder"]["kernel"]), f32(params["decoder"]["bias"])),
        "layers": [{k: f32(v) for k, v in _flat(params[name]).items()} for name in names],
    }


def _flat(layer: dict[str, Any]) -> dict[str, Any]:
    return {
        "nu": layer["nu"],
        "B": layer["B"],
        "C": layer["C"],
        "d": layer["d"],
        "W": layer["out"]["kernel"],
        "w": layer["out"]["bias"],
    }


def build_ssm_model(
    params: dict[str, Any],
    action_size: int,
    normalize_observations: bool,
    metadata: dict[str, str],
    doc_string: str,
) -> Any:
    """The onnx ModelProto of one deterministic SSM step (see the module docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .onnx_policy import INPUT_NAME, IR_VERSION, OPSET, OUTPUT_NAME, ExportError

    kernel_e, bias_e = params["encoder"]
    kernel_d, bias_d = params["decoder"]
    if kernel_d.shape[1] != 2 * action_size:
        raise ExportError(f"decoder has {kernel_d.shape[1]} outputs, expected 2 x {action_size}")
    obs_size, layers = int(kernel_e.shape[0]), params["layers"]
    state_size = int(layers[0]["nu"].shape[0])
    initializers, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        # (np.ascontiguousarray would turn a 0-d index into shape [1])
        initializers.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def dense(x: str, kernel: np.ndarray, bias: np.ndarray, name: str) -> str:
        mm = node("MatMul", [x, const(f"{name}_kernel", kernel)], f"{name}_mm")
        return node("Add", [mm, const(f"{name}_bias", bias)], name)

    x = INPUT_NAME
    if normalize_observations:
        x = node("Sub", [x, const("obs_mean", params["mean"])], "centred")
        x = node("Div", [x, const("obs_std", params["std"])], "normalized")
    u = node("Elu", [dense(x, kernel_e, bias_e, "encoder")], "u_0", alpha=1.0)
    states = []
    for i, layer in enumerate(layers):
        a, scale = _decay(layer["nu"])
        prev = node("Gather", [STATE_INPUT, const(f"index_{i}", np.array(i, np.int64))],
                    f"state_in_{i}", axis=1)  # fmt: skip
        decayed = node("Mul", [prev, const(f"a_{i}", a)], f"decayed_{i}")
        drive = node("MatMul", [u, const(f"B_{i}", layer["B"])], f"drive_{i}")
        drive = node("Mul", [drive, const(f"scale_{i}", scale)], f"scaled_drive_{i}")
        state = node("Add", [decayed, drive], f"state_{i}")
        states.append(node("Unsqueeze", [state, const(f"axis_{i}", np.array([1], np.int64))],
                           f"state_out_{i}"))  # fmt: skip
        read = node("MatMul", [state, const(f"C_{i}", layer["C"])], f"read_{i}")
        skip = node("Mul", [u, const(f"d_{i}", layer["d"])], f"skip_{i}")
        y = node("Elu", [node("Add", [read, skip], f"y_{i}")], f"act_{i}", alpha=1.0)
        u = node("Add", [u, dense(y, layer["W"], layer["w"], f"out_{i}")], f"u_{i + 1}")
    mean = dense(u, kernel_d[:, :action_size], bias_d[:action_size], "decoder")
    node("Tanh", [mean], OUTPUT_NAME)
    node("Concat", states, STATE_OUTPUT, axis=1)

    n_layers = len(layers)
    state_type = ["batch", n_layers, state_size]
    graph = helper.make_graph(
        nodes,
        "wildrobot_ssm_policy",
        [
            helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", obs_size]),
            helper.make_tensor_value_info(STATE_INPUT, TensorProto.FLOAT, state_type),
        ],
        [
            helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", action_size]),
            helper.make_tensor_value_info(STATE_OUTPUT, TensorProto.FLOAT, state_type),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="wildrobot-train",
        doc_string=doc_string,
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model


def _decay(nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a and the input scale 1 - a as the JAX policy computes them (XLA's exp, not numpy's,
    which can differ by an ulp; a decay near 1 accumulates such a gap over ~1/(1 - a) steps)."""
    import jax.numpy as jnp

    a = jnp.exp(-jnp.exp(jnp.asarray(nu, jnp.float32)))
    return np.asarray(a, np.float32), np.asarray(1.0 - a, np.float32)


def state_metadata(layers: int, state_size: int) -> dict[str, Any]:
    """The recurrent-state entries of the export's metadata (unprefixed)."""
    return {
        "policy_arch": "ssm",
        "policy_state_input": STATE_INPUT,
        "policy_state_output": STATE_OUTPUT,
        "policy_state_shape": [layers, state_size],
        "policy_state_reset": STATE_RESET,
    }


def run_onnx_step(
    session: Any, obs: np.ndarray, state: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One step: (next state [N, L, P], actions [N, A]) for obs [N, O] and state [N, L, P]."""
    from .onnx_policy import INPUT_NAME, OUTPUT_NAME

    action, next_state = session.run(
        [OUTPUT_NAME, STATE_OUTPUT],
        {INPUT_NAME: np.asarray(obs, np.float32), STATE_INPUT: np.asarray(state, np.float32)},
    )
    return next_state, action
