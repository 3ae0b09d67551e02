"""The core worker: one process that serves every agent, learning at job start which one.

``settings`` (environment and .env), ``config_client`` (TTL cache, single-flight,
stale-if-error, environment fallback for keys), ``backend`` (the control plane over
HTTP), ``calls`` (dispatch from job metadata), ``runtime`` (concurrency, queue, drain),
``livekit_app`` (the LiveKit Agents entrypoint and load function, optional extra),
``loadtest`` (simulated calls against a running control plane).
"""
