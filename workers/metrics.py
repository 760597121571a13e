"""Worker metrics for operators (Prometheus), kept by the supervisor process.

The runner (JAX) process sends ("progress", values) over its pipe after every reported
iteration; the supervisor turns them into:

    wildrobot_worker_env_steps_per_second          of the last iteration (0 between jobs)
    wildrobot_worker_env_steps                     env steps trained by this worker (counter)
    wildrobot_worker_iterations                    iterations trained by this worker (counter)
    wildrobot_worker_iteration_seconds             histogram of iteration wall time
    wildrobot_worker_compile_seconds               compile time of the current job (0 between jobs)
    wildrobot_worker_device_memory_bytes{device}   bytes in use per accelerator (GPU only)
    wildrobot_worker_current_job{job_id,kind,attempt}  1 while that attempt runs here
    wildrobot_worker_attempts{outcome}             attempts this worker ended, by outcome
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ITERATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.steps_per_s = Gauge(
            "wildrobot_worker_env_steps_per_second", "env steps/s of the last iteration", registry=r
        )
        self.env_steps = Counter("wildrobot_worker_env_steps", "env steps trained", registry=r)
        self.iterations = Counter("wildrobot_worker_iterations", "iterations trained", registry=r)
        self.iteration_s = Histogram(
            "wildrobot_worker_iteration_seconds",
            "iteration wall time",
            buckets=ITERATION_BUCKETS,
            registry=r,
        )
        self.compile_s = Gauge(
            "wildrobot_worker_compile_seconds", "compile time of the current job", registry=r
        )
        self.device_memory = Gauge(
            "wildrobot_worker_device_memory_bytes",
            "accelerator bytes in use",
            ["device"],
            registry=r,
        )
        self.current_job = Gauge(
            "wildrobot_worker_current_job",
            "1 while this attempt runs on this worker",
            ["job_id", "kind", "attempt"],
            registry=r,
        )
        self.attempts = Counter(
            "wildrobot_worker_attempts", "attempts ended here, by outcome", ["outcome"], registry=r
        )

    def job_started(self, job_id: str, kind: str, attempt: int) -> None:
        self._clear_job_gauges()
        self.current_job.labels(job_id, kind, str(attempt)).set(1)

    def job_ended(self, outcome: str) -> None:
        self._clear_job_gauges()
        self.attempts.labels(outcome).inc()

    def _clear_job_gauges(self) -> None:
        """An idle worker trains nothing: its steps/s and compile time are 0, not the last
        job's (a dashboard summing steps/s over workers would count it forever)."""
        self.current_job.clear()
        self.steps_per_s.set(0)
        self.compile_s.set(0)

    def progress(self, values: Mapping[str, float]) -> None:
        if "env_steps_per_s" in values:
            self.steps_per_s.set(values["env_steps_per_s"])
        if "iteration_s" in values:
            self.iteration_s.observe(values["iteration_s"])
            self.iterations.inc()
        if "compile_s" in values:
            self.compile_s.set(values["compile_s"])
        if "env_steps_per_s" in values and "iteration_s" in values:
            # env_steps_per_s is env_steps_per_iteration / iteration_s
            self.env_steps.inc(round(values["env_steps_per_s"] * values["iteration_s"]))
        for key, value in values.items():
            if key.startswith("device_memory_bytes/"):
                self.device_memory.labels(key.partition("/")[2]).set(value)
