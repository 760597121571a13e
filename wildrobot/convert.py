"""The one place that converts between wire messages (wildrobot.v1) and specs (wildrobot.specs).

Unset optional proto fields mean "the spec's default"; converting a spec to proto sets every
field, so a round trip is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from wildrobot.exports import ArtifactKind
from wildrobot.specs import (
    AmpSpec,
    InverseDynamicsSpec,
    JobKind,
    JobState,
    MamlSpec,
    PpoSpec,
    TtaEvalSpec,
)
from wildrobot.v1 import jobs_pb2

_PPO_SCALARS = (
    "task",
    "num_envs",
    "num_timesteps",
    "episode_length",
    "unroll_length",
    "batch_size",
    "num_minibatches",
    "num_updates_per_batch",
    "learning_rate",
    "learning_rate_schedule",
    "entropy_cost",
    "discounting",
    "gae_lambda",
    "clipping_epsilon",
    "max_grad_norm",
    "reward_scaling",
    "normalize_observations",
    "seed",
    "checkpoint_every",
    "num_eval_envs",
    "eval_every",
    "num_hosts",
    "export_onnx",
    "video_seconds",
    "policy_layer_norm",
    "policy_arch",
    "ssm_layers",
    "ssm_state_size",
    "ssm_width",
)
_PPO_REPEATED = ("policy_hidden_sizes", "value_hidden_sizes")

_KIND_TO_PROTO = {
    JobKind.PPO: jobs_pb2.JOB_KIND_PPO,
    JobKind.AMP: jobs_pb2.JOB_KIND_AMP,
    JobKind.INVERSE_DYNAMICS: jobs_pb2.JOB_KIND_INVERSE_DYNAMICS,
    JobKind.TTA_EVAL: jobs_pb2.JOB_KIND_TTA_EVAL,
    JobKind.MAML: jobs_pb2.JOB_KIND_MAML,
}
_KIND_FROM_PROTO = {v: k for k, v in _KIND_TO_PROTO.items()}
_STATE_TO_PROTO = {state: jobs_pb2.JobState.Value(f"JOB_STATE_{state.value}") for state in JobState}
_STATE_FROM_PROTO = {v: k for k, v in _STATE_TO_PROTO.items()}


_ARTIFACT_TO_PROTO = {
    ArtifactKind.ONNX: jobs_pb2.ARTIFACT_KIND_ONNX,
    ArtifactKind.VIDEO: jobs_pb2.ARTIFACT_KIND_VIDEO,
}
_ARTIFACT_FROM_PROTO = {v: k for k, v in _ARTIFACT_TO_PROTO.items()}


def artifact_kind_to_proto(kind: ArtifactKind | str) -> int:
    return _ARTIFACT_TO_PROTO[ArtifactKind(kind)]


def artifact_kind_from_proto(value: int) -> ArtifactKind | None:
    """None for ARTIFACT_KIND_UNSPECIFIED (or an unknown number)."""
    return _ARTIFACT_FROM_PROTO.get(value)


def kind_to_proto(kind: JobKind) -> int:
    return _KIND_TO_PROTO[kind]


def kind_from_proto(value: int) -> JobKind | None:
    """None for JOB_KIND_UNSPECIFIED (or an unknown number)."""
    return _KIND_FROM_PROTO.get(value)


def state_to_proto(state: JobState) -> int:
    return _STATE_TO_PROTO[state]


def state_from_proto(value: int) -> JobState | None:
    return _STATE_FROM_PROTO.get(value)


def ppo_spec_to_proto(spec: PpoSpec) -> jobs_pb2.PpoSpec:
    return ppo_spec_fields_to_proto(spec.model_dump(exclude={"kind"}))


def ppo_spec_fields_to_proto(fields: Mapping[str, Any]) -> jobs_pb2.PpoSpec:
    """A PpoSpec message setting only `fields` (the rest stay unset: the server's defaults).

    Not validated beyond the wire types; raises ValueError/TypeError naming the field when a value
    does not fit its proto type (e.g. a negative count), KeyError for an unknown field.
    """
    msg = jobs_pb2.PpoSpec()
    for name, value in fields.items():
        try:
            if name in _PPO_SCALARS:
                setattr(msg, name, value)
            elif name in _PPO_REPEATED:
                getattr(msg, name).extend(value)
            elif name == "env_overrides":
                for key, item in value.items():
                    msg.env_overrides[key].CopyFrom(_to_value(item))
            else:
                raise KeyError(f"PpoSpec has no field {name!r}")
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name}: {exc}") from exc
    return msg


def ppo_spec_fields_from_proto(msg: jobs_pb2.PpoSpec) -> dict[str, Any]:
    """The fields a PpoSpec message sets, as a dict for `PpoSpec(**fields)` (not validated)."""
    fields: dict[str, Any] = {
        name: getattr(msg, name) for name in _PPO_SCALARS if msg.HasField(name)
    }
    for name in _PPO_REPEATED:
        if len(getattr(msg, name)):
            fields[name] = tuple(getattr(msg, name))
    if msg.env_overrides:
        fields["env_overrides"] = {k: _from_value(v) for k, v in msg.env_overrides.items()}
    return fields


def ppo_spec_from_proto(msg: jobs_pb2.PpoSpec) -> PpoSpec:
    """Validates; raises pydantic.ValidationError naming the offending field."""
    return PpoSpec(**ppo_spec_fields_from_proto(msg))


_AMP_SCALARS = (
    "task_weight",
    "style_weight",
    "disc_loss",
    "disc_learning_rate",
    "disc_updates_per_iteration",
    "disc_batch_size",
    "grad_penalty",
    "logit_reg",
    "replay_size",
    "window",
    "disc_noise_target",
    "disc_noise_step",
)
_AMP_REPEATED = ("motions", "disc_hidden_sizes")


def amp_spec_fields_to_proto(fields: Mapping[str, Any]) -> jobs_pb2.AmpSpec:
    """An AmpSpec message setting only `fields` (AmpSpec's own and PpoSpec's, flat as in the
    spec); the rest stay unset: the server's defaults. Raises as `ppo_spec_fields_to_proto`."""
    msg = jobs_pb2.AmpSpec()
    ppo_fields = {}
    for name, value in fields.items():
        if name == "kind":
            continue
        if name not in _AMP_SCALARS and name not in _AMP_REPEATED:
            ppo_fields[name] = value
            continue
        try:
            if name in _AMP_SCALARS:
                setattr(msg, name, value)
            else:
                getattr(msg, name).extend(value)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name}: {exc}") from exc
    try:
        msg.ppo.CopyFrom(ppo_spec_fields_to_proto(ppo_fields))
    except KeyError:
        unknown = next(n for n in ppo_fields if n not in _PPO_SCALARS + _PPO_REPEATED)
        raise KeyError(f"AmpSpec has no field {unknown!r}") from None
    return msg


