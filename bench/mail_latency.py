"""The mail path's latency: a comment appended to Kafka -> its mail accepted by an SMTP server.

Starts a worker and ``newsroom-notify mailer`` (processes, as a user runs them) on a real broker
(``KAFKA_BOOTSTRAP_SERVERS``, or a single-node Kafka this script starts) and an SMTP sink
(aiosmtpd) in this process. Ana follows an article instantly; then, one at a time, another
member comments on it and the script waits for Ana's mail before the next comment. Each
sample is (the sink's accept time) - (the time ``send_and_wait`` of the comment returned).
One at a time: the figure is the path's latency, not a queue's.

    python -m bench.mail_latency [--comments 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.stats import latency_summary
from newsroom_dev import builders as b
from newsroom_dev.demo.story import stamp
from newsroom_dev.kafka import LocalKafka, free_port
from newsroom_dev.process import ServiceProcess as WorkerProcess
from newsroom_dev.process import worker_env
from newsroom_dev.smtpsink import Landed, SmtpSink
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev

ANA = b.member("m-ana", "Ana Lima", "ana@example.org")


async def publish(producer: AIOKafkaProducer, prefix: str, event: ev.CloudEvent) -> float:
    event = stamp(event, datetime.now(UTC))  # the service's clock: real time
    key, value = codec.encode(event, event.partition_key() or "x")
    topic = f"{prefix}newsroom.{event.topic_role}"
    await producer.send_and_wait(topic, key=key, value=value, headers=[codec.CONTENT_TYPE_HEADER])
    return time.time()


async def measure(bootstrap: str, prefix: str, comments: int, landed: list[Landed]) -> list[float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    samples: list[float] = []
    warm = False
    try:
        aid = "a-latency"
        await publish(producer, prefix, b.article(aid, "j-1", "local"))
        await publish(producer, prefix, b.subscribe(ANA, "article", aid, "instant"))
        # The subscription reaches the follower state asynchronously: comment until a first
        # mail arrives (the path is then warm), then measure one comment at a time.
        for i in range(comments + 40):
            before = len(landed)
            author = b.member(f"m-{i}", f"Writer {i}", None)
            appended = await publish(
                producer, prefix, b.comment(f"c-{i}", author, f"comment {i}", aid=aid)
            )
            # Polled (the sink appends from its thread); a sample uses the sink's own time.
            deadline = time.monotonic() + (60 if samples or warm else 3)
            while len(landed) == before and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            if len(landed) == before:
                if warm:
                    raise TimeoutError(f"no mail for comment {i}")
                continue
            if warm:
                samples.append(landed[before].accepted_at - appended)
            warm = True
            if len(samples) == comments:
                break
    finally:
        await producer.stop()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comments", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        kafka = None
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            kafka = LocalKafka.create(tmp / "kafka", size=1)
            kafka.start()
            bootstrap = kafka.bootstrap_servers
        landed: list[Landed] = []
        lock = threading.Lock()

        def on_mail(mail: Landed) -> None:
            with lock:
                landed.append(mail)

        smtp_port = free_port()
        sink = SmtpSink(tmp / "mail", smtp_port, on_mail=on_mail)
        sink.start()
        env = worker_env(bootstrap, tmp)
        env.update(
            {
                "NEWSROOM_MAILER__SMTP_PORT": str(smtp_port),
                "NEWSROOM_MAILER__SMTP_SECURITY": "none",
                "NEWSROOM_MAILER__AUTO_OFFSET_RESET": "earliest",
                "NEWSROOM_MAILER__GROUP_ID": env["NEWSROOM_TOPICS__PREFIX"] + "mailer",
                "NEWSROOM_MAILER__METRICS_PORT": str(free_port()),
            }
        )
        worker = WorkerProcess(env, tmp / "worker.log")
        mailer = WorkerProcess(
            env, tmp / "mailer.log", command="mailer", ready_marker="mailer ready"
        )
        try:
            worker.start()
            worker.wait_ready(120)
            mailer.start()
            mailer.wait_ready(120)
            samples = asyncio.run(
                measure(bootstrap, env["NEWSROOM_TOPICS__PREFIX"], args.comments, landed)
            )
        except Exception:
            for proc in (worker, mailer):
                print(proc.log_text()[-3000:], file=sys.stderr)
            raise
        finally:
            mailer.stop()
            worker.stop()
            sink.stop()
            if kafka is not None:
                kafka.stop()
    summary = latency_summary(samples)
    print(
        f"comment appended -> mail accepted, {len(samples)} comments one at a time: "
        + ", ".join(f"{k} {v}" for k, v in summary.items() if k != "count")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
