"""ONNX export of a trained policy: observation normalizer, MLP, tanh of the mean action.

The graph is written with the `onnx` package's helper API straight from the checkpoint's
parameters (docs/export.md says why not jax2onnx or jax2tf + tf2onnx):

    obs [N, obs_size] -> (obs - mean) / std -> (Dense -> activation) x hidden -> Dense[:A] -> tanh

which is exactly Brax's deterministic tanh-normal policy (`make_inference_fn(...,
deterministic=True)`: the mode of the pre-tanh normal is its mean, the first `action_size`
outputs of the last layer). The model's metadata_props say how to build the observation and
use the action on the robot (see `metadata`). tests/export/ checks it against `load_policy`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..training import checkpoint as ckpt

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.10 (robot-side runtimes lag behind)
INPUT_NAME = "obs"
OUTPUT_NAME = "action"
METADATA_PREFIX = "wildrobot."


class ExportError(ValueError):
    """The checkpoint holds a network this exporter does not write."""


def _activation_nodes(helper: Any, name: str, x: str, out: str) -> list[Any]:
    if name == "elu":
        return [helper.make_node("Elu", [x], [out], alpha=1.0)]
    if name == "relu":
        return [helper.make_node("Relu", [x], [out])]
    if name == "tanh":
        return [helper.make_node("Tanh", [x], [out])]
    if name == "swish":  # x * sigmoid(x); opset 17 has no Swish
        return [
            helper.make_node("Sigmoid", [x], [f"{out}_sigmoid"]),
            helper.make_node("Mul", [x, f"{out}_sigmoid"], [out]),
        ]
    raise ExportError(f"activation {name!r} has no ONNX mapping here")


def read_policy_params(checkpoint_dir: Path) -> dict[str, Any]:
    """The checkpoint's normalizer and policy parameters as numpy arrays (no JAX tracing)."""
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        tree = checkpointer.restore(Path(checkpoint_dir).absolute() / ckpt.POLICY_DIR)
    layers = tree["policy"]["params"]
    hidden = sorted(
        (name for name in layers if name.startswith("hidden_")), key=lambda n: int(n[7:])
    )
    # Brax's MLP with layer_norm: LayerNorm_<i> follows the activation of hidden layer i.
    norms = sorted(
        (name for name in layers if name.startswith("LayerNorm_")), key=lambda n: int(n[10:])
    )
    return {
        "mean": np.asarray(tree["normalizer"]["mean"], np.float32),
        "std": np.asarray(tree["normalizer"]["std"], np.float32),
        "layers": [
            (
                np.asarray(layers[f"hidden_{i}"]["kernel"], np.float32),
                np.asarray(layers[f"hidden_{i}"]["bias"], np.float32),
            )
            for i in range(len(hidden))
        ],
        "norms": [
            (
                np.asarray(layers[name]["scale"], np.float32),
                np.asarray(layers[name]["bias"], np.float32),
            )
            for name in norms
        ],
    }