def amp_spec_to_proto(spec: AmpSpec) -> jobs_pb2.AmpSpec:
    return amp_spec_fields_to_proto(spec.model_dump(exclude={"kind"}))


def amp_spec_fields_from_proto(msg: jobs_pb2.AmpSpec) -> dict[str, Any]:
    """The fields an AmpSpec message sets, flat, for `AmpSpec(**fields)` (not validated)."""
    fields = ppo_spec_fields_from_proto(msg.ppo)
    fields.update({name: getattr(msg, name) for name in _AMP_SCALARS if msg.HasField(name)})
    for name in _AMP_REPEATED:
        if len(getattr(msg, name)):
            fields[name] = tuple(getattr(msg, name))
    return fields


def amp_spec_from_proto(msg: jobs_pb2.AmpSpec) -> AmpSpec:
    """Validates; raises pydantic.ValidationError naming the offending field (flat: `motions`,
    `num_envs`)."""
    return AmpSpec(**amp_spec_fields_from_proto(msg))


_ID_SCALARS = ("smooth_window", "smooth_forces", "cop_threshold", "float64")
_ID_REPEATED = ("trials_npz", "trial_names")


def inverse_dynamics_spec_to_proto(spec: InverseDynamicsSpec) -> jobs_pb2.InverseDynamicsSpec:
    msg = jobs_pb2.InverseDynamicsSpec()
    for name in _ID_SCALARS:
        setattr(msg, name, getattr(spec, name))
    for name in _ID_REPEATED:
        getattr(msg, name).extend(getattr(spec, name))
    return msg


def inverse_dynamics_spec_from_proto(msg: jobs_pb2.InverseDynamicsSpec) -> InverseDynamicsSpec:
    """Validates; raises pydantic.ValidationError naming the offending field."""
    fields: dict[str, Any] = {n: getattr(msg, n) for n in _ID_SCALARS if msg.HasField(n)}
    for name in _ID_REPEATED:
        if len(getattr(msg, name)):
            fields[name] = tuple(getattr(msg, name))
    return InverseDynamicsSpec(**fields)


_TTA_SCALARS = (
    "checkpoint_step",
    "episodes",
    "episode_length",
    "mode",
    "best_of_n_samples",
    "lookahead_steps",
    "obs_norm_rate",
    "tent_learning_rate",
    "tent_kl_weight",
    "sysid_rate",
    "adapt_steps",
    "adapt_episodes",
    "maml_rate",
)
_TTA_REPEATED = ("shifts", "severities", "methods", "seeds")


def tta_eval_fields_to_proto(fields: dict[str, Any]) -> jobs_pb2.TtaEvalSpec:
    """Only the given fields (the server fills in the defaults); raises ValueError/TypeError."""
    msg = jobs_pb2.TtaEvalSpec()
    for name, value in fields.items():
        if name == "kind":
            continue
        if name == "checkpoint_job_id":
            msg.checkpoint_job_id = value
        elif name in _TTA_REPEATED:
            getattr(msg, name).extend(value)
        elif name in _TTA_SCALARS:
            if value is not None:
                setattr(msg, name, value)
        else:
            raise ValueError(f"{name}: not a tta_eval spec field")
    return msg


