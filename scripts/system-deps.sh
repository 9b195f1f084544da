#!/usr/bin/env bash
# Debian packages the test suite drives for real: sshd and ssh-agent for the SSH
# showcase, tmux for the interactive session, dpkg-dev for `apt-get source`,
# haproxy and nginx in front of several `wassh relay` instances.
set -euo pipefail
need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-agent >/dev/null 2>&1 || need+=(openssh-client)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
