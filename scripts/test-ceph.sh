#!/usr/bin/env bash
# `npx pnpm@10 test:ceph`: the demo and the whole test suite against a real, independent S3 server,
# Ceph RADOS Gateway, started for this run (scripts/ceph-rgw/start.sh) in a fresh folder on a free
# loopback port, and stopped when the run ends: on success, on failure, and on Ctrl-C or TERM.
#
# The server is reached the way a user reaches theirs, through S3_ENDPOINT_URL,
# S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION and S3_BUCKET. Both the demo and the
# suite run even when the first fails; the exit status is non-zero when either failed, or when the
# server could not be started (missing packages that cannot be installed included: this never skips).
#
# Usage: npx pnpm@10 test:ceph [vitest arguments…]   e.g. `npx pnpm@10 test:ceph packages/core`
# Environment: CEPH_DATA_DIR (default: a new folder under ${TMPDIR:-/tmp}, removed afterwards),
#   CEPH_S3_PORT (default: a free port), MEMSTORE_BYTES (see start.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "[test:ceph] $*" >&2; }

if [[ -n "${CEPH_DATA_DIR:-}" ]]; then
  DATA="$CEPH_DATA_DIR"
  REMOVE=""
else
  DATA="$(mktemp -d "${TMPDIR:-/tmp}/s3x-ceph-rgw.XXXXXX")"
  REMOVE="--remove"
fi

# Each step runs in a session of its own (setsid), so that on an interrupt its whole process group
# (npx, pnpm, node, vitest's workers) is stopped by its PID, then the server.
child=""
run() {
  setsid "$@" &
  child=$!
  wait "$child"
  local rc=$?
  child=""
  return $rc
}
stopped=""
finish() {
  if [[ -n "$child" ]]; then kill -TERM -- "-$child" 2>/dev/null && wait "$child" 2>/dev/null; fi
  [[ -n "$stopped" ]] && return
  stopped=1
  scripts/ceph-rgw/stop.sh "$DATA" $REMOVE
}
trap finish EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

started_at=$SECONDS
if ! env_line="$(scripts/ceph-rgw/start.sh "$DATA" "${CEPH_S3_PORT:-}")"; then
  log "FAILED: could not start Ceph RGW (see the messages above); nothing was tested"
  exit 1
fi
env_line="$(tail -n 1 <<<"$env_line")"
# The line is NAME=value pairs without spaces in the values.
for pair in $env_line; do
  [[ "$pair" =~ ^S3_[A-Z_]+=[^[:space:]]*$ ]] || { log "FAILED: unexpected output from start.sh: $env_line"; exit 1; }
  export "${pair?}"
done
log "Ceph RGW at $S3_ENDPOINT_URL (bucket $S3_BUCKET), up in $((SECONDS - started_at)) s"

status=0
demo_started=$SECONDS
if run npx pnpm@10 demo; then demo="passed"; else demo="FAILED"; status=1; fi
demo="$demo in $((SECONDS - demo_started)) s"

suite_started=$SECONDS
# `pnpm test` is `tsc -b && vitest run`; extra arguments go to vitest.
if run npx pnpm@10 test "$@"; then suite="passed"; else suite="FAILED"; status=1; fi
suite="$suite in $((SECONDS - suite_started)) s"

log "Ceph RGW: demo $demo; test suite $suite"
exit $status
