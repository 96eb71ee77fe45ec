"""All configuration of newsroom-notify, in one typed class.

Every setting comes from the environment with the ``NEWSROOM_`` prefix; nested groups use ``__``
(``NEWSROOM_KAFKA__BOOTSTRAP_SERVERS``). Tests build a ``Settings`` directly through its
initializer. No other module reads ``os.environ``.
"""

from __future__ import annotations

import ssl
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SecurityProtocol(StrEnum):
    """How the service talks to the Kafka brokers."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    """SASL mechanisms supported by both aiokafka and Faust."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSettings(BaseModel):
    """Connection to the Kafka cluster."""

    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Comma-separated host:port list of brokers.",
    )
    security_protocol: SecurityProtocol = Field(
        SecurityProtocol.PLAINTEXT, description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        None, description="SASL mechanism; required when the protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    ssl_cafile: str | None = Field(None, description="CA bundle used to verify the brokers.")
    ssl_certfile: str | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: str | None = Field(None, description="Private key of the client certificate.")
    replication_factor: int = Field(
        1, ge=1, description="Replication factor of every topic the service creates."
    )
    min_insync_replicas: int | None = Field(
        None, ge=1, description="min.insync.replicas of created topics (broker default if unset)."
    )
    session_timeout_s: float = Field(
        10.0,
        ge=6.0,
        description="Consumer group session timeout: how soon a dead worker's partitions move.",
    )
    heartbeat_interval_s: float = Field(
        2.0, gt=0, description="Consumer heartbeat interval (well under the session timeout)."
    )
    linger_ms: float = Field(
        5.0,
        ge=0,
        description="Producer linger: how long a batch may wait for more records before it "
        "is sent (fewer, larger produce requests for a few ms of latency).",
    )
    max_batch_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest producer batch per partition, in bytes."
    )
    fetch_max_wait_ms: int = Field(
        100,
        ge=0,
        description="Consumer fetch wait: how long the broker holds a fetch that found no "
        "new record (Faust's fixed value is 1500). aiokafka sends one fetch per broker at a "
        "time, for the partitions with nothing buffered, so a partition emptied while that "
        "fetch waits is asked for again only when it returns: each hop between the stages "
        "can wait this long (docs/benchmarks.md, latency).",
    )
    commit_interval_s: float = Field(
        1.0, gt=0, description="How often processed offsets are committed (replay window)."
    )
    batch_max_events: int = Field(
        200,
        ge=1,
        le=10_000,
        description="Most records an agent handles as one batch: the records already fetched "
        "when it starts one (it never waits for a batch to fill). A key written several times "
        "in a batch is stored and changelogged once; the batch is acknowledged after.",
    )

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> Self:
        # A half-configured SASL setup must fail loudly instead of silently talking plaintext.
        uses_sasl = self.security_protocol.startswith("SASL_")
        if uses_sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            msg = "SASL_* security protocol needs sasl_mechanism, sasl_username and sasl_password"
            raise ValueError(msg)
        if not uses_sasl and (self.sasl_mechanism or self.sasl_username or self.sasl_password):
            msg = (
                "SASL credentials are set but security_protocol is "
                f"{self.security_protocol}; use SASL_SSL or SASL_PLAINTEXT"
            )
            raise ValueError(msg)
        return self

    @property
    def bootstrap_list(self) -> list[str]:
        """The bootstrap servers as a list."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context for SSL/SASL_SSL, or None for plaintext protocols."""
        if not self.security_protocol.endswith("SSL"):
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return ctx

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments for aiokafka clients (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_list,
            "security_protocol": self.security_protocol.value,
        }
        ctx = self.ssl_context()
        if ctx is not None:
            kwargs["ssl_context"] = ctx
        if self.sasl_mechanism is not None and self.sasl_password is not None:
            kwargs["sasl_mechanism"] = self.sasl_mechanism.value
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return kwargs


