#!/usr/bin/env bash
# The demo: a real lifecycle of a three-node ZooKeeper ensemble on the
# embedded store — register the app's version 1.0, create, stop, start, add
# two nodes, delete the leader (refused by the app), delete two followers,
# resize, a rolling upgrade to version 2.0 (leader last), a backup, delete
# (refused by the destroy guard, then forced), a restore from the backup — with each operation's hook timeline; then
# hooks that attack the sandbox. Everything lives under target/demo; with
# HOOKHOST_STORE=etcd://host:port/namespace the clusters, operations and
# metadata live in that etcd instead (hookhost is then built with its etcd feature).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Runs a command that must fail as a hook failure (exit 1), not as bad input (exit 2).
refused() {
  local code=0
  "$@" || code=$?
  if [ "$code" -ne 1 ]; then
    echo "expected the hook to be refused (exit 1), got exit $code" >&2
    exit 1
  fi
}

step "Setting up: the wasm32-wasip2 target, the hook components, the hookhost binary"
rustup target add wasm32-wasip2
target=${CARGO_TARGET_DIR:-target}
cargo build --release --target wasm32-wasip2 --manifest-path example-plugins/Cargo.toml --target-dir "$target/guests"
cargo build -p hookhost ${HOOKHOST_STORE:+--features etcd}
guests="$target/guests/wasm32-wasip2/release"
demo="$target/demo"
rm -rf "$demo"
mkdir -p "$demo/app" "$demo/app-v2"
# An app is its spec beside its components; version 2.0 is another directory.
cp example-plugins/zookeeper/spec.json "$guests/zookeeper_hooks.wasm" "$demo/app/"
cp "$guests/zookeeper_v2_hooks.wasm" "$demo/app-v2/"
cp example-plugins/zookeeper/spec-v2.json "$demo/app-v2/spec.json"
hookhost() { "$target/debug/hookhost" --state-dir "$demo/state" "$@"; }
# The id in the first JSON line hookhost printed (keys are sorted, so "id" is there verbatim).
first_id() { head -n 1 | sed -n 's/.*"id":"\([^"]*\)".*/\1/p'; }
last_op() { hookhost op list --json | tail -n 1 | first_id; }

step "Checking the app: its spec and its component"
hookhost app validate "$demo/app/spec.json"

step "The plan of creating it (nothing runs)"
hookhost plan create "$demo/app/spec.json"

step "Registering the app as zookeeper 1.0 (its spec and component, immutable)"
hookhost app add "$demo/app" --app zookeeper --version 1.0

step "Creating the cluster from zookeeper 1.0"
hookhost cluster create --app zookeeper --version 1.0 --name zk-demo
cluster=$(hookhost cluster list --json | first_id)
hookhost op show "$(last_op)"

