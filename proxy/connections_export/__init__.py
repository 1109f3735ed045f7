"""`authswitch connections export legacy`: the legacy provider's SSO connections, fetched from
its documented API (fetch.py) and written as the connections CSV (connection_map.exports)."""
