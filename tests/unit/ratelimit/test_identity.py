from __future__ import annotations

from inferlab.ratelimit.identity import ClientAddress


def test_forwarded_for_is_ignored_from_untrusted_peers() -> None:
    assert ClientAddress([]).of("198.51.100.7", "203.0.113.9") == "198.51.100.7"
    assert ClientAddress(["10.0.0.0/8"]).of("198.51.100.7", "203.0.113.9") == "198.51.100.7"


def test_rightmost_untrusted_hop_is_the_client() -> None:
    proxies = ClientAddress(["10.0.0.0/8", "192.168.1.1/32"])
    assert proxies.of("10.0.0.5", "203.0.113.9") == "203.0.113.9"
    # the client forged a left-hand entry: the proxy appended the real one to the right
    assert proxies.of("10.0.0.5", "1.2.3.4, 203.0.113.9") == "203.0.113.9"
    assert proxies.of("10.0.0.5", "1.2.3.4, 203.0.113.9, 192.168.1.1") == "203.0.113.9"
    assert proxies.of("10.0.0.5", "garbage") == "10.0.0.5"

