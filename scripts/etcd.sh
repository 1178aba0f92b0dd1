#!/usr/bin/env bash
# Starts a throwaway single-member etcd on free loopback ports (Debian's
# etcd-server; installed if missing and this is root), with the limits a
# large cluster's batch needs, and prints one line:
#   etcd://127.0.0.1:PORT PID DATA_DIR
# Stop it with `kill PID` and remove DATA_DIR.
set -euo pipefail
if ! command -v etcd >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >/dev/null
  else
    echo "etcd is not installed: apt-get install etcd-server" >&2
    exit 1
  fi
fi
read -r client peer < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
data=$(mktemp -d "${TMPDIR:-/tmp}/hookhost-etcd.XXXXXX")
etcd --name local --data-dir "$data/data" \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "local=http://127.0.0.1:$peer" --initial-cluster-state new \
  --max-txn-ops 65536 --max-request-bytes 33554432 \
  --log-level warn --logger zap >"$data/etcd.log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 1000); do
  if curl -sf "http://127.0.0.1:$client/health" 2>/dev/null | grep -q '"health":"true"'; then
    echo "etcd://127.0.0.1:$client $pid $data"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.02
done
echo "etcd did not become healthy:" >&2
cat "$data/etcd.log" >&2
kill "$pid" 2>/dev/null || true
exit 1
