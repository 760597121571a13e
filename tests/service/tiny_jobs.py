"""Tiny service jobs for the service tests: a PointMass PPO spec that compiles in seconds, submit
and polling helpers."""

from __future__ import annotations

import time
from collections.abc import Callable

from wildrobot.v1 import jobs_pb2

# 32 envs x 4 minibatches x 10 steps = 1280 env steps per iteration; compiles in seconds.
STEPS_PER_ITERATION = 1280


def tiny_ppo(iterations: int, checkpoint_every: int = 1, **overrides: object) -> jobs_pb2.PpoSpec:
    fields: dict[str, object] = {
        "task": "PointMass",
        "num_envs": 32,
        "batch_size": 32,
        "num_minibatches": 4,
        "unroll_length": 10,
        "num_updates_per_batch": 2,
        "episode_length": 50,
        "num_timesteps": iterations * STEPS_PER_ITERATION,
        "checkpoint_every": checkpoint_every,
    }
    fields.update(overrides)
    spec = jobs_pb2.PpoSpec(**fields)  # type: ignore[arg-type]
    spec.policy_hidden_sizes.extend([16, 16])
    spec.value_hidden_sizes.extend([16, 16])
    return spec


def submit(stub, spec: jobs_pb2.PpoSpec, **kwargs: object) -> jobs_pb2.Job:
    request = jobs_pb2.SubmitJobRequest(spec=jobs_pb2.JobSpec(ppo=spec), **kwargs)  # type: ignore[arg-type]
    return stub.SubmitJob(request).job


def wait_for(
    stub, job_id: str, predicate: Callable[[jobs_pb2.Job], bool], timeout: float = 180
) -> jobs_pb2.Job:
    deadline = time.monotonic() + timeout
    while True:
        job = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id))
        if predicate(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; job is {job}")
        time.sleep(0.2)


def state_is(*states: int) -> Callable[[jobs_pb2.Job], bool]:
    return lambda job: job.state in states
