#!/usr/bin/env bash
# Stops exactly the processes scripts/ceph-rgw/start.sh started in DATA_DIR, by the PIDs it
# recorded in DATA_DIR/pids, never by name. A PID is signalled only while its command line still
# names DATA_DIR's ceph.conf, so a PID the system has since given to another process is left alone.
# Gateway first, monitor last (the reverse of the start order); TERM, then KILL after 10 seconds.
#
# Usage: scripts/ceph-rgw/stop.sh [DATA_DIR] [--remove]
#   DATA_DIR  as given to start.sh (default: ${TMPDIR:-/tmp}/s3x-ceph-rgw)
#   --remove  also delete DATA_DIR once everything has stopped
set -uo pipefail

DATA="${1:-${TMPDIR:-/tmp}/s3x-ceph-rgw}"
REMOVE="${2:-}"
log() { echo "[ceph-rgw stop] $*" >&2; }
[[ -d "$DATA" ]] || { log "no $DATA: nothing to stop"; exit 0; }
DATA="$(cd "$DATA" && pwd)"
PIDS="$DATA/pids"

ours() { # PID: is it still a process of this cluster?
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$DATA/ceph.conf"
}

if [[ -f "$PIDS" ]]; then
  mapfile -t entries < <(tac "$PIDS")
  for entry in "${entries[@]}"; do
    name="${entry%% *}"
    pid="${entry##* }"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    if ! ours "$pid"; then
      log "$name (pid $pid) is not running"
      continue
    fi
    kill -TERM "$pid" 2>/dev/null && log "sent TERM to $name (pid $pid)"
    for _ in $(seq 1 40); do
      ours "$pid" || break
      sleep 0.25
    done
    if ours "$pid"; then kill -KILL "$pid" 2>/dev/null && log "sent KILL to $name (pid $pid)"; fi
  done
  # KILLed processes take a moment to go.
  for entry in "${entries[@]}"; do
    pid="${entry##* }"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    for _ in $(seq 1 20); do
      ours "$pid" || break
      sleep 0.25
    done
    ours "$pid" && log "warning: pid $pid is still running"
  done
  rm -f "$PIDS"
  log "stopped the cluster in $DATA"
else
  log "no $PIDS: nothing to stop"
fi

if [[ "$REMOVE" == --remove ]]; then
  case "$DATA" in / | /tmp | /root | /home | /usr | /var | /etc | "$HOME") log "refusing to remove $DATA" ;; *) rm -rf "$DATA" && log "removed $DATA" ;; esac
fi
