"""The NDJSON line schema of `authswitch users import`, and the validation pre-pass.

One JSON object per line (blank lines are ignored and not counted):

    {"email": "ada@example.com", "username": "ada", "external_id": "u-17",
     "given_name": "Ada", "family_name": "Lovelace", "email_verified": true,
     "password": "..."}

`email` is required; everything else is optional; unknown keys are refused (a typo would
otherwise drop data silently). The WorkOS Create User names are accepted too: `first_name`,
`last_name` (for `given_name`, `family_name`) and `password_hash_type` (for
`password_hash_algorithm`), so a file written for WorkOS imports as it is. `password_hash` +
its type are accepted only by targets that can import hashes, in a form the target documents
(see hash_passing.py); the others list the user with the reason. Problems name the line and the
field, never the value of a secret field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from proxy.users_import.hash_passing import HashNotPassable, HashTarget, passed_hash

_Text = Annotated[str, Field(min_length=1, max_length=256)]
# The WorkOS Create User field names, and the name each stands for here.
WORKOS_NAMES = {
    "first_name": "given_name",
    "last_name": "family_name",
    "password_hash_type": "password_hash_algorithm",
}


class UserLine(BaseModel):
    """One user as the input file gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    email: Annotated[str, Field(min_length=3, max_length=320)]
    username: _Text | None = None  # the SCIM userName; the email when absent
    external_id: _Text | None = None
    given_name: _Text | None = None
    family_name: _Text | None = None
    email_verified: bool | None = None
    password: Annotated[SecretStr, Field(min_length=1, max_length=1024)] | None = None
    password_hash: Annotated[SecretStr, Field(min_length=1, max_length=4096)] | None = None
    password_hash_algorithm: _Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _workos_names(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not WORKOS_NAMES.keys() & data.keys():
            return data
        data = dict(data)
        for workos, ours in WORKOS_NAMES.items():
            if workos in data:
                if ours in data:
                    raise ValueError(f"give {workos} or {ours}, not both")
                data[ours] = data.pop(workos)
        return data

    @model_validator(mode="after")
    def _one_kind_of_password(self) -> UserLine:
        if self.password is not None and self.password_hash is not None:
            raise ValueError("give either password or password_hash, not both")
        if (self.password_hash is None) != (self.password_hash_algorithm is None):
            raise ValueError(
                "password_hash and password_hash_type (or password_hash_algorithm) go together"
            )
        return self

    @property
    def user_name(self) -> str:
        return self.username if self.username is not None else self.email


@dataclass(frozen=True)
class LineProblem:
    """Why one input line can't be imported: its number, the field, the reason (no values)."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass
class SourceScan:
    """What the pre-pass learnt about the whole input file."""

    sha256: str
    source: int = 0  # non-blank lines
    problems: list[LineProblem] = field(default_factory=list)
    invalid_lines: set[int] = field(default_factory=set)
    # line -> the email as normalised, where that differs from the file (a domain in capitals):
    # the import reads it here instead of validating every address a second time.
    normalized_emails: dict[int, str] = field(default_factory=dict)

    @property
    def valid(self) -> int:
        return self.source - len(self.invalid_lines)


@dataclass(frozen=True)
class SourceLine:
    number: int  # 1-based line number in the file
    user: UserLine


def parse_line(number: int, text: bytes, *, check_email: bool = True) -> UserLine | LineProblem:
    """A line's user (its email normalised as scim2-models does), or the first problem."""
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return LineProblem(number, "(line)", "not valid JSON")
    if not isinstance(raw, dict):
        return LineProblem(number, "(line)", f"a JSON {_json_kind(raw)}, not an object")
    try:
        user = UserLine.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        location = ".".join(str(part) for part in error["loc"]) or "(line)"
        return LineProblem(number, location, _reason(error))
    if not check_email:
        return user
    try:
        # RFC 5322 has no non-ASCII local part (that is RFC 6531's SMTPUTF8, which neither the
        # SCIM servers nor WorkOS promise to take): refused, as the message says.
        normalized = validate_email(
            user.email, check_deliverability=False, allow_smtputf8=False
        ).normalized
    except EmailNotValidError as exc:
        return LineProblem(number, "email", f"not an RFC 5322 address ({exc})")
    return user if normalized == user.email else user.model_copy(update={"email": normalized})


def scan_source(path: Path, *, hash_target: HashTarget | None) -> SourceScan:
    """Validate every line and hash the file; duplicates compare case-folded. A password hash
    `hash_target` can't take (None: a target that takes none) makes its line invalid, with why."""
    digest = hashlib.sha256()
    scan = SourceScan(sha256="")
    first_seen: dict[str, int] = {}
    for number, text in _lines(path, digest):
        scan.source += 1
        parsed = parse_line(number, text)
        if isinstance(parsed, UserLine):
            parsed = _duplicate(number, parsed, first_seen) or parsed
        if isinstance(parsed, UserLine) and parsed.password_hash is not None:
            parsed = _hash_problem(number, parsed, hash_target) or parsed
        if isinstance(parsed, LineProblem):
            scan.problems.append(parsed)
            scan.invalid_lines.add(number)
        elif parsed.email.encode() not in text:
            scan.normalized_emails[number] = parsed.email
    scan.sha256 = digest.hexdigest()
    return scan


def read_source(scan: SourceScan, path: Path, keep: Callable[[int], bool]) -> Iterator[SourceLine]:
    """The users on the valid lines `keep` selects, in order, as the pre-pass saw them."""
    for number, text in _lines(path, None):
        if number in scan.invalid_lines or not keep(number):
            continue
        user = parse_line(number, text, check_email=False)
        if isinstance(user, LineProblem):
            raise SourceChanged(f"line {number} changed while importing ({user.reason})")
        normalized = scan.normalized_emails.get(number)
        if normalized is not None:
            user = user.model_copy(update={"email": normalized})
        yield SourceLine(number, user)


class SourceChanged(Exception):
    """The input file changed under a running import."""


def _lines(path: Path, digest: Any) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as file:
        for number, text in enumerate(file, start=1):
            if digest is not None:
                digest.update(text)
            if text.strip():
                yield number, text


def _hash_problem(number: int, user: UserLine, target: HashTarget | None) -> LineProblem | None:
    if target is None:
        return LineProblem(
            number,
            "password_hash",
            "this target can't import password hashes (leave the user to the JIT broker, "
            "or import it without the hash and reset the password on first login)",
        )
    assert user.password_hash is not None and user.password_hash_algorithm is not None
    try:
        passed_hash(target, user.password_hash.get_secret_value(), user.password_hash_algorithm)
    except HashNotPassable as exc:
        return LineProblem(number, "password_hash", f"not passable to {target}: {exc}")
    return None


def _duplicate(number: int, user: UserLine, first_seen: dict[str, int]) -> LineProblem | None:
    # userName is what the target keeps unique, so an email that is another line's username
    # clashes too. One string per key, not a tuple: a third less memory (~400 MB at 1.5 M lines).
    email, user_name = "e " + user.email.casefold(), "u " + user.user_name.casefold()
    for key in (email, user_name):
        earlier = first_seen.get(key)
        if earlier is not None:
            field = "username" if key is user_name and user.username is not None else "email"
            return LineProblem(number, field, f"duplicate of line {earlier} (case-folded)")
    first_seen[email] = first_seen[user_name] = number
    return None


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    return str(error["msg"])


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"
