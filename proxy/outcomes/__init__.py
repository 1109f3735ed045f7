"""Login outcomes per connection and side, their sources, and the rollout guard.

Deliberately empty: ``proxy.config`` imports ``proxy.outcomes.settings``, so this package's
``__init__`` must not import modules that import the config back.
"""
