"""Settings: env prefix, nested groups, secrets, and SASL that never falls back to plaintext."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
