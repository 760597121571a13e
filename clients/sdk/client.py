"""`Client`: one connection with every part of the SDK (jobs, artifacts, dynamics)."""

from __future__ import annotations

from .artifacts import ArtifactsClient
from .dynamics import DynamicsClient
from .jobs import JobsClient


class Client(DynamicsClient, JobsClient, ArtifactsClient):
    """A connection to one WildRobot server. Thread-safe; close it (or use `with`) when done.

    Jobs (submit_*, get, list, cancel, list_checkpoints, watch): sdk/jobs.py. A job's files
    (download_checkpoint, download_artifact, export, upload_trial, list_uploads, list_artifacts,
    download_file, tta_report): sdk/artifacts.py. Inverse dynamics (inverse_dynamics,
    submit_inverse_dynamics): sdk/dynamics.py. The channel, deadlines and retries:
    sdk/connection.py."""
