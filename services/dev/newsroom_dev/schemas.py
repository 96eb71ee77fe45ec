"""Generate ``schemas/`` from the contract models: JSON Schemas, examples and AsyncAPI 3.0.

    python -m newsroom_dev.schemas [--check] [--out schemas]

``--check`` writes nothing and exits 1 if a committed file differs from what the models give
(the staleness test runs the same comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic.json_schema import models_json_schema

from newsroom_dev.samples import sample_events
from newsroom_notify import __version__
from newsroom_notify.api.openapi import document as openapi_document
from newsroom_notify.contract.deadletter import HEADER_PREFIX, REASON_HEADERS
from newsroom_notify.contract.events import (
    ALL_EVENTS,
    CONTENT_TYPE,
    INPUT_EVENTS,
    CloudEvent,
    event_type_name,
)
from newsroom_notify.contract.topics import CATALOGUE
from newsroom_notify.settings import TopicSettings

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING = "0.5.0"


def _mode(model: type[CloudEvent]) -> Literal["validation", "serialization"]:
    return "validation" if model in INPUT_EVENTS else "serialization"


def json_schema_of(model: type[CloudEvent]) -> dict[str, Any]:
    """The standalone JSON Schema (2020-12) of one event type."""
    schema = model.model_json_schema(mode=_mode(model))
    name = event_type_name(model)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:newsroom-notify:schema:{name}:v1",
        **schema,
    }


def json_schema_files() -> dict[str, str]:
    """Relative path -> content of every JSON Schema and example file."""
    files = {}
    for model in ALL_EVENTS:
        name = event_type_name(model)
        files[f"json/{name}.v1.json"] = _dump_json(json_schema_of(model))
    for name, sample in sample_events().items():
        files[f"examples/{name}.json"] = _dump_json(sample)
    return files


def _dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic, message and operation of the service."""
    topics = TopicSettings()
    _, defs = models_json_schema(
        [(m, _mode(m)) for m in ALL_EVENTS], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = defs["$defs"]
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    header_schema = {
        "type": "object",
        "properties": {
            "content-type": {"type": "string", "const": CONTENT_TYPE},
        },
    }
    for spec in CATALOGUE:
        channel_messages = {}
        for model in spec.events():
            event_type = event_type_name(model)
            messages[model.__name__] = {
                "name": event_type,
                "title": model.__name__,
                "summary": (model.__doc__ or "").strip().splitlines()[0],
                "contentType": CONTENT_TYPE,
                "headers": header_schema,
                "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": spec.key},
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
                "examples": [{"name": "example", "payload": sample_events()[event_type]}],
            }
            channel_messages[model.__name__] = {"$ref": f"#/components/messages/{model.__name__}"}
        channels[spec.role] = {
            "address": spec.name(topics),
            "title": spec.name(topics),
            "description": (
                f"{spec.description} Key: {spec.key}. Produced by {spec.produced_by}; "
                f"consumed by {spec.consumed_by}."
            ),
            "messages": channel_messages,
            "bindings": {"kafka": {"topic": spec.name(topics), "bindingVersion": KAFKA_BINDING}},
        }
        action = "receive" if spec.is_input else "send"
        operations[f"{action}_{spec.role}"] = {
            "action": action,
            "title": f"newsroom-notify {'consumes' if spec.is_input else 'produces'} "
            f"{spec.name(topics)}",
            "channel": {"$ref": f"#/channels/{spec.role}"},
            "messages": [
                {"$ref": f"#/channels/{spec.role}/messages/{name}"} for name in channel_messages
            ],
        }
    messages["DeadLetter"] = {
        "name": "deadletter",
        "title": "Dead letter",
        "summary": "A consumed record that could not be processed, copied byte-for-byte.",
        "description": (
            "Key, value and original headers are those of the rejected record, unchanged. "
            f"Headers starting with '{HEADER_PREFIX}' say why: error.class, error.message, "
            "source.topic, source.partition, source.offset, consumer.group, failed.at."
        ),
        "headers": {
            "type": "object",
            "properties": {f"{HEADER_PREFIX}{h}": {"type": "string"} for h in REASON_HEADERS},
        },
        "payload": {"description": "The original value, any bytes."},
    }
    channels["deadletter"] = {
        "address": topics.name(topics.deadletter),
        "description": "Records newsroom-notify could not process, with the reason in headers.",
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    operations["send_deadletter"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/deadletter"},
        "messages": [{"$ref": "#/channels/deadletter/messages/DeadLetter"}],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "newsroom-notify",
            "version": __version__,
            "description": (
                "Notifications for news-site comment sections. Every record value is a "
                "CloudEvents 1.0 event in structured JSON mode; keys are UTF-8 strings. Topic "
                "names are defaults (configurable, with an optional prefix). Contract v1: "
                "fields may be added, never renamed or removed; a breaking change gets a new "
                "event type version."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker started by `make kafka-up`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def all_files() -> dict[str, str]:
    """Every generated file under ``schemas/``: relative path -> content."""
    files = json_schema_files()
    files["asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    files["openapi.json"] = _dump_json(openapi_document())
    return files


def stale_files(out: Path) -> list[str]:
    """Generated files that are missing or differ under ``out``, plus unexpected ones."""
    expected = all_files()
    stale = [
        rel
        for rel, content in expected.items()
        if not (out / rel).exists() or (out / rel).read_text() != content
    ]
    for sub in ("json", "examples"):
        for path in sorted((out / sub).glob("*.json")):
            rel = f"{sub}/{path.name}"
            if rel not in expected:
                stale.append(rel)
    return stale


def write(out: Path) -> None:
    """Write every generated file and remove generated files that no longer exist."""
    files = all_files()
    for sub in ("json", "examples"):
        for path in (out / sub).glob("*.json"):
            if f"{sub}/{path.name}" not in files:
                path.unlink()
    for rel, content in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def main(argv: list[str] | None = None) -> int:
    """Entry point: write or check ``schemas/``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--out", default="schemas")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.check:
        stale = stale_files(out)
        if stale:
            print("stale, run `make schemas`: " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    write(out)
    print(f"wrote {len(all_files())} files under {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
