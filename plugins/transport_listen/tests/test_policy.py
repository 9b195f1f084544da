"""The listen policy: loopback always; other addresses only as configured."""

from __future__ import annotations

import ipaddress
import logging

import pytest
from wassh import TransportConfig
from wassh_transport_listen import wassh_transport_offer
from wassh_transport_listen.policy import allowed, parse_allow


@pytest.mark.parametrize(
    ("entry", "address", "port"),
    [
        ("0.0.0.0", "0.0.0.0", None),
        ("0.0.0.0:8080", "0.0.0.0", 8080),
        ("::", "::", None),
        ("[::]", "::", None),
        ("[::]:22", "::", 22),
        ("192.0.2.7:0", "192.0.2.7", 0),
        (" 10.0.0.1 ", "10.0.0.1", None),
    ],
)
def test_parse_allow(entry: str, address: str, port: int | None) -> None:
    assert parse_allow(entry) == (ipaddress.ip_address(address), port)


@pytest.mark.parametrize("entry", ["", "example.com", "1.2.3.4:x", "1.2.3.4:70000", "[::", "[::]x"])
def test_parse_allow_rejects(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_allow(entry)


def test_loopback_is_always_allowed() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"):
        assert allowed([], host, 0)
        assert allowed([], host, 443)


def test_other_addresses_need_an_entry() -> None:
    assert not allowed([], "0.0.0.0", 0)
    assert not allowed([], "::", 8080)
    assert not allowed(["::"], "0.0.0.0", 8080)  # one family does not imply the other
    assert allowed(["0.0.0.0"], "0.0.0.0", 8080)
    assert allowed(["0.0.0.0:8080"], "0.0.0.0", 8080)
    assert not allowed(["0.0.0.0:8080"], "0.0.0.0", 8081)
    assert not allowed(["0.0.0.0"], "192.0.2.1", 80)  # the wildcard is not "every address"
    assert allowed(["[fe80::1]:22"], "fe80::1%eth0", 22)


def test_bad_entries_allow_nothing_and_the_offer_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert not allowed(["everything"], "0.0.0.0", 1)
    with caplog.at_level(logging.WARNING, logger="wassh.listen"):
        offers = wassh_transport_offer(TransportConfig(listen_allow=["everything", "::"]))
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring listen_allow entry 'everything': not ADDR or ADDR:PORT"
    ]
    assert [o.name for o in offers] == ["listen", "udp", "unix"]
