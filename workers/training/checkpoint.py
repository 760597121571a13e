"""Checkpoints: the whole training state (orbax) plus the spec and network config as JSON.

Layout of <run_dir>/checkpoints/<env_steps:012d>/:
  state/               the whole TrainingState, device axis included (resume)
  policy/              normalizer, policy and value params of device 0 (load_policy)
  spec.json            the PpoSpec of the run
  network_config.json  the NetworkConfig that rebuilds the networks
  meta.json            iteration, env_steps, device count, the run's best evaluation so far
A checkpoint is written into a hidden temporary directory and renamed into place, so a crash
never leaves a half-written one where a resume would find it; an existing one is never replaced.
The service gives every attempt its own run_dir (wildrobot.workers.layout) and resumes only from
checkpoints registered by a fenced write, so a stale attempt's files are never used.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp

from wildrobot.specs import AmpSpec, JobKind, MamlSpec, PpoSpec

from .. import layout
from .api import checkpoint_path
from .networks import NetworkConfig
from .state import TrainingState

STATE_DIR = "state"
POLICY_DIR = "policy"
SPEC_FILE = "spec.json"
NETWORK_CONFIG_FILE = "network_config.json"
META_FILE = "meta.json"


def _checkpointer() -> ocp.StandardCheckpointer:
    """Orbax on its own: in a multi-host run only process 0 writes, and every process reads by
    itself, so no orbax call may wait for the other hosts."""
    if jax.process_count() == 1:
        return ocp.StandardCheckpointer()
    me = jax.process_index()
    return ocp.StandardCheckpointer(
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"host{me}"
        )
    )


def policy_tree(normalizer: Any, policy: Any, value: Any) -> dict[str, Any]:
    return {"normalizer": normalizer, "policy": policy, "value": value}


def save_checkpoint(
    run_dir: Path,
    state: TrainingState,
    spec: PpoSpec | MamlSpec,
    network_config: NetworkConfig,
    best: dict[str, Any] | None = None,
) -> Path:
    """Writes `state` (leaves with a leading device axis) atomically; returns the final path.

    best: the run's best evaluation so far (workers.training.best), recorded in meta.json.
    """
    host_state = jax.device_get(state)
    env_steps = int(host_state.env_steps.to_numpy()[0])
    final = checkpoint_path(Path(run_dir).absolute(), env_steps)  # orbax needs absolute paths
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        checkpointer = _checkpointer()
        checkpointer.save(tmp / STATE_DIR, _named_leaves(host_state))
        first = jax.tree.map(lambda x: np.asarray(x[0]), host_state)  # 0-d arrays, not scalars
        policy = policy_tree(first.normalizer, first.params.policy, first.params.value)
        if jax.process_count() > 1:
            # Orbax refuses host-local jax.Arrays across hosts, and brax's UInt64 turns numpy
            # back into them; plain dicts of numpy save under the same names.
            policy = jax.tree.map(np.asarray, flax.serialization.to_state_dict(policy))
        checkpointer.save(tmp / POLICY_DIR, policy)
        checkpointer.wait_until_finished()
        checkpointer.close()
        (tmp / SPEC_FILE).write_text(spec.model_dump_json(indent=2))
        (tmp / NETWORK_CONFIG_FILE).write_text(network_config.to_json())
        meta = {
            "iteration": int(first.iteration),
            "env_steps": env_steps,
            "num_devices": int(np.shape(host_state.iteration)[0]),
        }
        if best is not None:
            meta["best"] = best
        (tmp / META_FILE).write_text(json.dumps(meta))
        layout.install_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_state(checkpoint_dir: Path, target: TrainingState) -> TrainingState:
    """Restores the whole training state into the structure (and shapes) of `target`."""
    host_target = jax.device_get(target)
    with _checkpointer() as checkpointer:
        restored = checkpointer.restore(
            Path(checkpoint_dir).absolute() / STATE_DIR, _named_leaves(host_target)
        )
    paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(host_target)
    leaves = [
        np.asarray(restored.get(_leaf_name(index, path), leaf))
        for index, (path, leaf) in enumerate(paths_and_leaves)
    ]
    return jax.tree.unflatten(treedef, leaves)


def _named_leaves(tree: Any) -> dict[str, np.ndarray]:
    """The non-empty leaves of `tree` by a unique readable name (index + key path).

    Orbax refuses zero-size arrays, and MJX data has some (e.g. `act` for a model without
    actuator activations); they carry no values, so restore takes them from the target.
    """
    return {
        _leaf_name(index, path): np.asarray(leaf)
        for index, (path, leaf) in enumerate(jax.tree_util.tree_flatten_with_path(tree)[0])
        if np.size(leaf) > 0
    }


def _leaf_name(index: int, path: tuple) -> str:
    return f"{index:05d}" + re.sub(r"[^A-Za-z0-9_]+", "_", jax.tree_util.keystr(path))


def load_policy_tree(checkpoint_dir: Path, target: dict[str, Any]) -> dict[str, Any]:
    with _checkpointer() as checkpointer:
        return checkpointer.restore(Path(checkpoint_dir).absolute() / POLICY_DIR, target)


def read_spec(checkpoint_dir: Path) -> PpoSpec | MamlSpec:
    """The run's spec: a PpoSpec, an AmpSpec (a PpoSpec with AMP's fields) for AMP runs, or a
    MamlSpec for a meta-initialization (its policy/ tree has the same layout as PPO's)."""
    text = (Path(checkpoint_dir) / SPEC_FILE).read_text()
    kind = json.loads(text).get("kind")
    specs = {JobKind.AMP: AmpSpec, JobKind.MAML: MamlSpec}
    return specs.get(kind, PpoSpec).model_validate_json(text)


def read_network_config(checkpoint_dir: Path) -> NetworkConfig:
    return NetworkConfig.from_json((Path(checkpoint_dir) / NETWORK_CONFIG_FILE).read_text())


def read_meta(checkpoint_dir: Path) -> dict[str, Any]:
    return json.loads((Path(checkpoint_dir) / META_FILE).read_text())
