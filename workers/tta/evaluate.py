"""The TTA evaluation: a checkpoint under every shift x severity x method, with statistics.

    report = evaluate_checkpoint(checkpoint_dir, TtaSettings(...), progress)

Protocol. Episodic: every cell (shift, severity) starts each episode from the source policy.
Continual: each episode slot carries its adapter state through the cells in order (clean first,
then the shifts from mild to severe), resetting it only after a fall, and the clean env is
measured again at the end: the difference to the first clean cell is the forgetting.

Statistics per cell and method, over episodes x seeds: fall rate with a 95% Wilson interval,
mean steps to fall (episode length when it never fell), return and velocity-tracking error with
95% normal intervals, and the compute cost per control step. Every method meets the same episodes
(the same per-cell keys), so each method is also compared with `none` pair by pair
(`paired.paired_comparison`: McNemar's exact test on falls, paired bootstrap intervals on the
fall-rate and return differences), under `paired_vs_none` per cell.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..training import checkpoint as ckpt
from ..training import networks as net
from ..training.trainer import make_base_env
from . import shifts as shift_lib
from .adapters import Guards, Source, SourceParams, make_adapter
from .methods import METHODS as METHODS
from .methods import REGISTRY
from .paired import paired_comparison
from .rollout import make_rollout

BEST_OF_N = tuple(name for name, m in REGISTRY.items() if m.best_of_n)


@dataclass(frozen=True)
class TtaSettings:
    shifts: tuple[str, ...] = tuple(shift_lib.SHIFTS)
    severities: tuple[int, ...] = shift_lib.SEVERITIES
    methods: tuple[str, ...] = ("none", "obs_norm", "tent", "best_of_n")
    episodes: int = 32  # per cell and seed
    episode_length: int = 500
    seeds: tuple[int, ...] = (0, 1, 2)
    mode: str = "episodic"  # or "continual"
    learning_rate: dict[str, float] = field(default_factory=dict)  # per adapter
    tent_kl_weight: float = 1.0
    best_of_n_samples: int = 8
    lookahead_steps: int = 8
    adapt_steps: int = 1  # maml: inner steps before each episode
    adapt_episodes: int = 1  # maml: its own episodes in the shifted env before each episode
    guards: Guards | None = None  # None: each adapter's own (tent and sysid differ)


def load_source(checkpoint_dir: Path) -> tuple[Source, Any]:
    """The checkpoint's networks and parameters, and its spec: a PpoSpec (AmpSpec), or a
    MamlSpec for a meta-initialization, whose policy/ tree has PPO's layout."""
    checkpoint_dir = Path(checkpoint_dir)
    config = ckpt.read_network_config(checkpoint_dir)
    if config.recurrent:  # the adapters and rollout call a feed-forward policy (docs/ssm.md)
        raise ValueError(
            f"{checkpoint_dir}: tta_eval does not take SSM policies yet (policy_arch=ssm)"
        )
    networks = net.make_networks(config)
    fresh = net.init_params(networks, jax.random.PRNGKey(0))
    target = ckpt.policy_tree(net.init_normalizer(config), fresh.policy, fresh.value)
    tree = jax.tree.map(jnp.asarray, ckpt.load_policy_tree(checkpoint_dir, target))
    params = SourceParams(tree["normalizer"], tree["policy"], tree["value"])
    source = Source(networks, params)
    return source, ckpt.read_spec(checkpoint_dir)


def source_env(spec: Any):
    """The unshifted env the source was trained on: its task with its env overrides (a MamlSpec
    has none: maml draws dynamics within the task's training ranges, on default settings)."""
    return make_base_env(spec.task, getattr(spec, "env_overrides", {}))


def cells(settings: TtaSettings) -> list[tuple[str, int]]:
    """The cells in protocol order: clean, the shifts mild to severe, and (continual) clean again."""
    out = [("clean", 0)]
    out += [(name, level) for name in settings.shifts for level in settings.severities]
    if settings.mode == "continual":
        out.append(("clean_after", 0))
    return out


