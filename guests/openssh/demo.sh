#!/usr/bin/env bash
# The showcase: ssh.wasm (OpenSSH from Debian's source) runs a command on a local
# sshd through `wassh relay`. Builds ssh.wasm the first time. See demo.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python guests/openssh/demo.py "$@"
