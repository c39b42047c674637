#!/usr/bin/env bash
# Stop the single-node cluster started by .ci/start_slurm.sh (slurmd, slurmctld, munged); --purge also deletes their state.
set -uo pipefail

stop() {  # stop: PIDFILE NAME — by the pid the daemon wrote, then wait for it to exit
  local pidf="$1" name="$2" pid
  [ -f "$pidf" ] || return 0
  pid="$(cat "$pidf")"
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    echo "stop_slurm: stopped $name ($pid)" >&2
  fi
  rm -f "$pidf"
}

stop /run/slurm/slurmd.pid slurmd
stop /run/slurm/slurmctld.pid slurmctld
stop /run/munge/munged.pid munged
if [ "${1:-}" = "--purge" ]; then
  rm -rf /var/spool/slurmctld /var/spool/slurmd /run/slurm /run/munge /etc/slurm/slurm.conf "${OOC_SLURM_LOG_DIR:-/var/log/slurm}"
  echo "stop_slurm: state deleted" >&2
fi
