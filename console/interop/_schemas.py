"""Validation of Hub Santé messages against the official JSON schemas, read at run time.

The schemas are never copied into the repository: they are read from the reference
directory (``<hub_sante_dir>/schemas``, the files of ansforge/SAMU-Hub-Modeles), so a
new schema version is taken by replacing files, not by editing code. Every file declares
the same ``$id`` (``classpath:/json-schema/schema#``) and refers to the others by file
name; left as they are, the ``$id`` would make every relative reference resolve against
the same URI. Each schema is therefore registered under its own file URI with its
``$id`` dropped (in memory only), which is how the official Java validator resolves them
from its class path.

:meth:`HubSanteSchemas.validate` reports errors the way the official validator does
(envelope, then the RC-DE header, then the one content schema the message carries),
each with its JSON path (``$.content[0].jsonContent.embeddedJsonContent.message…``),
and finally checks the whole message against ``EDXL-DE-full`` so that nothing the
official schema refuses is accepted here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import (
    Draft7Validator,
    FormatChecker,
    ValidationError,
)
from referencing import Registry
from referencing.jsonschema import DRAFT7

FULL = "EDXL-DE-full.schema.json"
ENVELOPE_ONLY = "EDXL-DE-envelope-only.schema.json"
HEADER = "RC-DE.schema.json"
#: Keys of a converter fixture that wraps the envelope (``{"edxl": {…}}``).
WRAPPER_KEYS = ("edxl",)
_MESSAGE_PATH = "content[{i}].jsonContent.embeddedJsonContent.message"


class HubSanteError(ValueError):
    """The official schema files are missing or unreadable (the message says where)."""


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One error: where (JSON path), what, and against which schema file."""

    path: str
    message: str
    schema: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(slots=True)
class Validation:
    """What :meth:`HubSanteSchemas.validate` found.

    Attributes:
        kind: the message's model (``RS-EDA``, ``RS-BPV``, ``RS-URL``, ``RC-REF``…) when
            exactly one content was found, else None.
        key: its content key (``createCaseHealth``, ``interventionReport``…).
        enveloped: the message came inside an EDXL-DE envelope.
        issues: every error found (empty: valid).
        content: the content object itself (``{"caseId": …}``) when found.
        envelope: the envelope (EDXL-DE) when there was one.
    """

    kind: str | None = None
    key: str | None = None
    enveloped: bool = False
    issues: list[SchemaIssue] = field(default_factory=list)
    content: dict[str, Any] | None = None
    envelope: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.issues


def _path(parts: Iterable[object], prefix: str = "$") -> str:
    out = prefix
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _issues(error: ValidationError, prefix: str, schema: str) -> Iterator[SchemaIssue]:
    """One issue per missing or unexpected property, as the official validator lists them."""
    base = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        for name in error.validator_value:
            if name not in error.instance:
                yield SchemaIssue(
                    _path([*base, name], prefix), "is missing but it is required", schema
                )
        return
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(error.schema.get("properties", {}))
        for name in error.instance:
            if name not in allowed:
                yield SchemaIssue(
                    _path([*base, name], prefix),
                    "is not defined in the schema and the schema does not allow additional "
                    "properties",
                    schema,
                )
        return
    message = error.message
    if len(message) > 300:
        message = message[:300] + "…"
    yield SchemaIssue(_path(base, prefix), message, schema)


