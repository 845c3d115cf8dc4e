#!/usr/bin/env bash
# `make cluster-test`: the no-Docker on-prem cluster path, end to end, on this machine (run as root).
# A throwaway user stands in for the cluster machine, reached over ssh on 127.0.0.1 only; sweeps/cluster-onprem-venv.yaml
# is used as shipped but for its address, user and key. ray up, ray submit (smoke profile), ray rsync-down of the
# database, one row per config, ray down; then everything started here is stopped and removed.
set -euo pipefail
cd "$(dirname "$0")/.."
RAY=${RAY:-.venv/bin/ray}
PYTHON=${PYTHON:-.venv/bin/python}
NODE_USER=ebgan-cluster-test
WORK=$(mktemp -d /tmp/ebgan-cluster-test.XXXXXX)
SSHD_PID=""
say() { echo "[cluster-test] $*"; }

cleanup() {
  set +e
  if [ -f "$WORK/cluster.yaml" ]; then "$RAY" down -y "$WORK/cluster.yaml" >/dev/null 2>&1; fi
  pkill -KILL -u "$NODE_USER" 2>/dev/null
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
  id "$NODE_USER" >/dev/null 2>&1 && userdel -r "$NODE_USER" >/dev/null 2>&1
  rm -rf "$WORK"
  say "stopped sshd, removed $NODE_USER and $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "error: make cluster-test needs root (it adds a user and starts sshd); fix: run it as root" >&2; exit 2; }
if ! command -v /usr/sbin/sshd >/dev/null || ! command -v rsync >/dev/null; then
  say "installing openssh-server and rsync from Debian"
  apt-get install -y -q openssh-server rsync >/dev/null
fi

say "node: user $NODE_USER on 127.0.0.1, sshd with its own config (127.0.0.1:22 only)"
useradd --create-home --shell /bin/bash "$NODE_USER"
usermod -p '*' "$NODE_USER"  # no password, yet not locked: sshd refuses locked accounts even with a key
ssh-keygen -q -t ed25519 -N "" -f "$WORK/id_ed25519"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/host_key"
install -d -m 700 -o "$NODE_USER" -g "$NODE_USER" "/home/$NODE_USER/.ssh"
install -m 600 -o "$NODE_USER" -g "$NODE_USER" "$WORK/id_ed25519.pub" "/home/$NODE_USER/.ssh/authorized_keys"
mkdir -p /run/sshd
cat > "$WORK/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port 22
HostKey $WORK/host_key
PidFile $WORK/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $NODE_USER
CONFIG
/usr/sbin/sshd -f "$WORK/sshd_config"
sleep 1
SSHD_PID=$(cat "$WORK/sshd.pid")

"$PYTHON" -m sweeps.cluster_check config "$WORK" "$NODE_USER"

started=$(date +%s)
say "ray up"
"$RAY" up -y --no-config-cache "$WORK/cluster.yaml"
say "ray up took $(( $(date +%s) - started )) s; ray submit (smoke profile)"
started=$(date +%s)
"$RAY" submit "$WORK/cluster.yaml" sweeps/mnist_grid.py -- --grid all --profile smoke --address auto \
  --db "sqlite:////home/$NODE_USER/cluster-test.sqlite"
say "ray submit took $(( $(date +%s) - started )) s; ray rsync-down of the database"
"$RAY" rsync-down "$WORK/cluster.yaml" "/home/$NODE_USER/cluster-test.sqlite" "$WORK/cluster-test.sqlite"
"$PYTHON" -m sweeps.cluster_check fetched "$WORK/cluster-test.sqlite"
say "ray down"
"$RAY" down -y "$WORK/cluster.yaml"
rm -f "$WORK/cluster.yaml"
say "passed"
