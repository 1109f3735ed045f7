"""The JIT password broker: hooks a new provider calls to verify a password at legacy and
provision the user (see the README's "Password broker"). The service is
``proxy.broker.service.PasswordBroker``; importing this package loads nothing else, so the CLI
doesn't pay for the providers' clients it doesn't use."""
