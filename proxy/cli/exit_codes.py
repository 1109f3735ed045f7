"""The exit codes of every `authswitch` command: one table, part of the interface for scripts.

Documented in README.md ("Exit codes"); a code keeps its meaning across commands.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # The command did its job and the answer is no: input refused (nothing written), a check
    # found a problem, a password was denied, some users were not imported.
    FAILED = 1
    USAGE = 2  # bad arguments or configuration, unknown connection, missing actor or reason
    BACKEND_UNAVAILABLE = 3  # the flag or connection-map backend (Redis) did not answer
    CONFLICT = 4  # the state changed since it was read or previewed: nothing was written
    REFUSED = 5  # the change is not allowed (e.g. enabling a connection that can't move, or
    # writing to a Redis store that lost the state replicas were serving)
    LEGACY_UNAVAILABLE = 6  # legacy could not answer (down, slow, erroring, misconfigured)
    PROVISIONING_FAILED = 7  # verified, but the new provider did not take the user
