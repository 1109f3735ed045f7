"""The `flags:` block of the config file: the backend (file, Redis or any OpenFeature provider
named by its import path) and how the route flag is read."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from flags.evaluation import FLAG_KEY
from foundation.redis_settings import RedisSettings


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedisFlags(RedisSettings):
    """Where the shared rollout state lives when ``flags.backend`` is ``redis``."""

    config_key: ClassVar[str] = "flags.redis"

    resync_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    stale_error_after_seconds: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    # false (default): a replica serving its last known good state stays ready while Redis is
    # unreachable, so an outage of Redis can't take every replica out of the load balancer.
    # true: /readyz answers 503 while Redis is unreachable.
    ready_requires_redis: bool = False


# -- flags.openfeature: any OpenFeature provider, named by its import path ----------------------

_DOTTED_NAME = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_IMPORT_PATH = re.compile(f"^{_DOTTED_NAME}:{_DOTTED_NAME}$")
_FLAG_KEY_CHARS = r"^[^\s{}]{1,256}$"


def import_object(path: str) -> Any:
    """The object `package.module:name` (or `package.module:Class.attr`) names."""
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an ImportError, or whatever the module raises while importing
        raise ValueError(
            f"cannot import module '{module_name}': {type(exc).__name__}: {exc}"
        ) from None
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ValueError(f"module '{module_name}' has no attribute '{attribute}'") from None
    if not callable(target):
        raise ValueError(f"'{path}' is not callable (a provider class or a factory function)")
    return target


def provider_kwargs(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    """`options` checked against the factory's signature; a string given to a parameter
    annotated with an Enum becomes that member (by value, then by name): YAML has no enums."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to check against (some builtins)
        return dict(options)
    try:
        signature.bind(**options)
    except TypeError as exc:
        raise ValueError(f"'options' do not fit the provider's parameters: {exc}") from None
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # unresolvable annotations: no conversion
        hints = {}
    kwargs = dict(options)
    for name, value in options.items():
        enum_type = _enum_in(hints.get(name))
        if enum_type is not None and isinstance(value, str):
            kwargs[name] = _enum_member(enum_type, name, value)
    return kwargs


def _enum_in(annotation: Any) -> type[Enum] | None:
    if inspect.isclass(annotation) and issubclass(annotation, Enum):
        return annotation
    for arg in typing.get_args(annotation):  # Optional[E], E | None
        if inspect.isclass(arg) and issubclass(arg, Enum):
            return arg
    return None


def _enum_member(enum_type: type[Enum], option: str, value: str) -> Enum:
    for member in enum_type:
        if member.value == value:
            return member
    for member in enum_type:
        if member.name.lower() == value.lower():
            return member
    allowed = ", ".join(repr(m.value) for m in enum_type)
    raise ValueError(f"'options.{option}': {value!r} is not one of {allowed}")


class OpenFeatureFlag(_Model):
    """The flag the proxy asks the provider for: one for all (targeting key = connection id;
    default `authswitch.route`), or one per connection (`key_template` with `{connection}`)."""

    key: Annotated[str, Field(pattern=_FLAG_KEY_CHARS)] | None = None
    key_template: Annotated[str, Field(max_length=256)] | None = None
    # string: "new" / "legacy"; boolean: true = new
    type: Literal["string", "boolean"] = "string"

    @model_validator(mode="before")
    @classmethod
    def _default_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("key") is None and data.get("key_template") is None:
            return {**data, "key": FLAG_KEY}
        return data

    @model_validator(mode="after")
    def _one_key(self) -> OpenFeatureFlag:
        if self.key is not None and self.key_template is not None:
            raise ValueError("give one of 'key' and 'key_template', not both")
        template = self.key_template
        if template is not None:
            if "{connection}" not in template:
                raise ValueError("'key_template' must contain '{connection}'")
            rest = template.replace("{connection}", "")
            if re.search(r"[\s{}]", rest):
                raise ValueError(
                    "'key_template' may hold no whitespace and no braces besides '{connection}'"
                )
        return self

    def key_for(self, connection_id: str) -> str:
        """The flag key evaluated for this connection."""
        if self.key_template is not None:
            return self.key_template.replace("{connection}", connection_id)
        assert self.key is not None
        return self.key


class OpenFeatureFlags(_Model):
    """``flags.backend: openfeature``: a provider built from its import path and options."""

    provider: Annotated[str, Field(max_length=512)]
    options: dict[str, Any] = Field(default_factory=dict)
    flag: OpenFeatureFlag = OpenFeatureFlag()

    @field_validator("provider")
    @classmethod
    def _importable(cls, value: str) -> str:
        if not _IMPORT_PATH.match(value):
            raise ValueError("must be 'package.module:ClassOrFactory'")
        import_object(value)
        return value

    @field_validator("options")
    @classmethod
    def _keyword_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"option {name!r} is not a keyword argument name")
        return value

    @model_validator(mode="after")
    def _options_fit(self) -> OpenFeatureFlags:
        provider_kwargs(self.factory(), self.options)
        return self

    def factory(self) -> Any:
        """The provider class or factory the import path names."""
        return import_object(self.provider)


class Flags(_Model):
    backend: Literal["file", "redis", "openfeature"] = "file"
    file: Path | None = None
    poll_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 0.5
    audit_file: Path | None = None  # file backend; default: <file stem>.audit.jsonl beside it
    redis: RedisFlags = RedisFlags()
    openfeature: OpenFeatureFlags | None = None  # backend openfeature: the provider and flag

    @field_validator("backend", mode="before")
    @classmethod
    def _known_backend(cls, value: Any) -> Any:
        if value not in ("file", "redis", "openfeature"):
            raise ValueError(
                "must be 'file' or 'redis' (the built-in backends), or 'openfeature' (a provider "
                "named in 'openfeature')"
            )
        return value

    @model_validator(mode="after")
    def _file_backend_needs_file(self) -> Flags:
        if self.backend == "file" and self.file is None:
            raise ValueError("'file' is required when backend is 'file'")
        if self.backend == "openfeature" and self.openfeature is None:
            raise ValueError("'openfeature' is required when backend is 'openfeature'")
        if self.backend != "openfeature" and self.openfeature is not None:
            raise ValueError(
                f"'openfeature' is set but backend is '{self.backend}' (set backend: openfeature)"
            )
        return self

    def resolve_paths(self, base: Path) -> Flags:
        return self.model_copy(
            update={
                "file": base / self.file if self.file is not None else None,
                "audit_file": base / self.audit_file if self.audit_file is not None else None,
                "redis": self.redis.resolve_paths(base),
            }
        )
