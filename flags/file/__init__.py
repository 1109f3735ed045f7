"""The embedded file backend: the rollout state in a YAML file, no Redis needed."""
