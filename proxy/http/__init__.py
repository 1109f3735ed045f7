"""HTTP plumbing shared by the callback path and the broker: ASGI types, raw responses,
forwarded-headers policy and the upstream forwarder; and requests to vendor APIs that wait out
their rate limits (the exports and the users diff)."""
