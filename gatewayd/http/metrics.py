"""``GET /metrics``: the gateway's counters in the Prometheus text format (prometheus-client).

Every name starts ``gatewayd_``; labels are few and bounded by the config (station,
scanner, printer, indicator, a fixed set of states): never a lot, a barcode or a message.
Counters and gauges are read from the running gateway at scrape time
(:class:`MetricsSnapshot`), so nothing is counted twice; the capture → PUBACK latency is
a histogram fed as acknowledgements arrive (:meth:`Metrics.observe_delivery`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Metrics", "MetricsSnapshot"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a fast local broker (a few ms) to an outage drained minutes later.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


@dataclass
class MetricsSnapshot:
    """What the gateway counts, read at scrape time."""

    reads: dict[tuple[str, str], int] = field(default_factory=dict)  # (station, scanner)
    captured: dict[str, int] = field(default_factory=dict)  # station
    suppressed: dict[str, int] = field(default_factory=dict)  # station
    refused: dict[tuple[str, str], int] = field(default_factory=dict)  # (station, scanner)
    outbox_depth: int = 0
    outbox_bytes: int = 0
    oldest_undelivered_age_s: float = 0.0
    broker_connected: bool = False
    print_jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (printer, state)
    printer_state: dict[str, str] = field(default_factory=dict)  # printer -> state
    verdicts: dict[tuple[str, str], int] = field(default_factory=dict)  # (station, verdict)
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)  # device -> (kind, state)
    printer_states: tuple[str, ...] = ()  # every state a printer can report


class _GatewayCollector(Collector):
    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot()
        m = CounterMetricFamily("gatewayd_reads", "Reads delivered by scanners", labels=["station", "scanner"])
        for (station, scanner), n in sorted(s.reads.items()):
            m.add_metric([station, scanner], n)
        yield m
        m = CounterMetricFamily("gatewayd_captured", "Reads committed to the outbox", labels=["station"])
        for station, n in sorted(s.captured.items()):
            m.add_metric([station], n)
        yield m
        m = CounterMetricFamily(
            "gatewayd_suppressed", "Repeat reads suppressed by the station's dedupe window", labels=["station"]
        )
        for station, n in sorted(s.suppressed.items()):
            m.add_metric([station], n)
        yield m
        m = CounterMetricFamily(
            "gatewayd_refused",
            "Reads that could not be recorded (outbox full or failing)",
            labels=["station", "scanner"],
        )
        for (station, scanner), n in sorted(s.refused.items()):
            m.add_metric([station, scanner], n)
        yield m
        yield GaugeMetricFamily("gatewayd_outbox_depth", "Captured events not yet acknowledged", value=s.outbox_depth)
        yield GaugeMetricFamily("gatewayd_outbox_bytes", "Bytes of undelivered events", value=s.outbox_bytes)
        yield GaugeMetricFamily(
            "gatewayd_outbox_oldest_undelivered_age_seconds",
            "Age of the oldest undelivered event (0 when none)",
            value=s.oldest_undelivered_age_s,
        )
        yield GaugeMetricFamily(
            "gatewayd_broker_connected", "1 while connected to an MQTT broker", value=int(s.broker_connected)
        )
        m = CounterMetricFamily("gatewayd_print_jobs", "Print jobs reaching each state", labels=["printer", "state"])
        for (printer, state), n in sorted(s.print_jobs.items()):
            m.add_metric([printer, state], n)
        yield m
        g = GaugeMetricFamily(
            "gatewayd_printer_state", "1 for the printer's current state, 0 for the others", labels=["printer", "state"]
        )
        for printer, current in sorted(s.printer_state.items()):
            for state in sorted({*s.printer_states, current}):
                g.add_metric([printer, state], int(state == current))
        yield g
        m = CounterMetricFamily(
            "gatewayd_feedback_verdicts", "Verdicts shown at stations, by kind", labels=["station", "verdict"]
        )
        for (station, verdict), n in sorted(s.verdicts.items()):
            m.add_metric([station, verdict], n)
        yield m
        g = GaugeMetricFamily(
            "gatewayd_device_connected", "1 while a device (scanner, indicator) is connected", labels=["device", "kind"]
        )
        for device, (kind, state) in sorted(s.devices.items()):
            g.add_metric([device, kind], int(state == "connected"))
        yield g


class Metrics:
    """The gateway's own registry (not the process-global one, so two gateways in one
    process, as in tests, never share counters)."""

    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_GatewayCollector(snapshot))
        self.delivery_latency = Histogram(
            "gatewayd_delivery_latency_seconds",
            "From capture (committed to the outbox) to the broker's PUBACK",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_delivery(self, seconds: float) -> None:
        self.delivery_latency.observe(max(0.0, seconds))

    def render(self) -> bytes:
        return generate_latest(self.registry)
