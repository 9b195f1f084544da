#!/usr/bin/env bash
# Debian packages the test suite drives for real: sshd and ssh-agent for the SSH
# showcase, tmux for the interactive session, dpkg-dev for `apt-get source`,
# haproxy and nginx in front of several `wassh relay` instances, danted (SOCKS5)
# and tinyproxy (HTTP CONNECT) for the proxy transport, dnsmasq and dnsdist (DNS and
# DNS-over-HTTPS) for the DNS resolver, autoconf for configure scripts that run
# their test programs through wassh cc.
set -euo pipefail
need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-agent >/dev/null 2>&1 || need+=(openssh-client)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v autoconf >/dev/null 2>&1 || need+=(autoconf)  # configure scripts driving wassh cc
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v danted >/dev/null 2>&1 || [ -x /usr/sbin/danted ] || need+=(dante-server)
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || need+=(tinyproxy)
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v dnsdist >/dev/null 2>&1 || [ -x /usr/bin/dnsdist ] || need+=(dnsdist)
# The ported programs' peers and their native twins (the reference for output and exit codes)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v nc.traditional >/dev/null 2>&1 || need+=(netcat-traditional)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  # The tests start their own proxies and DNS servers: stop the system services installing
  # may have started.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for pkg in dante-server:danted tinyproxy:tinyproxy redis-server:redis-server dnsdist:dnsdist; do
      if printf '%s\n' "${need[@]}" | grep -qx "${pkg%%:*}"; then
        $SUDO systemctl disable --now "${pkg#*:}.service" >/dev/null 2>&1 || true
      fi
    done
  fi
fi
# danted checks SOCKS5 logins (RFC 1929) against system accounts: the proxy tests
# log in as this one. No password (a test sets a random one while it runs), no
# shell, no home, and expired, so nothing but danted ever accepts it.
if ! getent passwd wassh-proxy-test >/dev/null; then
  $SUDO useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment "wassh proxy tests" wassh-proxy-test
  $SUDO usermod --expiredate 1 wassh-proxy-test  # useradd sets no expiry on system users
fi
