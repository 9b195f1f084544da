"""Settings, the two handshakes driven by hand, the deadline, the claim rule."""

from __future__ import annotations

import errno
import select
import socket
import time

import pytest
from wassh import STREAM, ConnectRequest, TransportConfig
from wassh_transport_proxy import ProxyTransport
from wassh_transport_proxy.protocol import (
    HEAD_LIMIT,
    Handshake,
    HandshakeError,
    Read,
    ReadHead,
    Send,
    Target,
    handshake,
    head_end,
    parse_head,
)
from wassh_transport_proxy.settings import ProxySettings, parse_url
from wassh_transport_proxy.transport import ProxyClaim, _literal
from wassh_transport_proxy.tunnel import in_family
from wassh_transport_proxy.waker import Waker, timer_fd

# -- settings ------------------------------------------------------------------------------


def test_url_with_percent_encoded_credentials_and_ipv6_host() -> None:
    s = parse_url("SOCKS5H://us%40er:p%3Ass%2Fw%20rd@[fd00::1]:1081/")
    assert (s.scheme, s.host, s.port) == ("socks5h", "fd00::1", 1081)
    assert (s.username, s.password) == ("us@er", "p:ss/w rd")
    assert str(s) == "socks5h://us%40er:***@[fd00::1]:1081"
    assert "p:ss" not in repr(str(s))


@pytest.mark.parametrize(
    ("url", "scheme", "port", "resolves_locally"),
    [
        ("socks5h://proxy.example", "socks5h", 1080, False),
        ("socks5://10.0.0.1", "socks5", 1080, True),
        ("http://proxy.example:3128", "http", 3128, False),
    ],
)
def test_schemes_and_default_ports(
    url: str, scheme: str, port: int, resolves_locally: bool
) -> None:
    s = parse_url(url)
    assert (s.scheme, s.port, s.resolves_locally, s.username) == (
        scheme,
        port,
        resolves_locally,
        None,
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "expected socks5h://HOST:PORT"),
        ("proxy:1080", "expected socks5h://HOST:PORT"),
        ("socks4://h:1080", "SOCKS4 is not supported"),
        ("socks://h:1080", "write socks5h://"),
        ("https://h:443", "TLS to the proxy is not supported"),
        ("http://h", "give the HTTP proxy's port"),
        ("socks5h://h:0", "bad port '0' (1 to 65535)"),
        ("socks5h://h:65536", "bad port '65536'"),
        ("socks5h://h:x", "bad port 'x'"),
        ("socks5h://h:+80", "bad port '+80'"),
        ("socks5h://::1:1080", "write an IPv6 address in brackets"),
        ("socks5h://[::1:1080", "expected [IPV6 ADDRESS]:PORT"),
        ("socks5h://u:pa/ss@h:1080", "percent-encode"),
        ("socks5h://h:1080/path", "no path"),
        ("socks5h://h:1080?q=1", "no path, query"),
        ("socks5h://:1080", "no host"),
        ("socks5h://bad_host!:1080", "is not a host name"),
        ("socks5h://[proxy]:1080", "brackets"),
        ("socks5h://h :1080", "spaces or control characters"),
        ("socks5h://:pw@h:1080", "empty user name"),
        ("socks5h://u:@h:1080", "1 to 255 bytes"),
        (f"socks5h://{'u' * 256}:pw@h:1080", "1 to 255 bytes"),
        ("http://a%3Ab:pw@h:8080", "forbids ':'"),
        ("http://u:p%0Aw@h:8080", "control characters"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_url(url)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "url", ["ftp://user:hunter2@h:21", "socks5h://user:hun/ter2@h:1080", "http://user:hunter2@h"]
)
def test_the_password_never_shows_in_an_error(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_url(url)
    assert "ter2" not in str(caught.value) and "user:***@h" in str(caught.value)


def test_settings_from_an_embedder() -> None:
    s = ProxySettings.from_settings(
        {
            "url": "http://h:8080",
            "username": "a b",
            "password": "c:d",
            "bypass": "*.lan, 10.0.0.0/8",
        }
    )
    assert (s.username, s.password, s.bypass) == ("a b", "c:d", ("*.lan", "10.0.0.0/8"))
    for bad, message in [
        ({"url": "http://h:1", "user": "x"}, "unknown proxy settings: user"),
        ({"url": 5}, "no proxy URL given"),
        ({"bypass": ["*.lan"]}, "--proxy-bypass alone"),
        ({"url": "http://h:1", "password": "x"}, "needs a user name"),
        ({"url": "http://h:1", "bypass": ["[::1"]}, "'[' without ']'"),
        ({"url": "http://h:1", "bypass": 7}, "expected patterns"),
    ]:
        with pytest.raises(ValueError) as caught:
            ProxySettings.from_settings(bad)
        assert message in str(caught.value), (bad, caught.value)


def test_offer_without_settings_is_unavailable_and_with_them_ranks_500() -> None:
    transport = ProxyTransport()
    offer = transport.wassh_transport_offer(TransportConfig(), {})
    assert not offer.available and "--proxy URL" in offer.reason
    offer = transport.wassh_transport_offer(TransportConfig(), {"url": "socks5h://h:1"})
    assert offer.available and offer.rank == 500 and offer.kinds == {STREAM}
    assert not offer.checks_addresses  # names go to the proxy: the core checks the name
    offer = ProxyTransport().wassh_transport_offer(TransportConfig(), {"url": "socks5://h:1"})
    assert offer.checks_addresses  # resolved with wassh.resolve, which checks each address


def test_bypass_claim() -> None:
    claim = ProxyClaim(
        ProxySettings.from_settings(
            {"url": "http://h:1", "bypass": ["*.lan", "10.0.0.0/8:22"]}
        ).bypass_policy()
    )

    def takes(host: str, port: int = 22, family: int = socket.AF_INET) -> bool:
        return claim(ConnectRequest(kind=STREAM, family=family, host=host, port=port))

    assert not takes("nas.lan") and not takes("a.b.lan") and not takes("10.1.2.3")
    assert takes("lan") and takes("10.1.2.3", 80) and takes("example.com")
    assert ProxyClaim(None)(ConnectRequest(kind=STREAM, family=socket.AF_INET6, host="x", port=1))


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("example.com", None),
        ("deadbeef.example", None),
    ],
)
def test_numeric_hosts_go_as_addresses(host: str, literal: str | None) -> None:
    # What the policy reads as an address must reach the proxy as that address.
    assert _literal(host) == literal


