"""The Redis backend: the rollout state in Redis, followed by every replica."""
