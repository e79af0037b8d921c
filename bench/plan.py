"""How much to measure: repetitions and request counts of the full run and of ``--quick``.

Every loop in the benchmark takes its count from here, so each run is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """Counts for one run; ``variant`` selects the MobileNetV2 build (see ``bench.models``)."""

    name: str
    variant: str
    cold_starts: int  # new processes per server; the median is reported
    warmup: int  # unrecorded warm requests before a latency series
    warm_small: int  # timed warm requests on the digits model
    warm_large: int  # timed warm requests on the MobileNetV2-sized model
    clients: tuple[int, ...]  # concurrency levels for throughput
    requests_per_client: int  # throughput requests = clients x this, at least min_requests
    min_requests: int
    throughput_repeats: int  # the median requests/s over these repeats
    invokes: int  # in-process predict/invoke pairs, and invokes per quantization mode
    hostile_rounds: int  # rounds of 4 concurrent bodies at the size limit, per configuration

    def throughput_requests(self, clients: int) -> int:
        """Fixed request count for ``clients`` concurrent clients."""
        return max(self.min_requests, clients * self.requests_per_client)


FULL = Plan(
    name="full",
    variant="full",
    cold_starts=5,
    warmup=10,
    warm_small=300,
    warm_large=60,
    clients=(1, 4, 16),
    requests_per_client=3,
    min_requests=24,
    throughput_repeats=3,
    invokes=60,
    hostile_rounds=3,
)
QUICK = Plan(
    name="quick",
    variant="quick",
    cold_starts=2,
    warmup=3,
    warm_small=30,
    warm_large=10,
    clients=(1, 4, 16),
    requests_per_client=1,
    min_requests=8,
    throughput_repeats=1,
    invokes=10,
    hostile_rounds=1,
)