step "What the nodes hold: zoo.cfg rendered from /hosts, myid from /host/sid"
hookhost cluster show "$cluster"
for node in "$demo/state/nodes/$cluster"/*; do
  printf '%s: myid=%s\n' "$(basename "$node")" "$(cat "$node/volume/zookeeper/myid")"
done
cat "$(ls -d "$demo/state/nodes/$cluster"/* | head -n 1)/instance/opt/zookeeper/conf/zoo.cfg"

step "Stopping it: stop by order, instances gone, volumes kept"
hookhost cluster stop "$cluster"
hookhost cluster show "$cluster" | sed -n '4,8p'

step "Starting it again: new instance ids, config re-rendered, start by order (no init)"
hookhost cluster start "$cluster"
hookhost op show "$(last_op)" | tail -n 9

step "Adding two nodes: new nodes under /adding-hosts, init/start on them, scale_out on the others"
hookhost cluster add-nodes "$cluster" --role zk_node --count 2
hookhost op show "$(last_op)" | tail -n 12
# The node of a sid, from the table `cluster show` prints (NODE ROLE INSTANCE IP SID).
node_of_sid() { hookhost cluster show "$cluster" | awk -v sid="$1" '$2 == "zk_node" && $5 == sid { print $1 }'; }
grep '^server\.' "$demo/state/nodes/$cluster/$(node_of_sid 1)/instance/opt/zookeeper/conf/zoo.cfg"

step "Deleting the leader (the highest sid): the app's scale_in pre-check refuses, nothing changes (exit 1)"
refused hookhost cluster delete-nodes "$cluster" --nodes "$(node_of_sid 5)"

step "Deleting two followers: /deleting-hosts, destroy (the guard), scale_in on the others, stop, resources gone"
hookhost cluster delete-nodes "$cluster" --nodes "$(node_of_sid 1),$(node_of_sid 2)"
grep '^server\.' "$demo/state/nodes/$cluster/$(node_of_sid 3)/instance/opt/zookeeper/conf/zoo.cfg"

step "Resizing the role: one node after another (vertical_scaling_policy sequential): stop, resize, start"
hookhost cluster resize "$cluster" --role zk_node --cpu 2 --memory 4096
hookhost cluster metadata "$cluster" /hosts | grep -E '/(cpu|memory) '

step "Version 2.0: zoo.cfg purges old snapshots, upgrade migrates the data format, the leader goes last"
hookhost app add "$demo/app-v2" --app zookeeper --version 2.0
hookhost app list

step "Rolling upgrade to 2.0 (upgrading_policy sequential): one node at a time, in get_nodes_order's order"
hookhost plan upgrade "$cluster" --version 2.0 | sed -n '1,12p'
hookhost cluster upgrade "$cluster" --version 2.0
hookhost op show "$(last_op)" | tail -n 16
hookhost cluster show "$cluster" | sed -n '1,3p'
grep '^autopurge' "$demo/state/nodes/$cluster/$(node_of_sid 3)/instance/opt/zookeeper/conf/zoo.cfg"
echo "data format on the leader: $(cat "$demo/state/nodes/$cluster/$(node_of_sid 5)/volume/zookeeper/format")"

step "Backing the ensemble up (backup_policy device): find_leader names the leader, its backup hook snapshots the server, every volume is copied with checksums"
hookhost cluster backup "$cluster" --name before-delete
backup=$(hookhost backup list --json | tail -n 1 | first_id)
hookhost backup show "$backup"

step "A node took transactions: deleting the cluster would lose them, so destroy refuses (exit 1)"
node=$(ls "$demo/state/nodes/$cluster" | head -n 1)
mkdir -p "$demo/state/nodes/$cluster/$node/volume/zookeeper/version-2"
echo txn > "$demo/state/nodes/$cluster/$node/volume/zookeeper/version-2/log.100000001"
if hookhost cluster delete "$cluster"; then
  echo "expected the destroy guard to refuse" >&2
  exit 1
fi
hookhost cluster show "$cluster" | head -n 1

step "Forcing the deletion (the spec's allow_force permits it)"
hookhost cluster delete "$cluster" --force
hookhost op show "$(last_op)"

step "Restoring the backup: a new cluster of the same version, sids and env; every volume checked and copied back; restore on each node"
hookhost cluster restore "$backup" --name zk-restored
restored=$(hookhost cluster list --json | tail -n 1 | first_id)
hookhost op show "$(last_op)" | tail -n 6
node=$(ls "$demo/state/nodes/$restored" | head -n 1)
echo "restored data format: $(cat "$demo/state/nodes/$restored/$node/volume/zookeeper/format"), myid: $(cat "$demo/state/nodes/$restored/$node/volume/zookeeper/myid")"
hookhost cluster delete "$restored" --force > /dev/null

step "Hostile hooks, sandboxed: a loop stopped at 0.5 s, /etc/passwd and another tenant's metadata out of reach"
fixture=example-plugins/zookeeper/fixtures/cluster.json
mkdir -p "$demo/hostile"
refused hookhost hook run --plugin "$guests/hostile_hooks.wasm" --service spin --metadata "$fixture" --node cln-zk1 \
  --timeout 0.5 --workdir "$demo/hostile"
refused hookhost hook run --plugin "$guests/hostile_hooks.wasm" --service read-passwd --metadata "$fixture" --node cln-zk1 \
  --workdir "$demo/hostile"
refused hookhost hook run --plugin "$guests/hostile_hooks.wasm" --service other-cluster --params '{"cluster": "cl-other"}' \
  --metadata "$fixture" --metadata tests/fixtures/neighbour.json --node cln-zk1 --workdir "$demo/hostile"

if [ -n "${HOOKHOST_STORE:-}" ]; then
  step "Done: clusters, operations and metadata are in $HOOKHOST_STORE; nodes and images in $demo/state"
else
  step "Done: the state (store, nodes, images) is in $demo/state"
fi
