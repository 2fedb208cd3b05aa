"""Kafka client settings, all from configuration.

The local defaults are the low-latency values measured on the development broker (tansu);
a production cluster needs only KAFKA_BOOTSTRAP_SERVERS (and its security settings).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

logger = logging.getLogger("hms.kafka")


def _common(config: Mapping) -> dict:
    settings = {
        "bootstrap.servers": config["KAFKA_BOOTSTRAP_SERVERS"],
        "client.id": config["KAFKA_CLIENT_ID"],
        "logger": logger,
    }
    for key, name in (("security.protocol", "KAFKA_SECURITY_PROTOCOL"), ("sasl.mechanism", "KAFKA_SASL_MECHANISM"),
                      ("sasl.username", "KAFKA_SASL_USERNAME"), ("sasl.password", "KAFKA_SASL_PASSWORD")):
        if config.get(name):
            settings[key] = config[name]
    return settings


def group_name(config: Mapping, role: str) -> str:
    return f"{config['HMS_CONSUMER_GROUP_PREFIX']}-{role}"


def producer_settings(config: Mapping) -> dict:
    return {
        **_common(config),
        "enable.idempotence": True,
        "acks": "all",
        # Topics come from the init step only; a producer must not create one with the broker's defaults.
        "allow.auto.create.topics": False,
        "linger.ms": config["KAFKA_LINGER_MS"],
        "message.timeout.ms": config["KAFKA_MESSAGE_TIMEOUT_MS"],
    }


def consumer_settings(config: Mapping, group: str) -> dict:
    return {
        **_common(config),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": config["KAFKA_AUTO_OFFSET_RESET"],
        "session.timeout.ms": config["KAFKA_SESSION_TIMEOUT_MS"],
        "fetch.wait.max.ms": config["KAFKA_FETCH_WAIT_MAX_MS"],
        "topic.metadata.refresh.interval.ms": config["KAFKA_METADATA_REFRESH_MS"],
    }


def admin_settings(config: Mapping) -> dict:
    return _common(config)


def topics(config: Mapping) -> dict[str, int]:
    """Every topic the system uses, with its partition count (created by `python -m workers init-topics`)."""
    return {config["HMS_EVENTS_TOPIC"]: config["HMS_EVENTS_PARTITIONS"],
            config["HMS_DLQ_TOPIC"]: config["HMS_EVENTS_PARTITIONS"]}


def create_topics(config: Mapping, timeout: float = 60.0) -> None:
    """Create the topics that are missing (the init step; nothing relies on auto-creation)."""
    import time

    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(admin_settings(config))
    wanted = topics(config)
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = set(admin.list_topics(timeout=5).topics)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
    missing = [NewTopic(name, num_partitions=n, replication_factor=config["KAFKA_REPLICATION_FACTOR"])
               for name, n in wanted.items() if name not in existing]
    for name, future in (admin.create_topics(missing) if missing else {}).items():
        try:
            future.result(timeout)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    while set(wanted) - set(admin.list_topics(timeout=5).topics):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not visible after {timeout} s: {sorted(wanted)}")
        time.sleep(0.1)