def method_cost(name: str, adapter_cost: dict[str, float], settings: TtaSettings, substeps: int):
    """Work per control step. best_of_n with N samples and horizon H adds one forward for the
    sampling distribution, and per candidate H - 1 policy forwards, one value forward and H
    control steps (H x substeps physics steps) of lookahead."""
    n = settings.best_of_n_samples if name in BEST_OF_N else 1
    h = settings.lookahead_steps if n > 1 else 0
    return {
        "policy_forwards": adapter_cost["policy_forwards"] + (1 + n * (h - 1) if n > 1 else 0),
        "value_forwards": float(n if n > 1 else 0),
        "backward_passes": adapter_cost["backward_passes"],
        "lookahead_sim_steps": float(n * h * substeps if n > 1 else 0),
        # sysid replays each transition: one primal and two forward-mode tangent control steps.
        "model_sim_steps": adapter_cost.get("model_sim_steps_factor", 0.0) * substeps,
        # maml, per evaluated episode: its adaptation episodes (as many control steps each as
        # the evaluated one) and the inner gradient steps on them.
        "adapt_episodes_per_episode": adapter_cost.get("adapt_episodes_per_episode", 0.0),
        "inner_steps_per_episode": adapter_cost.get("inner_steps_per_episode", 0.0),
    }


Progress = Callable[[dict[str, Any]], None]


def evaluate_checkpoint(
    checkpoint_dir: Path, settings: TtaSettings, progress: Progress | None = None
) -> dict[str, Any]:
    source, spec = load_source(checkpoint_dir)
    env = source_env(spec)
    substeps = int(round(env.config.ctrl_dt / env.config.sim_dt))
    order = cells(settings)
    results: dict[str, dict[str, Any]] = {}
    episodes: dict[str, dict[str, list[dict[str, np.ndarray]]]] = {}
    total = len(settings.methods) * len(settings.seeds) * len(order)
    done = 0
    # Every adapter first: one the checkpoint cannot take (tent without LayerNorm) fails the job
    # before any cell runs.
    adapters = {}
    for method in settings.methods:
        adapter_name = REGISTRY[method].adapter
        adapters[method] = make_adapter(
            adapter_name,
            source,
            learning_rate=settings.learning_rate.get(adapter_name, _DEFAULT_RATES[adapter_name]),
            guards=settings.guards,
            kl_weight=settings.tent_kl_weight,
            env=env,
            adapt_steps=settings.adapt_steps,
            adapt_episodes=settings.adapt_episodes,
            discount=spec.discounting,
        )
    for method, adapter in adapters.items():
        samples = settings.best_of_n_samples if method in BEST_OF_N else 1
        run = make_rollout(
            env,
            source,
            adapter,
            settings.episodes,
            settings.episode_length,
            samples=samples,
            horizon=settings.lookahead_steps if samples > 1 else 0,
            discount=spec.discounting,
            privileged=REGISTRY[method].privileged,
        )
        per_cell: dict[str, list[dict[str, np.ndarray]]] = {}
        for seed in settings.seeds:
            key = jax.random.PRNGKey(seed)
            state = _fresh(adapter, source, settings.episodes)
            for name, level in order:
                key, key_shift, key_run = jax.random.split(key, 3)
                if settings.mode == "episodic":
                    state = _fresh(adapter, source, settings.episodes)
                shift_name = "clean" if name.startswith("clean") else name
                params = shift_lib.shift_params(
                    shift_name,
                    env.config,
                    level or 1,
                    jax.random.split(key_shift, settings.episodes),
                )
                start = time.perf_counter()
                values, end_state = run(source.params, params, state, key_run)
                values = jax.device_get(values)
                # Continual: carry the adapter on, except where the episode fell (collapse).
                fell = jnp.asarray(values["fell"]) > 0
                state = _carry_over(adapter, source, end_state, fell)
                if any(k.startswith("estimate/") for k in values):
                    values = {**values, **_truth(params)}
                per_cell.setdefault(_cell_key(name, level), []).append(values)
                done += 1
                if progress is not None:
                    progress(
                        {
                            "method": method,
                            "seed": seed,
                            "shift": name,
                            "severity": level,
                            "fall_rate": float(np.mean(values["fell"])),
                            "cells_done": done,
                            "cells_total": total,
                            "wall_s": time.perf_counter() - start,
                        }
                    )
        results[method] = {
            "inputs": list(REGISTRY[method].inputs),
            "cost_per_control_step": method_cost(method, adapter.cost(), settings, substeps),
            "cells": {
                key: summarize(runs, settings.episode_length) for key, runs in per_cell.items()
            },
        }
        episodes[method] = per_cell
    if "none" in episodes:
        for method, per_cell in episodes.items():
            if method == "none":
                continue
            for key, runs in per_cell.items():
                results[method]["cells"][key]["paired_vs_none"] = paired_comparison(
                    _concat(runs), _concat(episodes["none"][key])
                )
    return {
        "checkpoint": str(checkpoint_dir),
        "task": spec.task,
        "settings": {
            "shifts": list(settings.shifts),
            "severities": list(settings.severities),
            "methods": list(settings.methods),
            "episodes": settings.episodes,
            "episode_length": settings.episode_length,
            "seeds": list(settings.seeds),
            "mode": settings.mode,
            "best_of_n_samples": settings.best_of_n_samples,
            "lookahead_steps": settings.lookahead_steps,
            "adapt_steps": settings.adapt_steps,
            "adapt_episodes": settings.adapt_episodes,
            "learning_rate": {
                k: settings.learning_rate.get(k, v) for k, v in _DEFAULT_RATES.items()
            },
        },
        "ladders": {name: list(levels) for name, levels in shift_lib.LADDERS.items()},
        "methods": results,
    }