class TopicSettings(BaseModel):
    """Names and layout of the service's topics (defaults from contract v1)."""

    prefix: str = Field("", description="Prepended to every topic name, e.g. 'staging.'.")
    partitions: int = Field(
        8, ge=1, description="Partitions of input/output topics and of Faust's internal topics."
    )
    articles: str = Field("newsroom.articles", description="Input: article events.")
    comments: str = Field("newsroom.comments", description="Input: comment events.")
    subscriptions: str = Field(
        "newsroom.subscriptions", description="Input: subscription commands."
    )
    notifications: str = Field(
        "newsroom.notifications", description="Output: instant notifications and retractions."
    )
    digests: str = Field("newsroom.digests", description="Output: periodic digests.")
    deadletter: str = Field(
        "newsroom.deadletter", description="Output: records that could not be processed."
    )
    retention_ms: int = Field(
        7 * 24 * 3600 * 1000, description="retention.ms of input and output topics."
    )
    max_message_bytes: int = Field(
        8 * 1024 * 1024,
        description=(
            "max.message.bytes of created topics. Larger than max_record_bytes so an oversized "
            "record can still be copied byte-for-byte to the dead-letter topic."
        ),
    )

    changelog_max_compaction_lag_ms: int = Field(
        24 * 3600 * 1000,
        gt=0,
        description=(
            "max.compaction.lag.ms of the tables' changelog topics: an overwritten or erased "
            "value becomes eligible for compaction at most this long after it was written "
            "(Kafka also rolls the active segment by then, on the partition's next write)."
        ),
    )
    changelog_segment_ms: int = Field(
        24 * 3600 * 1000,
        gt=0,
        description="segment.ms of the changelog topics (the roll time of a segment).",
    )
    changelog_min_cleanable_dirty_ratio: float = Field(
        0.5,
        gt=0,
        le=1,
        description="min.cleanable.dirty.ratio of the changelog topics.",
    )
    changelog_delete_retention_ms: int = Field(
        24 * 3600 * 1000,
        ge=0,
        description=(
            "delete.retention.ms of the changelog topics: how long a tombstone (a key "
            "without value) stays after compaction."
        ),
    )

    def changelog_configs(self) -> dict[str, str]:
        """The compaction configs of every changelog topic (created by the service or by
        Faust): a bounded time from an erasure to the old values leaving the log."""
        return {
            "max.compaction.lag.ms": str(self.changelog_max_compaction_lag_ms),
            "segment.ms": str(self.changelog_segment_ms),
            "min.cleanable.dirty.ratio": str(self.changelog_min_cleanable_dirty_ratio),
            "delete.retention.ms": str(self.changelog_delete_retention_ms),
        }

    def name(self, base: str) -> str:
        """The full name of a topic, with the configured prefix."""
        return f"{self.prefix}{base}"


class TokenSettings(BaseModel):
    """Keys of the tokens this service mints (unsubscribe, confirm)."""

    secret_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr("dev-only-change-me")],
        description=(
            "Signing keys, newest first. Tokens are signed with the first and verified "
            "with any of them, so a key can be rotated without breaking links in flight."
        ),
    )
    unsubscribe_max_age_s: int = Field(
        90 * 24 * 3600, description="Lifetime of an unsubscribe token in seconds."
    )
    confirm_max_age_s: int = Field(
        7 * 24 * 3600,
        description="Lifetime of a confirmation token (subscription or erasure) in seconds.",
    )
    manage_max_age_s: int = Field(
        14 * 24 * 3600,
        description="Lifetime of the manage token in each notification in seconds (it can read "
        "and change preferences and ask for erasure; signing out everywhere revokes it).",
    )
    undo_max_age_s: int = Field(
        15 * 60,
        ge=1,
        description="How long the 'undo' of an unsubscribe page works, in seconds: it restores "
        "the subscription just cancelled without a new confirmation.",
    )
    form_max_age_s: int = Field(
        2 * 3600,
        ge=60,
        description="Lifetime of the CSRF token in each reader page's form, in seconds.",
    )