class HubSanteSchemas:
    """The official schemas of one reference directory (see the module docstring).

    Args:
        directory: the Hub Santé reference directory (holding ``schemas/``), i.e. the
            ``hub_sante_dir`` setting.

    Raises:
        HubSanteError: ``schemas/`` is missing, or a file is not JSON.
    """

    def __init__(self, directory: Path) -> None:
        folder = directory / "schemas"
        if not (folder / FULL).is_file():
            raise HubSanteError(
                f"Hub Santé schemas not found in {folder}: set SAMU_HUB_SANTE_DIR to the "
                "directory holding schemas/EDXL-DE-full.schema.json"
            )
        self.directory = directory
        self._contents: dict[str, dict[str, Any]] = {}
        resources = []
        for path in sorted(folder.glob("*.schema.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise HubSanteError(f"{path}: unreadable schema ({exc})") from None
            data.pop("$id", None)
            self._contents[path.name] = data
            resources.append((self._uri(path.name), DRAFT7.create_resource(data)))
        self._registry: Registry[Any] = Registry().with_resources(resources)
        self._validators: dict[str, Draft7Validator] = {}
        #: content key (``createCaseHealth``) → schema file (``RS-EDA.schema.json``).
        self.content_schemas, self._headerless = _content_keys(self._contents[FULL])

    def _uri(self, name: str) -> str:
        return (self.directory / "schemas" / name).resolve().as_uri()

    def validator(self, name: str) -> Draft7Validator:
        """The validator of one schema file (``RS-EDA.schema.json``)."""
        found = self._validators.get(name)
        if found is None:
            schema = self._contents.get(name)
            if schema is None:
                raise HubSanteError(f"no schema {name} in {self.directory / 'schemas'}")
            schema = {**schema, "$id": self._uri(name)}
            found = Draft7Validator(schema, registry=self._registry, format_checker=FormatChecker())
            self._validators[name] = found
        return found

    def kind_of(self, key: str) -> str:
        """``createCaseHealth`` → ``RS-EDA``."""
        return self.content_schemas[key].removesuffix(".schema.json")

    def check(self, name: str, instance: object, prefix: str = "$") -> list[SchemaIssue]:
        """Every error of ``instance`` against the schema file ``name``, sorted by path."""
        issues = [
            issue
            for error in self.validator(name).iter_errors(instance)
            for issue in _issues(error, prefix, name)
        ]
        return sorted(set(issues), key=lambda i: (i.path, i.message))

    def validate(self, data: object) -> Validation:
        """Validate a bare or enveloped Hub Santé message (see the module docstring)."""
        if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in WRAPPER_KEYS:
            data = next(iter(data.values()))
        if not isinstance(data, dict):
            return Validation(
                issues=[SchemaIssue("$", "a Hub Santé message is a JSON object", FULL)]
            )
        if len(data) == 1 and next(iter(data)) in self.content_schemas:
            key = next(iter(data))
            out = Validation(kind=self.kind_of(key), key=key)
            content = data[key]
            out.content = content if isinstance(content, dict) else None
            out.issues = self.check(self.content_schemas[key], content, f"$.{key}")
            return out
        if "messageId" in data and "content" not in data:
            return self._message(data, "$", Validation())
        out = Validation(enveloped=True, envelope=data)
        out.issues = self.check(ENVELOPE_ONLY, data)
        content = data.get("content")
        messages = content if isinstance(content, list) else []
        for i, item in enumerate(messages):
            message = (
                item.get("jsonContent", {}).get("embeddedJsonContent", {}).get("message")
                if isinstance(item, dict)
                and isinstance(item.get("jsonContent"), dict)
                and isinstance(item["jsonContent"].get("embeddedJsonContent"), dict)
                else None
            )
            prefix = "$." + _MESSAGE_PATH.format(i=i)
            if not isinstance(message, dict):
                out.issues.append(SchemaIssue(prefix, "is missing but it is required", FULL))
                continue
            self._message(message, prefix, out)
        if not out.issues:
            # The decomposition found nothing: the whole schema has the last word.
            out.issues = self.check(FULL, data)
        return out

    def _message(self, message: dict[str, Any], prefix: str, out: Validation) -> Validation:
        keys = [k for k in message if k in self.content_schemas]
        if not (keys and all(k in self._headerless for k in keys)):
            out.issues += self.check(HEADER, message, prefix)
        if not keys:
            known = ", ".join(sorted(self.content_schemas))
            out.issues.append(
                SchemaIssue(
                    prefix,
                    f"no Hub Santé content in the message (expected one of {known})",
                    FULL,
                )
            )
        elif len(keys) > 1:
            out.issues.append(
                SchemaIssue(
                    prefix,
                    f"more than one content ({', '.join(keys)}): a message carries exactly one",
                    FULL,
                )
            )
        for key in keys:
            out.issues += self.check(self.content_schemas[key], message[key], f"{prefix}.{key}")
        if len(keys) == 1:
            out.key = keys[0]
            out.kind = self.kind_of(keys[0])
            content = message[keys[0]]
            out.content = content if isinstance(content, dict) else None
        return out


def _content_keys(full: dict[str, Any]) -> tuple[dict[str, str], frozenset[str]]:
    """The content key → schema file pairs the envelope's ``oneOf`` allows, and the keys
    whose alternative does not ask for the RC-DE header (``technicalNoreq``)."""
    found: dict[str, str] = {}
    headerless: set[str] = set()
    alternatives = full.get("definitions", {}).get("EmbeddedJsonContent", {}).get("oneOf", [])
    for alternative in alternatives:
        parts = alternative.get("allOf", [alternative])
        keys: list[str] = []
        header = False
        for part in parts:
            msg = part.get("properties", {}).get("message", {})
            if msg.get("$ref") == HEADER:
                header = True
            for key, spec in msg.get("properties", {}).items():
                ref = spec.get("$ref") if isinstance(spec, dict) else None
                if ref and key in msg.get("required", []):
                    found[key] = ref
                    keys.append(key)
        if not header:
            headerless.update(keys)
    return found, frozenset(headerless)


@cache
def load_schemas(directory: Path) -> HubSanteSchemas:
    """The schemas of ``directory``, loaded once per process."""
    return HubSanteSchemas(directory)
