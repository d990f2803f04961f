"""What communication between devices costs: all-reduce, all-to-all and stage hand-offs.

The usual latency-bandwidth model over one :class:`~inferlab.planning.specs.Interconnect`:
a collective over ``r`` ranks takes ``ceil(log2 r)`` latency steps (tree/recursive halving for small
messages) plus its bytes over the link (ring all-reduce moves ``2 (r-1)/r`` of the message per
device, all-to-all ``(r-1)/r``). Decode messages are small (``tokens x hidden x 2`` bytes), so the
latency term dominates; prefill messages are large, so the bandwidth term does. Ranks beyond one
node (``node_devices``) talk over the catalogue's network link.
"""

from __future__ import annotations

import math

from inferlab.planning.catalogue import Catalogue
from inferlab.planning.deployment import Deployment
from inferlab.planning.specs import Interconnect

#: The network link between nodes (catalogue ``interconnects``).
NETWORK_LINK = "network-ib-400g"


def link_for(catalogue: Catalogue, d: Deployment, ranks: int) -> Interconnect | None:
    """The link ``ranks`` devices of the deployment share (None: a single device, nothing to send)."""
    if ranks <= 1:
        return None
    acc = d.accelerator
    if ranks <= acc.node_devices and acc.interconnect is not None:
        return acc.interconnect
    return catalogue.interconnect(NETWORK_LINK)


def _steps(ranks: int) -> int:
    return math.ceil(math.log2(ranks))


def all_reduce_s(link: Interconnect | None, ranks: int, message_bytes: float) -> float:
    if link is None or ranks <= 1:
        return 0.0
    return link.latency_s * _steps(ranks) + 2 * (ranks - 1) / ranks * message_bytes / (link.bandwidth_gbps * 1e9)


def all_to_all_s(link: Interconnect | None, ranks: int, message_bytes: float) -> float:
    if link is None or ranks <= 1:
        return 0.0
    return link.latency_s * _steps(ranks) + (ranks - 1) / ranks * message_bytes / (link.bandwidth_gbps * 1e9)


def send_s(link: Interconnect | None, message_bytes: float) -> float:
    if link is None:
        return 0.0
    return link.latency_s + message_bytes / (link.bandwidth_gbps * 1e9)