class DigestSettings(BaseModel):
    """Digests and the clock they run on."""

    items_per_article: int = Field(
        5, ge=1, le=50, description="Comments shown per article in a digest."
    )
    slot_minutes: int = Field(
        15,
        description="Length of an article's activity slot; must divide 15 (time zone offsets "
        "are multiples of 15 minutes, so a slot never straddles a period boundary).",
    )
    grace_s: float = Field(
        120.0,
        ge=0,
        description="A digest is cut this long after its period ends, so that the article "
        "activity fanned out at the period end reaches the inbox first.",
    )
    tick_s: float = Field(
        30.0, gt=0, description="How often (real seconds) the digest timers look for work."
    )
    clock_speed: float = Field(
        1.0,
        ge=1.0,
        description="Virtual seconds per real second, for demos and tests (1 in production).",
    )
    clock_anchor: datetime | None = Field(
        None,
        description="Real instant from which a sped-up clock runs; before it, the clock stands "
        "still at it (required if speed > 1).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if 15 % self.slot_minutes:
            raise ValueError("slot_minutes must divide 15 (1, 3, 5 or 15)")
        if self.clock_speed != 1.0 and self.clock_anchor is None:
            raise ValueError("a sped-up clock needs clock_anchor")
        return self


class ApiSettings(BaseModel):
    """The subscription HTTP API: served by every worker's web server, and by the stand-alone
    stateless `newsroom-notify api` process (writes go to Kafka, reads to a worker)."""

    jwt_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr("dev-only-identity-key")],
        description="HMAC keys of the newsroom's identity system (HS256 JWTs), newest first; "
        "any of them verifies a token, so keys can be rotated.",
    )
    jwt_issuer: str = Field("newsroom-identity", description="Required 'iss' of member tokens.")
    jwt_audience: str | None = Field(
        "newsroom-notify", description="Required 'aud' of member tokens (None: not checked)."
    )
    per_ip_per_minute: int = Field(
        30, ge=1, description="Subscribe/confirm requests per client IP per minute."
    )
    confirmations_per_address_per_day: int = Field(
        3,
        ge=1,
        description="Confirmation mails (subscription or erasure) one mailbox gets per day; "
        "kept by the worker owning the address (aliases with a +tag share it).",
    )
    max_body_bytes: int = Field(16 * 1024, ge=256, description="Largest accepted request body.")
    rate_limit_max_keys: int = Field(
        100_000,
        ge=1,
        description="Most client addresses (IPv6: /64 networks) each in-process rate limiter "
        "remembers; beyond it the least recently seen is forgotten (bounds memory).",
    )
    trusted_proxy_hops: int = Field(
        0,
        ge=0,
        description="Proxies in front of the API that append to X-Forwarded-For (ingress, load "
        "balancer); 0 = rate-limit by the connection's address.",
    )
    host: str = Field(
        "127.0.0.1", description="Bind address of the stand-alone API (`newsroom-notify api`)."
    )
    port: int = Field(8080, description="Port of the stand-alone API (`newsroom-notify api`).")
    metrics_host: str = Field(
        "127.0.0.1",
        description="Bind address of the stand-alone API's internal port (/metrics); never "
        "published to readers.",
    )
    metrics_port: int = Field(
        9464, description="Internal port of the stand-alone API serving /metrics to Prometheus."
    )
    public_url: str = Field(
        "http://127.0.0.1:8080",
        description="The API's public base URL as readers reach it (through the ingress, "
        "https in production): the mailer's unsubscribe, manage and confirm links.",
        pattern=r"^https?://[^\s]+$",
    )
    worker_url: str = Field(
        "http://127.0.0.1:6066",
        description="Base URL of any worker's internal web port; the stand-alone API forwards "
        "profile reads there (the worker routes them to the partition's owner).",
    )


class LimitSettings(BaseModel):
    """Caps of the per-key state records, so no record outgrows what the broker accepts. What
    happens beyond each cap is in docs/security.md (bounded state)."""

    state_record_bytes: int = Field(
        900 * 1024,
        ge=1024,
        description=(
            "Largest record (key + value) the service writes to any topic, changelogs "
            "included; below the broker's default message.max.bytes (1 MiB). A larger one is "
            "never sent: its input record is dead-lettered (StateTooLarge)."
        ),
    )
    held_notifications: int = Field(
        50, ge=1, description="Notifications held per recipient in quiet hours; more: digest."
    )
    digest_items: int = Field(
        200, ge=1, description="Items waiting per recipient for the next digest; newest kept."
    )
    digest_contributions: int = Field(
        200, ge=1, description="Article activities waiting per recipient; newest kept."
    )
    followers: int = Field(
        10_000,
        ge=1,
        description="Followers per commenter (who got each of their comments is remembered, "
        "for retractions) and per digest-follower chunk of an article.",
    )
    publisher_followers: int = Field(
        10_000_000,
        ge=1,
        description="Followers per journalist or section, kept in 4,096 chunks by a hash of "
        "their id (about 2,450 per chunk at the cap).",
    )
    fanout_step_recipients: int = Field(
        2_000,
        ge=1,
        description="Followers a fan-out to a journalist's or section's followers takes per "
        "step (one handler call); the follows stage sends itself the rest.",
    )
    thread_participants: int = Field(
        5_000, ge=1, description="Participants remembered per article (for mentions)."
    )
    subscriptions: int = Field(
        500, ge=1, description="Subscriptions per subscriber; more: refused (not recorded)."
    )
    traces: int = Field(
        5_000,
        ge=1,
        description="Discussions remembered per subscriber for erasure; more: erasure searches.",
    )
    authored_comments: int = Field(
        2_000,
        ge=1,
        description="Comment ids per author per article for erasure; more: erasure searches.",
    )
    thread_instant_followers: int = Field(
        5_000, ge=1, description="Instant-mode followers per article."
    )
    fanout_batch_recipients: int = Field(
        1_000, ge=1, description="Recipients per fan-out record to one inbox partition."
    )
    unfollowed_commenters: int = Field(
        1_000_000,
        ge=0,
        description="Commenters known to have no followers, kept per worker (their comments "
        "skip the follows topic); more: their comments take the follows hop; 0: every "
        "comment takes it, and the threads stage is never told.",
    )


