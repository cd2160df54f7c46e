# lib.sh - helpers sourced by the build/servers scripts. Not a program.
# Provides: apt_install, pkg_missing, listening, port_busy_report, now, stop_by_pidfile, purge_state,
#   MAILPIPE_APT_OPTS. (Also sourced by the *-down.sh scripts that stop a process by its PID file.)
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

# stop_by_pidfile NAME PIDFILE CMDLINE_REGEX : stop the process whose PID is in PIDFILE, only if its
# command line matches CMDLINE_REGEX (a reused PID is never killed); TERM, then KILL after 5 s.
stop_by_pidfile() {
  local name=$1 pidfile=$2 pattern=$3 pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$pattern"; then
    kill "$pid"
    for _ in $(seq 1 50); do _alive "$pid" || break; sleep 0.1; done
    if _alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    echo "$name: stopped pid $pid"
  else
    echo "$name: not running"
  fi
  rm -f "$pidfile"
}

# A killed child of an exited shell may linger as a zombie until PID 1 reaps it: not alive.
_alive() { [[ -r /proc/$1/stat ]] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }

# purge_state NAME DIR : delete a server's state directory, only under /tmp, /var/tmp or /run.
purge_state() {
  case $2 in /tmp/?*|/var/tmp/?*|/run/?*) rm -rf "$2"; echo "$1: purged $2";; esac
}
