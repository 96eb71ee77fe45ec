"""Settings: env prefix, nested groups, secrets, and SASL that never falls back to plaintext."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from newsroom_notify.settings import KafkaSettings, Settings


def test_settings_read_prefixed_nested_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSROOM_KAFKA__BOOTSTRAP_SERVERS", "k1:9092, k2:9092")
    monkeypatch.setenv("NEWSROOM_TOPICS__PREFIX", "staging.")
    monkeypatch.setenv("NEWSROOM_STORE", "memory://")
    settings = Settings()
    assert settings.kafka.bootstrap_list == ["k1:9092", "k2:9092"]
    assert settings.topics.name(settings.topics.comments) == "staging.newsroom.comments"
    assert settings.store == "memory://"


def test_sasl_without_credentials_is_rejected() -> None:
    with pytest.raises(ValidationError, match="SASL_"):
        KafkaSettings(security_protocol="SASL_SSL")  # type: ignore[arg-type]


def test_sasl_credentials_with_plaintext_protocol_are_rejected() -> None:
    with pytest.raises(ValidationError, match="SASL credentials are set"):
        KafkaSettings(sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p")  # type: ignore[arg-type]


def test_sasl_settings_reach_aiokafka_and_hide_the_password() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",  # type: ignore[arg-type]
        sasl_mechanism="SCRAM-SHA-512",  # type: ignore[arg-type]
        sasl_username="notify",
        sasl_password="s3cret-pw",  # type: ignore[arg-type]
    )
    kwargs = kafka.aiokafka_kwargs()
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_password"] == "s3cret-pw"
    assert "s3cret-pw" not in repr(kafka)
    assert "s3cret-pw" not in str(Settings(kafka=kafka).model_dump())


def test_token_keys_are_secret() -> None:
    settings = Settings(tokens={"secret_keys": ["k-new", "k-old"]})  # type: ignore[arg-type]
    assert "k-new" not in repr(settings)
    assert [k.get_secret_value() for k in settings.tokens.secret_keys] == ["k-new", "k-old"]


def _env_names(model: type[BaseModel], prefix: str) -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            names += _env_names(nested, env + "__")
        else:
            names.append(env)
    return names


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    """Each env var appears in docs/configuration.md, in full or as a `__NAME` shorthand."""
    section = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    missing = [
        env
        for env in _env_names(Settings, "NEWSROOM_")
        if f"`{env}`" not in section and f"`__{env.rsplit('__', 1)[-1]}`" not in section
    ]
    assert missing == []
