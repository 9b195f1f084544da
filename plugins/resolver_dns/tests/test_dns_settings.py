"""Settings: every key parsed and checked, bad values refused with one line, the offer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import wassh
from wassh import NAMES, TransportConfig
from wassh_resolver_dns import DnsResolver
from wassh_resolver_dns.settings import ResolverSettings, ResolverUrl, parse_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("dns://127.0.0.1", ResolverUrl("dns", "127.0.0.1", 53)),
        ("dns://127.0.0.1:5353", ResolverUrl("dns", "127.0.0.1", 5353)),
        ("DNS://[::1]:5353/", ResolverUrl("dns", "::1", 5353)),
        ("dns://[2001:db8::1]", ResolverUrl("dns", "2001:db8::1", 53)),
        ("https://dns.example", ResolverUrl("https", "dns.example", 443, "/dns-query")),
        ("https://Dns.Example:8443/q", ResolverUrl("https", "dns.example", 8443, "/q")),
        ("https://127.0.0.1/dns-query", ResolverUrl("https", "127.0.0.1", 443, "/dns-query")),
        ("https://[::1]:8443/a/b%20c", ResolverUrl("https", "::1", 8443, "/a/b%20c")),
    ],
)
def test_resolver_urls(url: str, expected: ResolverUrl) -> None:
    assert parse_url(url) == expected


def test_url_text_is_normalised() -> None:
    assert str(parse_url("dns://[::1]")) == "dns://[::1]:53"
    assert str(parse_url("https://dns.example")) == "https://dns.example:443/dns-query"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "expected dns://ADDRESS[:PORT]"),
        ("127.0.0.1", "expected dns://ADDRESS[:PORT]"),
        ("udp://127.0.0.1", "expected dns://ADDRESS[:PORT]"),
        ("tls://127.0.0.1", "expected dns://ADDRESS[:PORT]"),
        ("http://127.0.0.1/dns-query", "expected dns://ADDRESS[:PORT]"),
        ("dns://resolver.example", "dns:// takes an IP address"),
        ("dns://127.1", "is not an IP address"),
        ("https://1.2.3.4.5/", "is not an IP address"),
        ("dns://user@127.0.0.1", "no user name or password"),
        ("https://u:p@dns.example/dns-query", "no user name or password"),
        ("https://dns.example/dns-query?dns=x", "no query or fragment"),
        ("https://dns.example/dns-query#x", "no query or fragment"),
        ("dns://127.0.0.1:0", "bad port '0'"),
        ("dns://127.0.0.1:65536", "bad port '65536'"),
        ("dns://127.0.0.1:+53", "bad port '+53'"),
        ("dns://127.0.0.1:", "bad port ''"),
        ("dns://127.0.0.1/path", "dns:// has no path"),
        ("dns://::1", "write an IPv6 address in brackets"),
        ("dns://[::1", "expected [IPV6 ADDRESS]:PORT"),
        ("dns://[127.0.0.1]", "brackets are for IPv6 addresses"),
        ("dns://[fe80::1%25eth0]", "brackets are for IPv6 addresses"),
        ("https://:443/", "no host"),
        ("https://bad_host!/", "is not a host name"),
        ("https://dns.example./", "is not a host name"),
        ("https://d\u00efns.example/", "only ASCII"),
        ("https://dns.example/caf\u00e9", "only ASCII"),
        ("https://dns.example/a b", "spaces or control characters"),
        ("https://dns.example/a\nb", "spaces or control characters"),
        ("https://dns.example/a\\b", "bad path"),
        ("https://dns.example/%zz", "bad path"),
        ("https://dns.example/" + "a" * 3000, "too long"),
    ],
)
def test_bad_urls_are_one_line_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_url(url)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text and len(text) < 400


def test_defaults_and_every_key() -> None:
    plain = ResolverSettings.from_settings({"resolver": "dns://127.0.0.1"})
    assert (plain.timeout, plain.search, plain.ndots, plain.http, plain.ca) == (
        5.0,
        (),
        1,
        "auto",
        None,
    )
    given = ResolverSettings.from_settings(
        {
            "resolver": ["https://127.0.0.1:8443/q", "dns://[::1]:5353"],
            "ca": "/some/ca.pem",
            "timeout": "2.5",
            "search": ["Corp.Test.", "lab.test", "corp.test"],
            "ndots": "3",
            "http": "2",
        }
    )
    assert [str(r) for r in given.resolvers] == ["https://127.0.0.1:8443/q", "dns://[::1]:5353"]
    assert given.ca == Path("/some/ca.pem")
    assert (given.timeout, given.ndots, given.http) == (2.5, 3, "2")
    assert given.search == ("corp.test", "lab.test")  # lower case, no dot, no repeats
    # An embedder's values: numbers as numbers, one search domain as a text.
    embedded = ResolverSettings.from_settings(
        {"resolver": "dns://127.0.0.1", "timeout": 1, "ndots": 0, "search": "x.test"}
    )
    assert (embedded.timeout, embedded.ndots, embedded.search) == (1.0, 0, ("x.test",))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"resolver": "dns://127.0.0.1", "servers": "x"},
            "unknown dns resolver settings: 'servers'",
        ),
        ({"resolver": 53}, "expected text or a list, not int"),
        ({"resolver": ["dns://127.0.0.1", None]}, "expected non-empty text, not None"),
        ({"resolver": [""]}, "expected non-empty text"),
        ({"resolver": ["dns://127.0.0.1"] * 17}, "at most 16 resolvers"),
        ({"timeout": "5"}, "given without --resolver URL"),
        ({"resolver": "dns://127.0.0.1", "timeout": "0"}, "--resolver-timeout: '0'"),
        ({"resolver": "dns://127.0.0.1", "timeout": "-1"}, "--resolver-timeout"),
        ({"resolver": "dns://127.0.0.1", "timeout": "301"}, "at most 300"),
        ({"resolver": "dns://127.0.0.1", "timeout": "nan"}, "--resolver-timeout"),
        ({"resolver": "dns://127.0.0.1", "timeout": "inf"}, "--resolver-timeout"),
        ({"resolver": "dns://127.0.0.1", "timeout": "1e999"}, "--resolver-timeout"),
        ({"resolver": "dns://127.0.0.1", "timeout": "five"}, "expected a number"),
        ({"resolver": "dns://127.0.0.1", "timeout": "\u0665"}, "expected a number"),
        ({"resolver": "dns://127.0.0.1", "timeout": True}, "expected a number, not bool"),
        ({"resolver": "dns://127.0.0.1", "timeout": [5]}, "expected a number, not list"),
        ({"resolver": "dns://127.0.0.1", "ndots": "16"}, "expected 0 to 15"),
        ({"resolver": "dns://127.0.0.1", "ndots": "-1"}, "expected 0 to 15"),
        ({"resolver": "dns://127.0.0.1", "ndots": "1.5"}, "expected a number"),
        ({"resolver": "dns://127.0.0.1", "ndots": 1.5}, "expected a whole number"),
        ({"resolver": "dns://127.0.0.1", "search": "bad domain"}, "is not a domain name"),
        ({"resolver": "dns://127.0.0.1", "search": "a..b"}, "is not a domain name"),
        ({"resolver": "dns://127.0.0.1", "search": "x" * 64 + ".test"}, "is not a domain"),
        ({"resolver": "dns://127.0.0.1", "search": "\u00e9.test"}, "is not a domain name"),
        ({"resolver": "dns://127.0.0.1", "search": ["a.test"] * 33}, "at most 32 domains"),
        ({"resolver": "https://127.0.0.1/", "http": "3"}, "expected one of auto, 1.1, 2"),
        ({"resolver": "dns://127.0.0.1", "http": "2"}, "--resolver-http applies to https://"),
        ({"resolver": "dns://127.0.0.1", "ca": "/x.pem"}, "--resolver-ca applies to https://"),
        ({"resolver": "https://127.0.0.1/", "ca": 7}, "--resolver-ca: expected a file name"),
        ({"resolver": "https://127.0.0.1/", "ca": "a\0b"}, "--resolver-ca: expected a file"),
    ],
)
def test_bad_settings_are_one_line_errors(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        ResolverSettings.from_settings(given)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text and len(text) < 400


def test_ca_file_problems_are_found_at_offer_time(tmp_path: Path, ca_file: Path) -> None:
    (tmp_path / "empty.pem").write_text("")
    (tmp_path / "junk.pem").write_bytes(b"\x00\xff not a certificate")
    (tmp_path / "broken.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
    )
    unreadable = tmp_path / "unreadable.pem"
    unreadable.write_bytes(ca_file.read_bytes())
    unreadable.chmod(0)
    cases = {
        tmp_path / "missing.pem": "No such file or directory",
        tmp_path: "Is a directory",
        tmp_path / "empty.pem": "no PEM certificate in it",
        tmp_path / "junk.pem": "no PEM certificate in it",
        tmp_path / "broken.pem": "not a PEM CA bundle",
    }
    for path, message in cases.items():
        settings = {"resolver": "https://127.0.0.1:8443/dns-query", "ca": str(path)}
        with pytest.raises(ValueError, match=message):
            DnsResolver().wassh_transport_offer(TransportConfig(), settings)
    # The good file makes an offer.
    good = {"resolver": "https://127.0.0.1:8443/dns-query", "ca": str(ca_file)}
    assert DnsResolver().wassh_transport_offer(TransportConfig(), good).available


def test_without_a_resolver_the_offer_is_unavailable() -> None:
    offer = DnsResolver().wassh_transport_offer(TransportConfig(), {})
    assert (offer.name, offer.kinds, offer.rank) == ("dns", frozenset({NAMES}), 100)
    assert not offer.available and offer.reason == "no --resolver given"


def test_through_the_core_a_bad_setting_is_a_one_line_plugin_error() -> None:
    pm = wassh.make_plugin_manager(entry_points=False, plugins=[DnsResolver])
    config = TransportConfig(settings={"dns": {"resolver": ["dns://resolver.example"]}})
    with pytest.raises(wassh.PluginError) as caught:
        wassh.Transports(pm, config)
    text = str(caught.value)
    assert "plugin 'dns' cannot make its offer" in text and "dns:// takes an IP" in text
    assert "\n" not in text


def test_through_the_core_the_resolver_is_chosen_only_when_configured() -> None:
    pm = wassh.make_plugin_manager(entry_points=False, plugins=[DnsResolver])
    unconfigured = wassh.Transports(pm, TransportConfig())
    assert unconfigured.resolver("www.test", 0) is None  # names stay fake
    pm = wassh.make_plugin_manager(entry_points=False, plugins=[DnsResolver])
    config = TransportConfig(settings={"dns": {"resolver": "dns://127.0.0.1:5353"}})
    configured = wassh.Transports(pm, config)
    owner = configured.resolver("www.test", 0)
    assert owner is not None and owner.name == "dns"
    assert configured.ranking(NAMES) == ["dns"]


NO_HTTP_STACK = """
import sys
import dns._features
missing = sys.argv[1]
# As if that part of dnspython[doh] were not installed (dnspython asks its metadata first).
dns._features.force("doh", missing != "httpx2")
sys.modules[missing] = None
from wassh import TransportConfig
from wassh_resolver_dns import DnsResolver
plain = DnsResolver().wassh_transport_offer(TransportConfig(), {"resolver": "dns://127.0.0.1"})
print("plain", plain.available)
try:
    DnsResolver().wassh_transport_offer(
        TransportConfig(), {"resolver": ["dns://127.0.0.1", "https://127.0.0.1/dns-query"]}
    )
except Exception as exc:
    print("https", type(exc).__name__, exc)
"""


@pytest.mark.parametrize("missing", ["httpx2", "h2"])
def test_without_the_http_stack_an_https_resolver_fails_the_offer(missing: str) -> None:
    """Fail closed: never plain DNS in place of the DoH the user asked for."""
    r = subprocess.run(
        [sys.executable, "-c", NO_HTTP_STACK, missing], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    plain, https = r.stdout.splitlines()
    assert plain == "plain True"
    assert https.startswith("https RuntimeError https://127.0.0.1:443/dns-query needs ")
    assert "DNS-over-HTTPS support" in https and missing in https