def tta_eval_spec_to_proto(spec: TtaEvalSpec) -> jobs_pb2.TtaEvalSpec:
    return tta_eval_fields_to_proto(spec.model_dump(exclude={"kind"}))


def tta_eval_spec_from_proto(msg: jobs_pb2.TtaEvalSpec) -> TtaEvalSpec:
    """Validates; raises pydantic.ValidationError naming the offending field."""
    fields: dict[str, Any] = {n: getattr(msg, n) for n in _TTA_SCALARS if msg.HasField(n)}
    fields["checkpoint_job_id"] = msg.checkpoint_job_id
    for name in _TTA_REPEATED:
        if len(getattr(msg, name)):
            fields[name] = tuple(getattr(msg, name))
    return TtaEvalSpec(**fields)


_MAML_REPEATED = ("policy_hidden_sizes", "value_hidden_sizes")
_MAML_SCALARS = tuple(
    name for name in MamlSpec.model_fields if name != "kind" and name not in _MAML_REPEATED
)


def maml_fields_to_proto(fields: Mapping[str, Any]) -> jobs_pb2.MamlSpec:
    """Only the given fields (unset ones take the spec's defaults); raises ValueError/TypeError."""
    msg = jobs_pb2.MamlSpec()
    for name, value in fields.items():
        if name == "kind":
            continue
        if name in _MAML_REPEATED:
            getattr(msg, name).extend(value)
        elif name in _MAML_SCALARS:
            if value is not None:
                setattr(msg, name, value)
        else:
            raise ValueError(f"{name}: not a maml spec field")
    return msg


def maml_spec_to_proto(spec: MamlSpec) -> jobs_pb2.MamlSpec:
    return maml_fields_to_proto(spec.model_dump(exclude={"kind"}))


def maml_spec_from_proto(msg: jobs_pb2.MamlSpec) -> MamlSpec:
    """Validates; raises pydantic.ValidationError naming the offending field."""
    fields: dict[str, Any] = {n: getattr(msg, n) for n in _MAML_SCALARS if msg.HasField(n)}
    for name in _MAML_REPEATED:
        if len(getattr(msg, name)):
            fields[name] = tuple(getattr(msg, name))
    return MamlSpec(**fields)


def spec_to_proto(
    spec: PpoSpec | AmpSpec | InverseDynamicsSpec | TtaEvalSpec | MamlSpec,
) -> jobs_pb2.JobSpec:
    if isinstance(spec, MamlSpec):
        return jobs_pb2.JobSpec(maml=maml_spec_to_proto(spec))
    if isinstance(spec, AmpSpec):  # before PpoSpec: an AmpSpec is a PpoSpec too
        return jobs_pb2.JobSpec(amp=amp_spec_to_proto(spec))
    if isinstance(spec, TtaEvalSpec):
        return jobs_pb2.JobSpec(tta_eval=tta_eval_spec_to_proto(spec))
    if isinstance(spec, InverseDynamicsSpec):
        return jobs_pb2.JobSpec(inverse_dynamics=inverse_dynamics_spec_to_proto(spec))
    return jobs_pb2.JobSpec(ppo=ppo_spec_to_proto(spec))


def spec_from_proto(
    msg: jobs_pb2.JobSpec,
) -> PpoSpec | AmpSpec | InverseDynamicsSpec | TtaEvalSpec | MamlSpec:
    """Raises ValueError when no kind is set, pydantic.ValidationError when a field is bad."""
    which = msg.WhichOneof("kind")
    if which == "ppo":
        return ppo_spec_from_proto(msg.ppo)
    if which == "amp":
        return amp_spec_from_proto(msg.amp)
    if which == "inverse_dynamics":
        return inverse_dynamics_spec_from_proto(msg.inverse_dynamics)
    if which == "tta_eval":
        return tta_eval_spec_from_proto(msg.tta_eval)
    if which == "maml":
        return maml_spec_from_proto(msg.maml)
    raise ValueError(
        "spec: no job kind set (expected one of: ppo, amp, inverse_dynamics, tta_eval, maml)"
    )


def _to_value(value: bool | int | float | str | tuple) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(list(value) if isinstance(value, tuple) else value, out)
    return out


def _from_value(value: struct_pb2.Value) -> Any:
    """A Value as Python; a list (a range setting) comes back as a tuple, a struct as a dict.

    Numbers are read directly, never through JSON: NaN and inf then reach the spec's validation,
    which names the setting and the rule (protobuf's JSON printer would refuse them with its
    own message). An empty Value or a null comes back as None, which no setting accepts.
    """
    which = value.WhichOneof("kind")
    if which == "list_value":
        return tuple(_from_value(item) for item in value.list_value.values)
    if which == "struct_value":
        return {k: _from_value(v) for k, v in value.struct_value.fields.items()}
    if which == "number_value":
        number = value.number_value
        # protobuf's Value keeps every number as a double; give integers back as int.
        return int(number) if math.isfinite(number) and number.is_integer() else number
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    return None