def test_local_name_in_the_guest_socket_family() -> None:
    assert in_family("127.0.0.1", 5, socket.AF_INET6) == ("::ffff:127.0.0.1", 5)
    assert in_family("::ffff:127.0.0.1", 5, socket.AF_INET) == ("127.0.0.1", 5)
    assert in_family("::1", 5, socket.AF_INET) is None
    assert in_family("::1", 5, socket.AF_INET6) == ("::1", 5)


# -- the handshakes, driven by hand ------------------------------------------------------------


def drive(steps: Handshake, replies: list[bytes], bound: object = None) -> list[bytes]:
    """Run a handshake against ``replies`` (one per read); returns what it sent.

    ``bound``: the address the handshake must end with (SOCKS5's BND).
    """
    sent: list[bytes] = []
    replies = list(replies)  # the caller's list (a test parameter) stays as it was
    op = next(steps)
    while True:
        if isinstance(op, Send):
            sent.append(op.data)
            value = b""
        else:
            assert isinstance(op, Read | ReadHead)
            value = replies.pop(0)
            if isinstance(op, Read):
                assert len(value) == op.size, (op, value)
        try:
            op = steps.send(value)
        except StopIteration as done:
            assert not replies, replies
            assert done.value == bound
            return sent


def test_socks5_connect_by_name_without_auth() -> None:
    steps = handshake("socks5h", Target("example.com", 443), None, None)
    replies = [b"\x05\x00", b"\x05\x00", b"\x00\x01\x0a", b"\x00\x00\x01\x04\x38"]
    sent = drive(steps, replies, bound=("10.0.0.1", 1080))
    assert sent == [b"\x05\x01\x00", b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"]


def test_socks5_connect_with_login_and_a_name_in_the_reply() -> None:
    steps = handshake("socks5h", Target("::1", 22), "ü", "pw")
    sent = drive(steps, [b"\x05\x02", b"\x01\x00", b"\x05\x00", b"\x00\x03\x03", b"lan\x00\x16"])
    # A BND.ADDR given as a name says nothing usable: None.
    assert sent == [
        b"\x05\x02\x00\x02",
        b"\x01\x02\xc3\xbc\x02pw",
        b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x00\x16",
    ]


@pytest.mark.parametrize(
    ("replies", "code"),
    [
        ([b"\x04\x00"], errno.EPROTO),
        ([b"\x05\x02"], errno.EPROTO),  # user/password not offered
        ([b"\x05\xff"], errno.EACCES),
        ([b"\x05\x00", b"\x05\x02"], errno.EACCES),
        ([b"\x05\x00", b"\x05\x03"], errno.ENETUNREACH),
        ([b"\x05\x00", b"\x05\x04"], errno.EHOSTUNREACH),
        ([b"\x05\x00", b"\x05\x05"], errno.ECONNREFUSED),
        ([b"\x05\x00", b"\x05\x06"], errno.ETIMEDOUT),
        ([b"\x05\x00", b"\x05\x09"], errno.EIO),
        ([b"\x05\x00", b"\x00\x00"], errno.EPROTO),
        ([b"\x05\x00", b"\x05\x00", b"\x00\x02\x00"], errno.EPROTO),
    ],
)
def test_socks5_failures(replies: list[bytes], code: int) -> None:
    with pytest.raises(HandshakeError) as caught:
        drive(handshake("socks5h", Target("10.0.0.1", 1), None, None), replies)
    assert caught.value.errno == code


def test_socks5_login_refused() -> None:
    with pytest.raises(HandshakeError) as caught:
        drive(handshake("socks5", Target("10.0.0.1", 1), "u", "p"), [b"\x05\x02", b"\x01\x01"])
    assert caught.value.errno == errno.EACCES and "RFC 1929 status 1" in str(caught.value)


def test_a_name_socks5_cannot_carry_fails_before_sending() -> None:
    with pytest.raises(HandshakeError) as caught:
        handshake("socks5h", Target("a" * 256, 1), None, None)
    assert caught.value.errno == errno.EINVAL


def test_http_connect_request() -> None:
    sent = drive(
        handshake("http", Target("2001:db8::1", 22), "Aladdin", "open sesame"),
        [b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n"],
    )
    assert sent == [
        b"CONNECT [2001:db8::1]:22 HTTP/1.1\r\nHost: [2001:db8::1]:22\r\n"
        b"Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
    ]


@pytest.mark.parametrize(
    ("head", "code", "text"),
    [
        (
            b"HTTP/1.1 407 Proxy Auth\r\nProxy-Authenticate: Basic realm=x\r\n\r\n",
            errno.EACCES,
            "offers Basic",
        ),
        (b"HTTP/1.0 401 Unauthorized\r\n\r\n", errno.EACCES, "wants authentication"),
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", errno.EACCES, "refused this destination"),
        (b"HTTP/1.1 500 Unable to connect\r\n\r\n", errno.ECONNREFUSED, "could not connect"),
        (b"HTTP/1.1 503\r\n\r\n", errno.ECONNREFUSED, "(503)"),
        (b"HTTP/1.1 504 Gateway Timeout\r\n\r\n", errno.ETIMEDOUT, "timed out"),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", errno.ECONNREFUSED, "refused the tunnel"),
        (b"HTTP/2 200\r\n\r\n", errno.EPROTO, "not an HTTP response"),
        (b"HTTP/1.1 20 OK\r\n\r\n", errno.EPROTO, "not an HTTP response"),
        (b"\x00\x01\x02\r\n\r\n", errno.EPROTO, "not an HTTP response from the proxy: '???'"),
    ],
)
def test_http_refusals(head: bytes, code: int, text: str) -> None:
    with pytest.raises(HandshakeError) as caught:
        drive(handshake("http", Target("h", 1), None, None), [head])
    assert caught.value.errno == code
    assert text in str(caught.value)


def test_http_interim_responses_share_the_head_budget() -> None:
    steps = handshake("http", Target("h", 1), None, None)
    op = next(steps)
    op = next(steps)
    assert op == ReadHead(HEAD_LIMIT)
    interim = b"HTTP/1.1 100 Continue\r\n" + b"X: " + b"y" * 1000 + b"\r\n\r\n"
    op = steps.send(interim)
    assert op == ReadHead(HEAD_LIMIT - len(interim))
    with pytest.raises(StopIteration):
        steps.send(b"HTTP/1.1 299 Fine\r\n\r\n")


def test_parse_head_fields() -> None:
    status, reason, fields = parse_head(
        b"HTTP/1.1 407 Who\r\nProxy-Authenticate: Negotiate\r\nproxy-authenticate: Basic r=1\r\n"
        b"Bad Name: x\r\n\r\n"
    )
    assert (status, reason) == (407, "Who")
    assert fields == {"proxy-authenticate": ["Negotiate", "Basic r=1"]}


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\nrest", 19),
        (b"HTTP/1.1 200 OK\n\nrest", 17),
        (b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", 25),
        (b"HTTP/1.1 200 OK\r\nA: b\r\n", None),
        (b"HTTP/1.1 200 OK\r\n\r", None),
    ],
)
def test_head_end(data: bytes, end: int | None) -> None:
    assert head_end(data) == end


# -- the deadline ---------------------------------------------------------------------------


def test_timer_fd_fires_once_due() -> None:
    fd = timer_fd(0.2)
    assert fd is not None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        assert poller.poll(0) == []
        started = time.monotonic()
        assert poller.poll(2000) == [(fd, select.POLLIN)]
        assert 0.15 < time.monotonic() - started < 1.5
    finally:
        import os

        os.close(fd)


def test_waker_is_ready_for_the_socket_or_the_deadline() -> None:
    a, b = socket.socketpair()
    with a, b:
        waker = Waker(a, select.EPOLLIN, 0.3)
        try:
            poller = select.poll()
            poller.register(waker.fileno(), select.POLLIN)
            assert poller.poll(0) == []
            waker.watch(a, select.EPOLLOUT)  # room to send: ready at once
            assert poller.poll(0) == [(waker.fileno(), select.POLLIN)]
            waker.watch(a, select.EPOLLIN)
            assert poller.poll(0) == []
            b.send(b"x")
            assert poller.poll(0) == [(waker.fileno(), select.POLLIN)]
            a.recv(1)
            started = time.monotonic()
            assert poller.poll(3000) == [(waker.fileno(), select.POLLIN)]  # the deadline
            assert time.monotonic() - started < 1.5
        finally:
            waker.close()
