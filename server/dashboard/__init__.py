"""The dashboard: an HTTP/JSON API with Server-Sent Events, and the page that uses it.

It runs in the front-end process, on the same asyncio loop as grpc.aio, over the same domain
services (JobService, CheckpointService, WatchHub) and the same token -> tenant lookup.
"""
