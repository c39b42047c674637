#!/usr/bin/env bash
# Start a single-node Slurm cluster (munged + slurmctld + slurmd) on this machine and wait until `srun hostname` answers.
#
# For CI and for developers who want to run the real-Slurm tests (tests/test_slurm_executor.py) locally:
#   sudo .ci/start_slurm.sh          # idempotent: returns at once when a cluster already answers
#   sudo .ci/stop_slurm.sh --purge   # stop the daemons and delete their state
# Needs Debian's slurm-wlm and munge packages (.ci/run installs them). No cgroups: ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none; no accounting daemon (AccountingStorageType=accounting_storage/none).
# Settings: OOC_SLURM_TIMEOUT (seconds to wait for `srun hostname`, default 60), OOC_SLURM_LOG_DIR (/var/log/slurm).
set -euo pipefail

TIMEOUT="${OOC_SLURM_TIMEOUT:-60}"
LOG_DIR="${OOC_SLURM_LOG_DIR:-/var/log/slurm}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
NODE="$(hostname -s)"

say() { echo "start_slurm: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

answers() { timeout 15 srun -N1 -n1 --time=1 hostname >/dev/null 2>&1; }

for tool in munged slurmctld slurmd srun sinfo; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: install Debian's slurm-wlm and munge packages (apt-get install -y --no-install-recommends slurm-wlm munge)"
done
[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): the daemons write /etc/slurm, /var/spool and /run"

if [ -f "$CONF" ] && answers; then
  say "a Slurm cluster already answers srun hostname ($(sinfo -h -o '%N %c CPUs' | head -1))"
  exit 0
fi

# --- munge: a key, its runtime folders, the daemon (as root it refuses to start without --force) ---
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
chown -R root:root /etc/munge /var/lib/munge /var/log/munge /run/munge  # munged runs as root here
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  pkill_pidfile() { [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null || true; rm -f "$1"; }
  pkill_pidfile /run/munge/munged.pid
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  munged --force --pid-file=/run/munge/munged.pid --log-file=/var/log/munge/munged.log
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
  munge -n | unmunge >/dev/null || die "munged does not answer; see /var/log/munge/munged.log"
fi

# --- slurm.conf: one node with this machine's name, CPUs and memory ---
read -r CPUS MEM < <(slurmd -C | awk '/^NodeName/ {for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]} print v["CPUs"], v["RealMemory"]}')
[ -n "${CPUS:-}" ] || CPUS="$(nproc)"
MEM=$(( ${MEM:-2048} * 9 / 10 ))  # leave some memory to the OS so the node is not drained for "low RealMemory"
mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd /run/slurm
cat > "$CONF.tmp" <<EOF
# Written by .ci/start_slurm.sh: a single-node cluster without cgroups or accounting (CI and local testing).
ClusterName=ooc-ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=60
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
mv "$CONF.tmp" "$CONF"

# --- the two daemons, in the background (stale ones from an older configuration are stopped first) ---
if command -v systemctl >/dev/null 2>&1; then  # a packaged service (real VMs) would hold the ports with its own config
  for unit in slurmctld slurmd; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then say "stopping the $unit service"; systemctl stop "$unit" || true; fi
  done
fi
for d in slurmctld slurmd; do
  pidf=/run/slurm/$d.pid
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then kill "$(cat "$pidf")" 2>/dev/null || true; sleep 1; fi
  rm -f "$pidf"
done
slurmctld -c -i   # -c: a clean start (no old job state); forks into the background
slurmd -c         # -c: clear old job/step state
t0=$(date +%s)
until answers; do
  if [ $(( $(date +%s) - t0 )) -ge "$TIMEOUT" ]; then
    say "srun hostname did not answer within ${TIMEOUT}s; last lines of the logs:"
    tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
    sinfo -R >&2 || true
    exit 1
  fi
  scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true  # a node left DOWN by an earlier run
  sleep 1
done
say "cluster up in $(( $(date +%s) - t0 ))s: $(sinfo -h -o '%P %N %c CPUs %m MB %t' | head -1)"
