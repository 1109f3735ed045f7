"""The JIT password broker: hooks a new provider calls to verify a password at legacy and
provision the user (see the README's "Password broker")."""

from proxy.broker.service import PasswordBroker

__all__ = ["PasswordBroker"]
