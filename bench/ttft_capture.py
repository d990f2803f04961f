"""Where a gateway's added time to first token goes, read off a loopback packet capture.

A stream's TTFT through a gateway is three legs: the way in (the client's request reaches the
gateway → the gateway's request leaves for the engine), the engine's (that request → the engine's
first event), and the way out (the engine's first event → the gateway's first event to the
client). The added TTFT is the way in plus the way out. The timestamps are the kernel's, taken as
each packet is sent, so nothing in the processes measured is changed or slowed.

Capture while ``bench/overhead.py`` runs the stream scenario (``tcpdump`` from Debian's package),
then read the capture:

    tcpdump -i lo -s 400 -w run.pcap 'tcp port 8100 or tcp port 8200 or tcp port 9001' &
    python bench/overhead.py --no-litellm --pin --scenarios stream --rounds 1 --features off
    kill -INT %1
    python bench/ttft_capture.py run.pcap --engine 9001 --gateway passthrough=8200 --gateway inferlab=8100

A request is matched across its two legs by the first characters of its prompt (the load
generator's prompts are unique within a round: ``Request-N: ...``), and each leg's end is the
first packet of its answer holding an event (``data:``), not its head.
"""

from __future__ import annotations

import argparse
import re
import statistics
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROMPT = re.compile(rb'"content":\s?"([^"]{20})')  # a request's key: its prompt's first 20 characters
PCAP_MICROSECONDS, PCAP_NANOSECONDS = 0xA1B2C3D4, 0xA1B23C4D
LINK_HEADER_BYTES = {1: 14, 113: 16, 276: 20, 101: 0}  # Ethernet (loopback), Linux cooked v1/v2, raw IP


@dataclass(frozen=True, slots=True)
class Segment:
    at: float  # seconds (the capture's clock)
    source_port: int
    destination_port: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Leg:
    sent: float  # the request's first packet
    answered: float  # the answer's first packet holding an event


def segments(path: Path) -> Iterator[Segment]:
    """The TCP segments with a payload in a classic pcap file of IPv4 traffic."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in (PCAP_MICROSECONDS, PCAP_NANOSECONDS):
        raise SystemExit(f"{path}: not a little-endian pcap file (write it with tcpdump -w)")
    scale = 1e9 if magic == PCAP_NANOSECONDS else 1e6
    link = struct.unpack("<I", data[20:24])[0]
    if link not in LINK_HEADER_BYTES:
        raise SystemExit(f"{path}: link type {link} is not one this reads (capture on lo)")
    skip = LINK_HEADER_BYTES[link]
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack("<IIII", data[offset:offset + 16])
        packet = data[offset + 16:offset + 16 + captured]
        offset += 16 + captured
        ip = packet[skip:]
        if not ip or ip[0] >> 4 != 4:
            continue
        tcp = ip[(ip[0] & 15) * 4:]
        source, destination = struct.unpack(">HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload:
            yield Segment(seconds + fraction / scale, source, destination, payload)


def legs(capture: list[Segment], port: int) -> dict[bytes, list[Leg]]:
    """Every streamed request to ``port``, by its prompt's key: when it was sent, when its first
    event came back. HTTP/1.1 keep-alive: one request at a time per connection."""
    found: dict[bytes, list[Leg]] = {}
    pending: dict[int, tuple[float, bytes | None]] = {}  # client port → (sent, key once seen)
    for segment in capture:
        if segment.destination_port == port:
            client = segment.source_port
            if segment.payload.startswith(b"POST "):
                pending[client] = (segment.at, None)
            sent, key = pending.get(client, (segment.at, b""))
            if key is None and (match := PROMPT.search(segment.payload)):
                pending[client] = (sent, match.group(1))
        elif segment.source_port == port and b"data:" in segment.payload:
            sent_key = pending.pop(segment.destination_port, None)
            if sent_key is not None and sent_key[1]:
                found.setdefault(sent_key[1], []).append(Leg(sent_key[0], segment.at))
    return found


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    n = len(ordered)
    return (f"p50 {ordered[n // 2]:7.1f}  mean {statistics.fmean(ordered):7.1f}  "
            f"p90 {ordered[int(n * 0.9)]:7.1f}  p99 {ordered[min(n - 1, int(n * 0.99))]:7.1f}")


def report(capture: list[Segment], name: str, gateway_port: int, engine: dict[bytes, list[Leg]]) -> None:
    way_in: list[float] = []
    engine_s: list[float] = []
    way_out: list[float] = []
    requests = legs(capture, gateway_port)
    for key, outer_legs in requests.items():
        outer = outer_legs[0]
        inner = next((leg for leg in engine.get(key, ()) if outer.sent <= leg.sent <= outer.answered), None)
        if inner is None:
            continue
        way_in.append((inner.sent - outer.sent) * 1e6)
        engine_s.append((inner.answered - inner.sent) * 1e6)
        way_out.append((outer.answered - inner.answered) * 1e6)
    if not way_in:
        print(f"{name}: no request matched on both legs (ports right? the stream scenario captured?)")
        return
    added = [a + b for a, b in zip(way_in, way_out, strict=True)]
    print(f"{name} (port {gateway_port}): {len(way_in)} of {len(requests)} requests matched, µs")
    for label, values in (("way in", way_in), ("engine", engine_s), ("way out", way_out), ("added", added)):
        print(f"  {label:8} {summary(values)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--engine", type=int, required=True, help="the engine's (simulator's) port")
    parser.add_argument("--gateway", action="append", required=True, metavar="NAME=PORT",
                        help="a gateway in front of that engine (repeat for each)")
    args = parser.parse_args()
    capture = list(segments(args.capture))
    engine = legs(capture, args.engine)
    for spec in args.gateway:
        name, _, port = spec.rpartition("=")
        report(capture, name or port, int(port), engine)


if __name__ == "__main__":
    main()
