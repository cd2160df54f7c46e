#!/usr/bin/env bash
# up-all.sh - install every Debian package the loopback test SMTP servers need, in ONE apt run,
# then start them all (as root; from any directory, also from a read-only copy):
#   Postfix   127.0.0.1:2525 (SMTP+STARTTLS), :4650 (implicit TLS), :5870 (submission)
#   Exim      127.0.0.1:2526       aiosmtpd  127.0.0.1:2527       smtp-sink 127.0.0.1:2528
# and install gss-ntlmssp (client side of AUTH NTLM from .NET). See README.md next to this file.
# Re-running restarts every server from a clean state. Stop them with down-all.sh.
# Env: MAILPIPE_SERVERS="postfix exim aiosmtpd smtp-sink" (default: all four) selects servers;
#      the port/path overrides of the single *-up.sh scripts apply.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

[[ $(id -u) == 0 ]] || { echo "up-all: must run as root (installs packages, starts servers)" >&2; exit 1; }

PACKAGES=(postfix sasl2-bin libsasl2-modules openssl python3-aiosmtpd libidn12 gss-ntlmssp swaks libnet-ssleay-perl)
read -r -a SERVERS <<<"${MAILPIPE_SERVERS:-postfix exim aiosmtpd smtp-sink}"

t0=$(now)
mapfile -t missing < <(pkg_missing "${PACKAGES[@]}")
if ((${#missing[@]})); then
  echo "up-all: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "up-all: packages ready in %.1fs\n", b-a }'

bash "$HERE/gss-ntlmssp-setup.sh"
for s in "${SERVERS[@]}"; do
  case $s in
    postfix|exim|aiosmtpd|smtp-sink) bash "$HERE/$s-up.sh" ;;
    *) echo "up-all: unknown server '$s' in MAILPIPE_SERVERS" >&2; exit 1 ;;
  esac
done
t2=$(now)
awk -v a="$t0" -v b="$t2" 'BEGIN { printf "up-all: all up in %.1fs\n", b-a }'
