"""HTTP plumbing shared by the callback path and the broker: ASGI types, raw responses,
forwarded-headers policy and the upstream forwarder."""
