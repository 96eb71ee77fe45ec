"""A throughput phase: the workers ready, then a batch of comments at full speed."""

from __future__ import annotations

from typing import Any

from bench.throughput.broker import Record, publish
from bench.throughput.sampling import Phase, follow
from bench.throughput.workers import Service


async def throughput_phase(
    *,
    name: str,
    workers: int,
    records: list[Record],
    watch: Any,
    overrides: dict[str, str] | None = None,
    service: Service,
    inputs: str,
    outputs: str,
    internal: list[str],
    within_s: float,
) -> dict[str, Any]:
    base_in = (await watch.end([inputs]))[inputs]
    base_out = (await watch.end([outputs]))[outputs]
    # Workers first, ready (tables recovered, group settled), then the batch as fast as a
    # producer writes it: the figure is processing, not start-up and rebalancing.
    service.start(workers, overrides)
    await service.ready()
    phase = Phase(name, len(records))
    print(f"{name}: ready; publishing {len(records)} comment events")
    await publish(service.bootstrap, records)
    await follow(
        watch=watch,
        service=service,
        phase=phase,
        inputs=inputs,
        outputs=outputs,
        internal=internal,
        base_in=base_in,
        base_out=base_out,
        within_s=within_s,
    )
    service.stop()
    figures = phase.figures()
    figures["series"] = {"input": phase.series_in, "notifications": phase.series_out}
    print(
        f"{name}: {figures['input_per_s']} comment events/s through every stage, "
        f"{figures['notifications_per_s_sustained']} notifications/s"
    )
    return figures
