"""Mechanisms that ``flags``, ``connection_map`` and ``proxy`` share, one module per mechanism.

``atomic_file`` (replace a file durably), ``strict_yaml`` (safe YAML, repeated keys refused),
``hardened_xml`` (untrusted SAML XML), ``redis_settings`` and ``redis_client`` (one settings
model, one way to build a client), ``redis_follower`` (a thread that keeps memory in line with
Redis), ``lazy_names`` (a package's names imported on first use). Nothing here imports
``flags``, ``connection_map`` or ``proxy``.
"""
