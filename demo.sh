#!/usr/bin/env bash
# The demo: a three-node ZooKeeper ensemble's hooks, run as each node through
# `hookhost hook run`, each node with its own directory, in the sandbox the
# engine uses. Then the destroy guard, and two hooks that attack the sandbox.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Setting up: the wasm32-wasip2 target, the hook components, the hookhost binary"
rustup target add wasm32-wasip2
target=${CARGO_TARGET_DIR:-target}
cargo build --release --target wasm32-wasip2 --manifest-path example-plugins/Cargo.toml --target-dir "$target/guests"
cargo build -p hookhost
hookhost="$target/debug/hookhost"
guests="$target/guests/wasm32-wasip2/release"
zk="$guests/zookeeper_hooks.wasm"
cluster=example-plugins/zookeeper/fixtures/cluster.json
nodes="$target/demo/nodes"
rm -rf "$nodes"

step "What the ZooKeeper component implements"
"$hookhost" inspect "$zk"

step "Rendering zoo.cfg as cln-zk1 (the confd equivalent)"
"$hookhost" hook render --plugin "$zk" --metadata "$cluster" --node cln-zk1 --workdir "$nodes/cln-zk1"

for service in init start health_check; do
  for node in cln-zk1 cln-zk2 cln-zk3; do
    step "$service on $node"
    "$hookhost" hook run --plugin "$zk" --service "$service" --metadata "$cluster" --node "$node" \
      --operation create-cluster --workdir "$nodes/$node"
  done
done
for node in cln-zk1 cln-zk2 cln-zk3; do
  printf '%s: myid=%s state=%s\n' "$node" "$(cat "$nodes/$node/data/zookeeper/myid")" \
    "$(cat "$nodes/$node/data/zookeeper/state")"
done

step "cln-zk3 takes transactions; deleting the whole cluster must refuse (exit 1)"
mkdir -p "$nodes/cln-zk3/data/zookeeper/version-2"
echo txn > "$nodes/cln-zk3/data/zookeeper/version-2/log.100000001"
if "$hookhost" hook run --plugin "$zk" --service destroy --metadata "$cluster" --node cln-zk3 \
  --operation delete-cluster --workdir "$nodes/cln-zk3"; then
  echo "expected the destroy guard to refuse" >&2
  exit 1
fi

step "Deleting only cln-zk3 while cln-zk1 and cln-zk2 stay: the data survives, destroy allows it"
"$hookhost" hook run --plugin "$zk" --service destroy --metadata example-plugins/zookeeper/fixtures/deleting-zk3.json \
  --node cln-zk3 --operation delete-nodes --workdir "$nodes/cln-zk3"

step "A hostile hook loops forever: stopped at its 0.5 s timeout (exit 1)"
"$hookhost" hook run --plugin "$guests/hostile_hooks.wasm" --service spin --metadata "$cluster" --node cln-zk1 \
  --timeout 0.5 --workdir "$nodes/cln-zk1" || true

step "A hostile hook reads /etc/passwd and another tenant's metadata: denied (exit 1)"
"$hookhost" hook run --plugin "$guests/hostile_hooks.wasm" --service read-passwd --metadata "$cluster" --node cln-zk1 \
  --workdir "$nodes/cln-zk1" || true
"$hookhost" hook run --plugin "$guests/hostile_hooks.wasm" --service other-cluster --params '{"cluster": "cl-other"}' \
  --metadata "$cluster" --metadata tests/fixtures/neighbour.json --node cln-zk1 --workdir "$nodes/cln-zk1" || true

step "Done: the nodes' directories are in $nodes"
