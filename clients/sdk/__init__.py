"""The Python SDK: `Client(address, token)` over the JobService.

    from wildrobot.clients import Client

    with Client("localhost:50051", token) as client:
        job = client.submit_ppo(task="walk", num_envs=4096).job
        for event in client.watch(job.job_id):
            print(event)
        client.download_checkpoint(job.job_id, out_dir="policy/")

Every unary call has a deadline. Idempotent calls (Get, List, ListCheckpoints, Watch, Download,
and Submit, which carries a request_id) are retried with exponential backoff on UNAVAILABLE;
Cancel is not. `watch` reconnects from the last event it delivered, so a dropped stream neither
loses nor repeats events. Failures raise the typed errors of wildrobot.clients.errors.

One `Client`, its methods grouped by concern in this package's modules:
connection.py (channel, deadlines, retries), jobs.py (submit, read, cancel, watch),
artifacts.py (checkpoints, exports, uploads, a job's files), dynamics.py (inverse dynamics:
the synchronous RPC and batch jobs); client.py puts them together.
"""

from .artifacts import ArtifactDownload, Download, extract_tar
from .client import Client
from .connection import RetryPolicy

__all__ = ["ArtifactDownload", "Client", "Download", "RetryPolicy", "extract_tar"]