def build_model(
    params: dict[str, Any],
    action_size: int,
    activation: str,
    normalize_observations: bool,
    metadata: dict[str, str],
) -> Any:
    """The onnx ModelProto of the deterministic policy; input `obs` [N, obs], output `action`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    layers = params["layers"]
    norms = params.get("norms", [])
    if norms and len(norms) != len(layers) - 1:
        raise ExportError(f"{len(norms)} LayerNorms for {len(layers) - 1} hidden layers")
    obs_size = int(layers[0][0].shape[0])
    if layers[-1][0].shape[1] != 2 * action_size:
        raise ExportError(
            f"last layer has {layers[-1][0].shape[1]} outputs, expected 2 x {action_size} "
            "(mean and scale of a tanh-normal policy)"
        )
    initializers, nodes = [], []

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    x = INPUT_NAME
    if normalize_observations:
        nodes.append(
            helper.make_node("Sub", [x, constant("obs_mean", params["mean"])], ["centred"])
        )
        nodes.append(
            helper.make_node("Div", ["centred", constant("obs_std", params["std"])], ["normalized"])
        )
        x = "normalized"
    for i, (kernel, bias) in enumerate(layers):
        last = i == len(layers) - 1
        if last:  # only the mean half of the output: the deterministic action ignores the scale
            kernel, bias = kernel[:, :action_size], bias[:action_size]
        nodes.append(helper.make_node("MatMul", [x, constant(f"kernel_{i}", kernel)], [f"mm_{i}"]))
        nodes.append(
            helper.make_node("Add", [f"mm_{i}", constant(f"bias_{i}", bias)], [f"dense_{i}"])
        )
        if last:
            nodes.append(helper.make_node("Tanh", [f"dense_{i}"], [OUTPUT_NAME]))
        else:
            nodes.extend(_activation_nodes(helper, activation, f"dense_{i}", f"hidden_{i}"))
            x = f"hidden_{i}"
            if norms:  # flax LayerNorm: epsilon 1e-6 over the last axis
                scale, shift = norms[i]
                inputs = [x, constant(f"ln_scale_{i}", scale), constant(f"ln_bias_{i}", shift)]
                nodes.append(
                    helper.make_node(
                        "LayerNormalization", inputs, [f"normed_{i}"], axis=-1, epsilon=1e-6
                    )
                )
                x = f"normed_{i}"
    graph = helper.make_graph(
        nodes,
        "wildrobot_policy",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", obs_size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", action_size])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="wildrobot-train",
        doc_string=(
            "Deterministic WildRobot policy: action = tanh(MLP((obs - mean) / std)). "
            "See metadata_props wildrobot.* for the observation layout and action mapping."
        ),
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model


def metadata(env: Any, task: str, job_id: str, step: int, layout: list[Any]) -> dict[str, str]:
    """What a robot-side program needs besides the graph, as metadata_props strings.

    Always: task, job_id, step, observation_layout (JSON [{name, start, stop}]), control_rate_hz.
    For MuJoCo tasks also: joint_names, home_ctrl (servo targets at home, rad), action_scale,
    action_filter_alpha, ctrl_range, and `action_mapping`, the formula that turns the action
    into servo targets.
    """
    meta: dict[str, Any] = {
        "task": task,
        "job_id": job_id,
        "step": int(step),
        "observation_size": int(env.observation_size),
        "action_size": int(env.action_size),
        "observation_layout": [part.to_dict() for part in layout],
        "control_rate_hz": 1.0 / _control_dt(env),
    }
    mj_model = getattr(env, "mj_model", None)
    if mj_model is not None:
        import mujoco

        from wildrobot.envs.wildrobot import constants

        key = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_KEY, constants.HOME_KEYFRAME)
        cfg = env.config
        meta.update(
            joint_names=[mj_model.actuator(i).name for i in range(mj_model.nu)],
            home_ctrl=[float(v) for v in mj_model.key_ctrl[key]],
            action_scale=float(cfg.action_scale),
            action_filter_alpha=float(cfg.action_filter_alpha),
            ctrl_range=[[float(lo), float(hi)] for lo, hi in mj_model.actuator_ctrlrange],
            action_mapping=(
                "filtered = alpha * clip(action, -1, 1) + (1 - alpha) * filtered_prev; "
                "target = clip(home_ctrl + action_scale * filtered, ctrl_range); "
                "last_action in the next observation is the unfiltered action"
            ),
        )
    return {
        METADATA_PREFIX + name: value if isinstance(value, str) else json.dumps(value)
        for name, value in meta.items()
    }


def _control_dt(env: Any) -> float:
    dt = getattr(env, "dt", None)  # Brax's PipelineEnv and the WildRobot envs
    return float(dt if dt is not None else env.config.dt)


def read_metadata(model: Any) -> dict[str, Any]:
    """metadata_props of an exported model, JSON values decoded, prefix dropped."""
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        if not prop.key.startswith(METADATA_PREFIX):
            continue
        try:
            out[prop.key[len(METADATA_PREFIX) :]] = json.loads(prop.value)
        except json.JSONDecodeError:
            out[prop.key[len(METADATA_PREFIX) :]] = prop.value
    return out


def export_policy(
    checkpoint_dir: Path, out_path: Path, job_id: str | None = None, env: Any = None
) -> Path:
    """Writes the checkpoint's deterministic policy as ONNX to out_path (atomically).

    job_id defaults to the run folder's name (<artifact_dir>/<job_id>/checkpoints/<step>, or
    <artifact_dir>/<job_id>/attempt-<n>/checkpoints/<step> as the service writes them);
    env (the task's unwrapped env, for the layout and action metadata) is made from the
    checkpoint's spec when not given.
    """
    from ..training.trainer import make_base_env
    from .observation_layout import observation_layout

    checkpoint_dir, out_path = Path(checkpoint_dir), Path(out_path)
    spec = ckpt.read_spec(checkpoint_dir)
    config = ckpt.read_network_config(checkpoint_dir)
    if not isinstance(config.observation_size, int):
        raise ExportError("dict observations are not exported yet (flat observations only)")
    if env is None:
        env = make_base_env(spec.task, spec.env_overrides)
    step = ckpt.read_meta(checkpoint_dir)["env_steps"]
    run_dir = checkpoint_dir.resolve().parent.parent
    job = job_id or (run_dir.parent if run_dir.name.startswith("attempt-") else run_dir).name
    meta = metadata(env, spec.task, job, step, observation_layout(env))
    if config.recurrent:
        from . import onnx_ssm

        state_meta = onnx_ssm.state_metadata(config.ssm_layers, config.ssm_state_size)
        meta.update(
            {
                METADATA_PREFIX + k: v if isinstance(v, str) else json.dumps(v)
                for k, v in state_meta.items()
            }
        )
        model = onnx_ssm.build_ssm_model(
            onnx_ssm.read_ssm_params(checkpoint_dir),
            config.action_size,
            config.normalize_observations,
            meta,
            doc_string=(
                "Deterministic WildRobot SSM policy, one control step: (obs, policy_state) -> "
                "(action, next_policy_state); policy_state is zeros at every episode start. "
                "See metadata_props wildrobot.* for the layout, action mapping and state."
            ),
        )
    else:
        model = build_model(
            read_policy_params(checkpoint_dir),
            config.action_size,
            config.activation,
            config.normalize_observations,
            meta,
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(out_path)
    return out_path


def onnx_session(path_or_bytes: Path | bytes) -> Any:
    """An onnxruntime CPU session for an exported model."""
    import onnxruntime as ort

    source = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, obs: np.ndarray) -> np.ndarray:
    """Actions [..., A] for observations [..., obs] (any leading shape)."""
    obs = np.asarray(obs, np.float32)
    flat = obs.reshape(-1, obs.shape[-1])
    (actions,) = session.run([OUTPUT_NAME], {INPUT_NAME: flat})
    return actions.reshape(*obs.shape[:-1], actions.shape[-1])
