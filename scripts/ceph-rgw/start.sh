#!/usr/bin/env bash
# Starts a real, independent S3 server on loopback for the tests and the demo: Ceph's RADOS
# Gateway from Debian's packages, on a single-node cluster that lives in one data folder (one
# monitor, one manager, one OSD keeping its objects in memory, a pool size of 1), with a user of
# known keys and one bucket. Nothing is installed as a service, nothing listens off loopback, and
# `stop.sh` stops exactly the processes this started, by the PIDs it records.
#
# Usage: scripts/ceph-rgw/start.sh [DATA_DIR] [S3_PORT]
#   DATA_DIR  where the cluster lives (default: ${TMPDIR:-/tmp}/s3x-ceph-rgw). Wiped first: a
#             cluster an earlier run left there is stopped (by its recorded PIDs), then every file
#             in it is removed. Objects live in the OSD's memory, so a restart starts empty.
#   S3_PORT   the gateway's port on 127.0.0.1 (default: a free one).
# Environment: MEMSTORE_BYTES, the most the OSD may hold in memory (default 12 GiB; it only takes
#   what is written).
#
# Prints, as its last line on stdout (and writes to DATA_DIR/env), the variables the tests, the
# demo and S3ExchangeStore.fromEnv() read:
#   S3_ENDPOINT_URL=http://127.0.0.1:PORT S3_AWS_ACCESS_KEY_ID=… S3_AWS_SECRET_ACCESS_KEY=… S3_REGION=us-east-1 S3_BUCKET=s3x-test
# Takes about 20 seconds. Exit status 1 with a message on stderr when the packages are missing and
# cannot be installed (not root, no apt-get) or when a daemon does not come up; whatever was started
# by then is stopped.
#
# Packages (Debian 12 bookworm, Ceph 16.2 "Pacific"; installed with apt-get when missing and we are
# root): ceph-mon ceph-osd ceph-mgr radosgw ceph-common, and curl (7.75 or later, for
# --aws-sigv4), python3 (to find free ports) and uuid-runtime (uuidgen).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${1:-${TMPDIR:-/tmp}/s3x-ceph-rgw}"
S3_PORT="${2:-}"
# The credentials and bucket are fixed: this server is a test fixture on loopback, not a secret.
ACCESS_KEY="s3xaccesskey"
SECRET_KEY="s3xsecretkey0123456789"
REGION="us-east-1"
BUCKET="s3x-test"
MEMSTORE_BYTES="${MEMSTORE_BYTES:-$((12 * 1024 * 1024 * 1024))}"

log() { echo "[ceph-rgw start] $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------- packages
# Each command, and the Debian package that provides it.
missing=()
for pair in ceph-mon:ceph-mon ceph-osd:ceph-osd ceph-mgr:ceph-mgr radosgw:radosgw radosgw-admin:radosgw \
  ceph:ceph-common ceph-authtool:ceph-common monmaptool:ceph-common \
  curl:curl python3:python3 uuidgen:uuid-runtime setsid:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  how="install them (Debian/Ubuntu: apt-get install ${missing[*]}) or point the tests at another S3 server with S3_ENDPOINT_URL"
  [[ "$(id -u)" == 0 ]] || die "missing packages: ${missing[*]}; not root, so they cannot be installed here: $how"
  command -v apt-get >/dev/null 2>&1 || die "missing packages: ${missing[*]}; no apt-get on this machine: $how"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Try the package lists as they are first; update them only when that fails.
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; } ||
    die "apt-get could not install ${missing[*]}: $how"
fi
# curl checks that --aws-sigv4 exists (7.75+): the bucket is created with it.
curl --help all 2>/dev/null | grep -q -- '--aws-sigv4' || die "curl $(curl --version | awk 'NR==1{print $2}') has no --aws-sigv4 (needs 7.75 or later)"

# ------------------------------------------------------------------------------ a clean data folder
mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
case "$DATA" in / | /tmp | /root | /home | /usr | /var | /etc | "$HOME") die "refusing to wipe $DATA: give a folder of its own" ;; esac
if [[ -f "$DATA/pids" ]]; then
  log "stopping the cluster an earlier run left in $DATA"
  "$HERE/stop.sh" "$DATA" >&2 || true
fi
find "$DATA" -mindepth 1 -delete
mkdir -p "$DATA"/{log,run,crash,mon.a,mgr.x,osd.0,rgw.gw}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MON_PORT="$(free_port)"
[[ -n "$S3_PORT" ]] || S3_PORT="$(free_port)"
FSID="$(uuidgen)"
CONF="$DATA/ceph.conf"

