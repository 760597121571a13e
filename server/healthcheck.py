"""`python -m wildrobot.server.healthcheck [--live|--ready] [HOST:PORT]`: exit 0 when SERVING.

    --ready (the default): the front end can serve jobs (Redis answers). A probe that takes
            traffic away: Kubernetes readinessProbe, Docker/compose HEALTHCHECK, load balancers.
    --live: the process answers (Redis may be down). A probe that restarts: Kubernetes
            livenessProbe. Never use --ready there: a Redis outage would restart every front end.

Kubernetes may call the same names with its native gRPC probe (`grpc: {port: 50051, service:
liveness}` / `service: readiness`). `--tls-ca FILE` checks a TLS front end (the CA, or the
self-signed certificate itself; WILDROBOT_TLS_CA_FILE).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .health import LIVENESS_SERVICE, READINESS_SERVICE


def check(
    address: str,
    timeout_s: float = 3.0,
    service: str = READINESS_SERVICE,
    tls_ca: Path | None = None,
) -> bool:
    if tls_ca is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
        channel = grpc.secure_channel(address, credentials)
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wildrobot-healthcheck", description=__doc__)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--live", action="store_true", help="the process answers (liveness)")
    which.add_argument("--ready", action="store_true", help="it can serve jobs (default)")
    parser.add_argument("--tls-ca", type=Path, default=os.environ.get("WILDROBOT_TLS_CA_FILE"))
    parser.add_argument("--timeout-s", type=float, default=3.0)
    parser.add_argument("address", nargs="?", default="127.0.0.1:50051")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    service = LIVENESS_SERVICE if args.live else READINESS_SERVICE
    ok = check(args.address, args.timeout_s, service, args.tls_ca)
    print(f"{args.address} {service}: {'SERVING' if ok else 'NOT SERVING'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
