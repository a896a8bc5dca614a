"""Prometheus text exposition of :class:`~gateway.events.metrics.GatewayMetrics`."""

from __future__ import annotations

from gateway.events.admission import Admission
from gateway.events.metrics import GatewayMetrics, Histogram


def _histogram(name: str, help_text: str, h: Histogram) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    running = 0
    for bound, count in zip(h.bounds, h.counts, strict=False):
        running += count
        lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {h.samples}')
    lines.append(f"{name}_sum {h.total:.6f}")
    lines.append(f"{name}_count {h.samples}")
    return lines


def render(
    m: GatewayMetrics,
    *,
    rooms: int,
    admission: Admission | None = None,
    extra_gauges: dict[str, float] | None = None,
) -> str:
    """The ``/metrics`` body (text format 0.0.4); ``admission``'s counts when given."""
    lines = [
        "# HELP anchorline_connected_clients Socket.IO clients connected now.",
        "# TYPE anchorline_connected_clients gauge",
        f"anchorline_connected_clients {m.connected_clients}",
        "# HELP anchorline_rooms Channels with at least one subscriber.",
        "# TYPE anchorline_rooms gauge",
        f"anchorline_rooms {rooms}",
        "# HELP anchorline_events_accepted_total Events stored and acknowledged.",
        "# TYPE anchorline_events_accepted_total counter",
        f"anchorline_events_accepted_total {m.events_accepted}",
        "# HELP anchorline_events_per_second Events accepted during the last second.",
        "# TYPE anchorline_events_per_second gauge",
        f"anchorline_events_per_second {m.events_per_second:.1f}",
        "# HELP anchorline_events_duplicate_total Events acknowledged as duplicates.",
        "# TYPE anchorline_events_duplicate_total counter",
        f"anchorline_events_duplicate_total {m.events_duplicate}",
        "# HELP anchorline_events_rejected_total Events refused, by error code.",
        "# TYPE anchorline_events_rejected_total counter",
    ]
    lines += [
        f'anchorline_events_rejected_total{{code="{code}"}} {n}'
        for code, n in sorted(m.events_rejected.items())
    ]
    lines += [
        "# HELP anchorline_deliveries_total Event and status packets written to subscribers.",
        "# TYPE anchorline_deliveries_total counter",
        f"anchorline_deliveries_total {m.deliveries}",
        "# HELP anchorline_slow_consumer_disconnects_total Clients dropped for not reading.",
        "# TYPE anchorline_slow_consumer_disconnects_total counter",
        f"anchorline_slow_consumer_disconnects_total {m.slow_consumer_disconnects}",
        "# HELP anchorline_commits_total Group commits of the event store.",
        "# TYPE anchorline_commits_total counter",
        f"anchorline_commits_total {m.commits}",
        "# HELP anchorline_commit_failures_total Group commits that failed (events refused).",
        "# TYPE anchorline_commit_failures_total counter",
        f"anchorline_commit_failures_total {m.commit_failures}",
        "# HELP anchorline_commit_queue_depth Events waiting for a commit.",
        "# TYPE anchorline_commit_queue_depth gauge",
        f"anchorline_commit_queue_depth {m.commit_queue_depth}",
        "# HELP anchorline_logins_total Successful logins.",
        "# TYPE anchorline_logins_total counter",
        f"anchorline_logins_total {m.logins}",
        "# HELP anchorline_login_refusals_total Refused logins, by error code.",
        "# TYPE anchorline_login_refusals_total counter",
    ]
    lines += [
        f'anchorline_login_refusals_total{{code="{code}"}} {n}'
        for code, n in sorted(m.login_refusals.items())
    ]
    if admission is not None:
        lines += [
            "# HELP anchorline_admission_refused_total Events refused as Overloaded (AL1607), "
            "by admission rule.",
            "# TYPE anchorline_admission_refused_total counter",
        ]
        lines += [
            f'anchorline_admission_refused_total{{rule="{rule}"}} {n}'
            for rule, n in sorted(admission.refused.items())
        ]
        lines += [
            "# HELP anchorline_admission_spared_total Events admitted while a wait or lag rule "
            "tripped, their identity being below its fair share.",
            "# TYPE anchorline_admission_spared_total counter",
            f"anchorline_admission_spared_total {admission.spared}",
        ]
    lines += _histogram(
        "anchorline_ack_latency_seconds",
        "From receiving an event to writing its acknowledgement.",
        m.ack_latency,
    )
    lines += _histogram(
        "anchorline_commit_latency_seconds", "Duration of one group commit.", m.commit_latency
    )
    for name, value in sorted((extra_gauges or {}).items()):
        lines += [f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n"
