"""The urlencoded form a console write posts, read with a size and field cap (no multipart:
the console's forms are small and urlencoded; anything else is refused)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 32


class FormRefused(Exception):
    """Not a small urlencoded form; the message is safe to show."""


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields (the last value of a repeated name wins); ``FormRefused`` if it is
    not a small urlencoded UTF-8 form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormRefused("a form post (application/x-www-form-urlencoded) is expected")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused("the form is too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRefused("the form could not be read") from None
    return dict(pairs)