class SmtpSecurity(StrEnum):
    """How the mailer secures its SMTP connection."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class MailerSettings(BaseModel):
    """``newsroom-notify mailer``: the reference e-mail sender (its own consumer group)."""

    group_id: str = Field("newsroom-mailer", description="Kafka consumer group of the mailer.")
    auto_offset_reset: str = Field(
        "latest",
        pattern="^(earliest|latest)$",
        description="Where a new group starts: 'latest' (a new mailer does not mail the topics' "
        "history) or 'earliest'.",
    )
    sent_topic: str = Field(
        "newsroom.mailer.sent",
        description="Compacted topic of the ids the mailer sent (read back at start).",
    )
    sent_retention_ms: int = Field(
        14 * 24 * 3600 * 1000,
        description="How long sent ids are kept (longer than the notification topics' "
        "retention, so any replay of them finds its ids).",
    )
    max_sent_ids: int = Field(
        500_000, ge=1, description="Sent ids held in memory (oldest forgotten first)."
    )
    max_retracted_ids: int = Field(
        100_000, ge=1, description="Retracted, not yet sent ids held in memory."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(25, description="SMTP relay port (587 STARTTLS, 465 TLS).")
    smtp_security: SmtpSecurity = Field(
        SmtpSecurity.STARTTLS,
        description="'starttls' (required, never falls back to plaintext), 'tls' (implicit TLS) "
        "or 'none' (a local sink only).",
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user name.")
    smtp_password: SecretStr | None = Field(None, description="SMTP AUTH password (secret).")
    smtp_cafile: str | None = Field(None, description="CA bundle to verify the relay's cert.")
    smtp_timeout_s: float = Field(30.0, gt=0, description="Timeout of each SMTP operation.")
    retry_attempts: int = Field(
        5, ge=1, description="Tries of one mail before the partition is paused and re-read."
    )
    retry_backoff_s: float = Field(
        1.0, gt=0, description="First wait between tries; doubles up to retry_backoff_max_s."
    )
    retry_backoff_max_s: float = Field(60.0, gt=0, description="Longest wait between tries.")
    sender: str = Field(
        "notifications@news.example.com", description="From address and envelope sender."
    )
    sender_name: str = Field("Newsroom", description="Display name of the From address.")
    message_id_domain: str | None = Field(
        None, description="Right-hand side of Message-ID (default: the sender's domain)."
    )
    timezone: str = Field(
        "UTC", description="Time zone of dates in the mails (events carry no reader's zone)."
    )
    metrics_host: str = Field("127.0.0.1", description="Bind address of the mailer's /metrics.")
    metrics_port: int = Field(9465, description="Port of the mailer's /metrics (internal).")

    @model_validator(mode="after")
    def _auth_is_complete(self) -> Self:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together")
        if self.smtp_password is not None and self.smtp_security == SmtpSecurity.NONE:
            raise ValueError("SMTP AUTH over an unencrypted connection: use starttls or tls")
        return self


class Settings(BaseSettings):
    """newsroom-notify settings. Environment prefix ``NEWSROOM_``, nested delimiter ``__``."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSROOM_", env_nested_delimiter="__", extra="ignore"
    )

    app_id: str = Field("newsroom-notify", description="Faust app id = Kafka consumer group.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    mailer: MailerSettings = Field(default_factory=MailerSettings)
    store: str = Field(
        "rocksdb://", description="Faust table store: 'rocksdb://' (production) or 'memory://'."
    )
    data_dir: str = Field(".run/worker-data", description="Worker data dir (RocksDB tables).")
    rocksdb_write_buffer_mb: int = Field(
        16,
        ge=1,
        description="RocksDB memtable size of each table partition (at most two per partition "
        "before they are flushed to disk; Kafka Streams' size). Faust's three of 64 MB let a "
        "worker's memory grow with every key written (a breaking-news fan-out writes a sent "
        "record per follower); 4 MB made that fan-out 27 % slower (docs/benchmarks.md).",
    )
    rocksdb_block_cache_mb: int = Field(
        8,
        ge=1,
        description="RocksDB block cache of each table partition (Faust's: 2 GiB each, so a "
        "worker kept in memory every value it read, a million followers' profiles included).",
    )
    standby_replicas: int = Field(
        1,
        ge=0,
        description="Standby copies of each table partition kept by other workers (fast "
        "take-over; each costs a worker the other's changelog writes).",
    )

    def rocksdb_options(self) -> dict[str, int]:
        """The options of each table's RocksDB store (a new dict each: Faust's store pops
        keys from the one it is given)."""
        mb = 1024 * 1024
        return {
            "write_buffer_size": self.rocksdb_write_buffer_mb * mb,
            "max_write_buffer_number": 2,
            "block_cache_size": self.rocksdb_block_cache_mb * mb,
        }

    web_port: int = Field(
        6066,
        description="The worker's internal port (worker-to-worker profile reads, /metrics, "
        "probes); reachable by workers, the API and Prometheus only, never by readers.",
    )
    web_host: str = Field(
        "127.0.0.1", description="Bind address of the worker's internal port (pod network)."
    )
    web_enabled: bool = Field(True, description="Serve the worker's web endpoints.")
    source: str = Field(
        "urn:newsroom-notify", description="CloudEvents 'source' of events this service emits."
    )
    max_record_bytes: int = Field(
        1024 * 1024,
        description="Input records larger than this (key + value) are dead-lettered.",
    )
    create_topics: bool = Field(
        True, description="Create missing input/output topics when the worker starts."
    )
    quiet_hours_check_s: float = Field(
        60.0, gt=0, description="How often held (quiet-hours) notifications are checked."
    )
    metrics_sample_s: float = Field(
        15.0, gt=0, description="How often table sizes and consumer lag are sampled for /metrics."
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_format: str = Field(
        "auto", description="'json', 'console', or 'auto' (console on a TTY, JSON otherwise)."
    )
    dev_mode: bool = Field(
        False,
        description="Development mode: allows the built-in dev-only keys. Set by `make run`, "
        "the tests and docker compose; never in production.",
    )

    def dev_key_settings(self) -> list[str]:
        """The variables still holding a development key (``dev-only-…``, as the built-in
        defaults do): anyone who reads this repository could mint tokens with them."""
        found = []
        if any(_is_dev_key(k) for k in self.tokens.secret_keys):
            found.append("NEWSROOM_TOKENS__SECRET_KEYS")
        if any(_is_dev_key(k) for k in self.api.jwt_keys):
            found.append("NEWSROOM_API__JWT_KEYS")
        return found

    def refuse_dev_keys(self) -> None:
        """Raise ``DevKeysRefused`` if a development key is configured outside dev mode."""
        found = self.dev_key_settings()
        if found and not self.dev_mode:
            raise DevKeysRefused(found)


DEV_KEY_PREFIX = "dev-only"


def _is_dev_key(key: SecretStr) -> bool:
    return key.get_secret_value().startswith(DEV_KEY_PREFIX)


class DevKeysRefused(Exception):
    """A process would start with a publicly known signing key."""

    def __init__(self, variables: list[str]) -> None:
        self.variables = variables
        names = " and ".join(variables)
        super().__init__(
            f"{names} still holds a development key ({DEV_KEY_PREFIX}-...), which anyone can "
            f"read in this repository and use to forge tokens. Set {names} to a secret of your "
            "own (newest first), or set NEWSROOM_DEV_MODE=true for local development only."
        )
