#!/usr/bin/env bash
# A one-node Slurm cluster on localhost for kiln's Slurm tests and for trying `--slurm` by hand:
# Debian's slurm-wlm and munge, the daemons started directly (no systemd). Idempotent: a
# cluster that already answers is left as it is. `start.sh stop` stops what it started.
#
#   bash tests/slurm/start.sh            # prints: export SLURM_CONF=…
#   export SLURM_CONF=/tmp/kiln-slurm/slurm.conf
#   bash tests/slurm/start.sh stop
#
# The configuration, state and logs live in $KILN_SLURM_DIR (default /tmp/kiln-slurm); the
# clients (sbatch, squeue, srun) find it through SLURM_CONF. Needs root (slurmd launches jobs).
set -euo pipefail

dir="${KILN_SLURM_DIR:-/tmp/kiln-slurm}"
conf="$dir/slurm.conf"
export SLURM_CONF="$conf"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    if running "$pidfile"; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    for _ in $(seq 50); do running "$pidfile" || break; sleep 0.1; done
    rm -f "$pidfile"
  done
  echo "slurm: stopped"
}

if [ "${1:-start}" = stop ]; then
  stop
  exit 0
fi

for tool in munged slurmctld slurmd sbatch scontrol; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "slurm: $tool is missing: apt-get install slurm-wlm munge" >&2
    exit 1
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm: the test cluster needs root (slurmd starts jobs as their user)" >&2
  exit 1
fi

if running "$dir/slurmctld.pid" && running "$dir/slurmd.pid" && scontrol ping >/dev/null 2>&1; then
  echo "export SLURM_CONF=$conf"
  exit 0
fi
stop >/dev/null

mkdir -p "$dir/state" "$dir/spool"

# munge: the key the package made, or a new one; the daemon runs as the munge user.
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --force >/dev/null
  chown munge:munge /etc/munge/munge.key
  chmod 600 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
runuser -u munge -- munged --pid-file=/run/munge/munged.pid
cp /run/munge/munged.pid "$dir/munged.pid"

# One node as slurmd sees it, one partition; nothing that needs systemd, cgroups or a database.
host="$(hostname -s)"
node="$(slurmd -C | head -n 1)"
cat >"$conf" <<EOF
# Written by kiln's tests/slurm/start.sh: a one-node cluster on localhost.
ClusterName=kiln-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
# Ended jobs stay visible to scontrol for an hour (their state: cancelled, timed out).
MinJobAge=3600
KillWait=10
InactiveLimit=0
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# UpTime is what slurmd -C reports of itself, not a node parameter.
sed -i 's/ UpTime=[^ ]*//' "$conf"

slurmctld -f "$conf"
slurmd -f "$conf"

for _ in $(seq 100); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "export SLURM_CONF=$conf"
    exit 0
  fi
  sleep 0.2
done
echo "slurm: the node did not come up; logs in $dir" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
exit 1
