"""`python -m wildrobot.server.healthcheck [HOST:PORT]`: exit 0 when the front end is SERVING.

For container health checks (compose, Docker HEALTHCHECK); Kubernetes uses its native gRPC probe.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, timeout_s: float = 3.0) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    address = args[0] if args else "127.0.0.1:50051"
    ok = check(address)
    print(f"{address}: {'SERVING' if ok else 'NOT SERVING'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
