#!/usr/bin/env bash
# down-all.sh - stop every loopback test SMTP server started by up-all.sh (each *-down.sh ends
# only the processes of its own instance, by PID). Stored mail and logs stay under /tmp for
# inspection; "down-all.sh --purge" deletes them too. gss-ntlmssp stays installed
# (remove it with gss-ntlmssp-setup.sh --remove). Safe to run when nothing is running.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rc=0
for s in smtp-sink aiosmtpd exim postfix; do
  bash "$HERE/$s-down.sh" "$@" || { echo "down-all: $s-down.sh failed" >&2; rc=1; }
done
exit $rc