# ------------------------------------------------------------------------------------ configuration
# What each group is for:
# - every path under DATA (keyring, logs, admin sockets, pid files, crash dumps), so two clusters on
#   one machine never share a file, and nothing goes to /var or /etc;
# - monitor and daemons bound to 127.0.0.1, messenger v2 only, no IPv6;
# - one OSD: pools of size 1 (min size 1) allowed and not warned about, CRUSH choosing among OSDs
#   rather than hosts, few placement groups, no autoscaler, and a high PG-per-OSD ceiling (RGW
#   creates about eight pools at first use);
# - no warning for a nearly full disk (the mon's store is tiny; a shared /tmp may be full-ish);
# - memstore: the OSD keeps objects in memory, up to MEMSTORE_BYTES (no disk, no device to set up);
#   the largest RADOS object 128 MiB (RGW stripes S3 objects into 4 MiB pieces anyway);
# - the gateway: beast frontend on 127.0.0.1:S3_PORT, and 128 threads (the default 512 costs
#   memory for nothing on 2 cores).
cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DATA/keyring
log file = $DATA/log/\$name.log
mon cluster log file = $DATA/log/cluster.log
admin socket = $DATA/run/\$name.asok
run dir = $DATA/run
pid file = $DATA/run/\$name.pid
crash dir = $DATA/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon allow pool delete = true
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd max object size = 134217728

[mon.a]
mon data = $DATA/mon.a

[mgr.x]
mgr data = $DATA/mgr.x

[osd.0]
osd data = $DATA/osd.0

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw data = $DATA/rgw.gw
rgw thread pool size = 128
EOF

# ------------------------------------------------------------------------------------------- keys
# One keyring for every daemon and the admin, each with the capabilities its role needs.
KEYRING="$DATA/keyring"
ceph-authtool --create-keyring "$KEYRING" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
ceph-authtool "$KEYRING" --gen-key -n client.rgw.gw --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null

CEPH=(ceph -c "$CONF" --connect-timeout 10)

# --------------------------------------------------------------------------------------- daemons
# Each daemon runs in the foreground (-f) of a session of its own (setsid), in the background of
# this script, with its PID recorded in DATA/pids ("name pid" per line) for stop.sh.
: >"$DATA/pids"
spawn() { # NAME COMMAND...
  local name="$1"
  shift
  setsid "$@" </dev/null >>"$DATA/log/$name.out" 2>&1 &
  echo "$name $!" >>"$DATA/pids"
  log "started $name (pid $!)"
}
on_error() {
  log "failed; the daemons' logs are in $DATA/log; stopping what was started"
  "$HERE/stop.sh" "$DATA" >&2 || true
}
trap on_error ERR

wait_for() { # SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds, at most SECONDS
  local seconds="$1" what="$2"
  shift 2
  local end=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || { log "timed out after ${seconds}s waiting for $what"; return 1; }
    sleep 1
  done
}

# Monitor: a monmap of one, the store made, then started.
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DATA/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DATA/monmap" --keyring "$KEYRING" >"$DATA/log/mon.a.mkfs" 2>&1
spawn mon.a ceph-mon -c "$CONF" -f -i a
wait_for 60 "the monitor" "${CEPH[@]}" mon stat

# Manager: RGW does not need it, but without one the cluster reports no PG states.
spawn mgr.x ceph-mgr -c "$CONF" -f -i x

# OSD: registered with the monitor (it must get id 0, the one the config names), made, started.
OSD_UUID="$(uuidgen)"
OSD_ID="$("${CEPH[@]}" osd new "$OSD_UUID")"
[[ "$OSD_ID" == 0 ]] || { log "the monitor gave the OSD id $OSD_ID, not 0"; false; }
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$DATA/log/osd.0.mkfs" 2>&1
spawn osd.0 ceph-osd -c "$CONF" -f -i 0
osd_up() { "${CEPH[@]}" osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
wait_for 90 "the OSD" osd_up

# Gateway: it creates its pools on start, then answers anonymous GET / with 200.
spawn rgw.gw radosgw -c "$CONF" -f -n client.rgw.gw
rgw_up() { curl -sf -o /dev/null "http://127.0.0.1:$S3_PORT/"; }
wait_for 120 "the RADOS Gateway on 127.0.0.1:$S3_PORT" rgw_up

# ----------------------------------------------------------------------------- user and bucket
radosgw-admin -c "$CONF" user create --uid=s3x --display-name="s3exchange tests" \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DATA/log/user.json" 2>>"$DATA/log/radosgw-admin.err"

# The gateway checks signatures: the bucket is created with a SigV4-signed request. RGW wants
# x-amz-content-sha256 signed, which curl 7.88 does not add, hence the header (body-less requests
# only: the hash of the empty string).
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3curl() {
  curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" -H "x-amz-content-sha256: $EMPTY_SHA256" "$@"
}
bucket_created() {
  [[ "$(s3curl -o "$DATA/log/create-bucket.xml" -w '%{http_code}' -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET")" == 200 ]]
}
# The user is not visible to the gateway at once: retry until the signed request is accepted.
wait_for 60 "bucket $BUCKET to be created" bucket_created
bucket_lists() { [[ "$(s3curl -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/$BUCKET?list-type=2")" == 200 ]]; }
wait_for 30 "bucket $BUCKET to answer" bucket_lists

trap - ERR
ENV_LINE="S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT S3_AWS_ACCESS_KEY_ID=$ACCESS_KEY S3_AWS_SECRET_ACCESS_KEY=$SECRET_KEY S3_REGION=$REGION S3_BUCKET=$BUCKET"
echo "$ENV_LINE" >"$DATA/env"
log "Ceph $(ceph-osd --version | awk '{print $3}') RADOS Gateway ready on http://127.0.0.1:$S3_PORT (data: $DATA; stop: scripts/ceph-rgw/stop.sh $DATA)"
echo "$ENV_LINE"
