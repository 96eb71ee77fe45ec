"""A minimal Faust app (one agent, one changelog-backed table) used to prove Faust runs on the
broker this test session uses. Run as ``python counter_app.py worker``; configured by env."""

import os

import faust

app = faust.App(
    os.environ["COUNTER_APP_ID"],
    broker=f"kafka://{os.environ['COUNTER_BOOTSTRAP']}",
    store="memory://",
    topic_partitions=2,
    web_port=int(os.environ["COUNTER_WEB_PORT"]),
    web_bind="127.0.0.1",
)
source = app.topic(os.environ["COUNTER_IN"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["COUNTER_OUT"], key_serializer="raw", value_serializer="raw")
counts = app.Table("counts", default=int)


@app.agent(source)
async def count(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        word = event.key.decode()
        counts[word] += 1
        await sink.send(key=event.key, value=str(counts[word]).encode())


if __name__ == "__main__":
    app.main()