def _fresh(adapter, source: Source, episodes: int):
    """One source-initialized adapter state per episode slot."""
    one = adapter.init(source.params)
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (episodes,) + jnp.shape(x)), one)


def _carry_over(adapter, source: Source, end_state, fell: jax.Array):
    """The adapter state for the next cell: as it ended, or back at the source after a fall."""
    fresh = jax.vmap(lambda s: adapter.reset(source.params, s))(end_state)

    def pick(reset, kept):
        return jnp.where(fell.reshape(fell.shape + (1,) * (kept.ndim - 1)), reset, kept)

    return jax.tree.map(pick, fresh, end_state)


_DEFAULT_RATES = {"none": 0.0, "obs_norm": 0.01, "tent": 1e-3, "sysid": 0.3, "maml": 0.05}


def _concat(runs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One cell's per-episode values over its seeds, in seed order (pairs line up)."""
    return {
        name: np.concatenate([np.asarray(r[name]) for r in runs]) for name in ("fell", "return")
    }


def _cell_key(name: str, level: int) -> str:
    return name if name.startswith("clean") else f"{name}/{level}"


def summarize(runs: list[dict[str, np.ndarray]], episode_length: int) -> dict[str, Any]:
    fell = np.concatenate([r["fell"] for r in runs])
    n = len(fell)
    rate = float(fell.mean())
    low, high = wilson(rate, n)
    out: dict[str, Any] = {
        "episodes": n,
        "fall_rate": rate,
        "fall_rate_ci95": [low, high],
        "fall_rate_per_seed": [float(r["fell"].mean()) for r in runs],
        "steps_to_fall": float(np.concatenate([r["steps_alive"] for r in runs]).mean()),
    }
    # Means per cell: sysid's estimates and their truth, maml's diagnostics (its grad norm).
    for name in sorted(k for k in runs[0] if k.startswith(("estimate/", "truth/", "diag/"))):
        out[name] = float(np.concatenate([r[name] for r in runs]).mean())
    for name in sorted(k for k in runs[0] if k.startswith("count/")):  # e.g. tent's resets
        counts = np.concatenate([r[name] for r in runs])
        out[name] = int(counts.sum())
        out[name + "_per_episode"] = float(counts.mean())
    for name in sorted(k for k in runs[0] if k.startswith("estimate/")):
        truth = np.concatenate([r["truth/" + name.split("/", 1)[1]] for r in runs])
        estimate = np.concatenate([r[name] for r in runs])
        out["abs_error/" + name.split("/", 1)[1]] = float(np.median(np.abs(estimate - truth)))
    for name in ("return", "velocity_tracking_error"):
        values = np.concatenate([r[name] for r in runs])
        half = 1.96 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
        out[name] = float(values.mean())
        out[f"{name}_ci95"] = [out[name] - half, out[name] + half]
    return out


def _truth(params: shift_lib.ShiftParams) -> dict[str, np.ndarray]:
    """The true values of what sysid estimates, per episode."""
    return {
        "truth/mass_scale": np.asarray(params.mass_scale),
        "truth/kp_scale": np.asarray(params.kp_scale),
    }


def wilson(rate: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
