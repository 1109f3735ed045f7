"""Demo parties for `authswitch demo` and the integration tests.

A signing IdP and service providers that validate what they receive with python3-saml.
"""

from proxy.demo.idp import DemoIdP
from proxy.demo.keys import KeyPair, generate_keypair
from proxy.demo.saml_validation import SamlResponseValidator, SamlVerdict, TrustedIdP
from proxy.demo.service_provider import (
    BIG_BODY_SHA256,
    BIG_BODY_SIZE,
    ReceivedRequest,
    create_service_provider_app,
)

__all__ = [
    "BIG_BODY_SHA256",
    "BIG_BODY_SIZE",
    "DemoIdP",
    "KeyPair",
    "ReceivedRequest",
    "SamlResponseValidator",
    "SamlVerdict",
    "TrustedIdP",
    "create_service_provider_app",
    "generate_keypair",
]
