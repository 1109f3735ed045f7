"""The import's hot loop builds SCIM User documents as plain dicts: they must be the documents
scim2-models builds for the same user, byte for byte once encoded."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scim2_models import Context, Email, Name, User

from proxy.users_import import UserLine, scim_user_document
from proxy.users_import.line_schema import parse_line

_text = st.text(min_size=1, max_size=40)
_optional = st.none() | _text


def scim2_models_document(user: UserLine) -> dict[str, Any]:
    name = None
    if user.given_name is not None or user.family_name is not None:
        name = Name(given_name=user.given_name, family_name=user.family_name)
    model: User[Any] = User(
        user_name=user.user_name,
        external_id=user.external_id,
        name=name,
        active=True,
        password=user.password.get_secret_value() if user.password is not None else None,
        emails=[Email(value=user.email, primary=True)],
    )
    return model.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)


@settings(max_examples=300, deadline=None)
@given(
    email=st.emails(),
    username=_optional,
    external_id=_optional,
    given_name=_optional,
    family_name=_optional,
    password=_optional,
    verified=st.none() | st.booleans(),
)
def test_documents_equal_scim2_models(
    email: str,
    username: str | None,
    external_id: str | None,
    given_name: str | None,
    family_name: str | None,
    password: str | None,
    verified: bool | None,
) -> None:
    fields = {
        "email": email,
        "username": username,
        "external_id": external_id,
        "given_name": given_name,
        "family_name": family_name,
        "email_verified": verified,
        "password": password,
    }
    line = json.dumps({key: value for key, value in fields.items() if value is not None})
    user = parse_line(1, line.encode())
    assume(isinstance(user, UserLine))  # hypothesis' emails include some RFC 5321 refuses
    assert isinstance(user, UserLine)
    ours = json.dumps(scim_user_document(user))
    assert ours == json.dumps(scim2_models_document(user))
