"""The callback path: intake, identify, decide, forward or fall through, account."""
