# lib.sh - helpers sourced by the build/servers/*-up.sh scripts. Not a program.
# Provides: apt_install, pkg_missing, listening, port_busy_report, now, MAILPIPE_APT_OPTS.
# shellcheck shell=bash

# Options for every apt-get run: wait for another apt/dpkg instead of failing on the lock.
MAILPIPE_APT_OPTS=(-o DPkg::Lock::Timeout=300)

# apt_install PKG... : apt-get update + install (no recommends), quiet; apt's output is shown
# only if it fails. Preseeds postfix "No configuration" so that installing postfix writes no
# /etc/postfix/main.cf and starts nothing (on any image, with or without policy-rc.d).
apt_install() {
  local log rc=0
  log=$(mktemp)
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  { DEBIAN_FRONTEND=noninteractive apt-get -q "${MAILPIPE_APT_OPTS[@]}" update &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${MAILPIPE_APT_OPTS[@]}" "$@"; } </dev/null >"$log" 2>&1 || rc=$?
  ((rc == 0)) || cat "$log" >&2
  rm -f "$log"
  return $rc
}

# pkg_missing PKG... : print the packages that are not installed (one a line).
pkg_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
  done
  return 0
}

# listening PORT : true if something accepts connections on 127.0.0.1:PORT.
listening() {
  if command -v ss >/dev/null; then ss -Hltn "sport = :$1" | grep -q .
  else (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; fi
}

# port_busy_report NAME PORT : error message naming the owner of PORT (if ss can tell).
port_busy_report() {
  echo "$1: port $2 is already in use:" >&2
  if command -v ss >/dev/null; then ss -ltnp "sport = :$2" >&2 || true; fi
}

now() { date +%s.%N; }
