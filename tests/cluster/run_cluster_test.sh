#!/usr/bin/env bash
# One-node SLURM cluster on localhost, the tiny pipeline through `--profile profiles/slurm`, outputs
# compared with a local run. Installs Debian's slurmctld/slurmd/munge when missing (root or sudo);
# everything it starts is stopped on exit. Job status comes from `squeue` (no accounting database):
# MinJobAge is raised so finished jobs stay visible, and SLURM's job-completion log (jobcomp/filetxt)
# is the record that the jobs really ran through SLURM.
#   usage: tests/cluster/run_cluster_test.sh [WORKDIR]     (make test-cluster)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV_BIN=$REPO/.venv/bin
WORK=${1:-$(mktemp -d /tmp/bayeslift-cluster.XXXXXX)}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
CONF_DIR=/etc/slurm
STATE=$WORK/slurm-state
JOBCOMP=$WORK/slurm-jobcomp.log
START=$(date +%s)
log() { echo "[cluster-test $(( $(date +%s) - START ))s] $*"; }

# ---------------------------------------------------------------- install (skipped when present)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! command -v sbatch >/dev/null; then
  log "installing slurmctld slurmd slurm-client munge"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge
fi
"$VENV_BIN/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null || \
  "$VENV_BIN/pip" install -q "$(grep '^snakemake-executor-plugin-slurm==' "$REPO/requirements.txt")" \
                             "$(grep '^snakemake-executor-plugin-slurm-jobstep==' "$REPO/requirements.txt")"

# ---------------------------------------------------------------- configure
mkdir -p "$WORK" "$STATE/ctld" "$STATE/d"
CPUS=$(nproc)
MEM=$(( $(free -m | awk '/^Mem:/ {print $2}') - 1024 ))   # leave 1 GiB to the OS
USER_NAME=$(id -un)
$SUDO mkdir -p "$CONF_DIR"
# A site's own slurm.conf is kept aside and put back; one an earlier run of this script left is not kept.
[ -f "$CONF_DIR/slurm.conf" ] && [ ! -f "$CONF_DIR/slurm.conf.bayeslift-backup" ] && \
  ! grep -q '^# Written by bayeslift' "$CONF_DIR/slurm.conf" && \
  $SUDO cp "$CONF_DIR/slurm.conf" "$CONF_DIR/slurm.conf.bayeslift-backup"
$SUDO tee "$CONF_DIR/slurm.conf" >/dev/null <<EOF
# Written by bayeslift tests/cluster/run_cluster_test.sh: a one-node test cluster.
ClusterName=bayeslift
SlurmctldHost=localhost
SlurmUser=$USER_NAME
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=900
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
NodeName=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
[ -f "$CONF_DIR/cgroup.conf" ] || echo "CgroupPlugin=autodetect" | $SUDO tee "$CONF_DIR/cgroup.conf" >/dev/null

# ---------------------------------------------------------------- start, with a trap that stops
MUNGE_STARTED=""
cleanup() {
  set +e
  log "stopping slurmd, slurmctld${MUNGE_STARTED:+, munged}"
  for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    [ -f "$pidfile" ] && $SUDO kill "$(cat "$pidfile")" 2>/dev/null
  done
  [ -n "$MUNGE_STARTED" ] && [ -f /run/munge/munged.pid ] && $SUDO kill "$(cat /run/munge/munged.pid)" 2>/dev/null
  sleep 1
  # Left in place, this slurm.conf names a controller that is gone: every later snakemake start then waits
  # 10 s (its slurm plugin asks `scontrol show config` on import, which retries the dead controller).
  if [ -f "$CONF_DIR/slurm.conf.bayeslift-backup" ]; then
    $SUDO mv "$CONF_DIR/slurm.conf.bayeslift-backup" "$CONF_DIR/slurm.conf"
  else
    $SUDO rm -f "$CONF_DIR/slurm.conf"
  fi
}
trap cleanup EXIT

if ! pgrep -x munged >/dev/null; then
  [ -s /etc/munge/munge.key ] || $SUDO /usr/sbin/mungekey --create --force 2>/dev/null || \
    { $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
  $SUDO chown munge:munge /etc/munge/munge.key && $SUDO chmod 400 /etc/munge/munge.key
  $SUDO mkdir -p /run/munge && $SUDO chown munge:munge /run/munge
  if [ -n "$SUDO" ]; then sudo -u munge /usr/sbin/munged; else runuser -u munge -- /usr/sbin/munged; fi
  MUNGE_STARTED=1
fi
munge -n | unmunge >/dev/null
log "munge ok"
$SUDO slurmctld -i      # -i: ignore state files of an earlier test cluster
$SUDO slurmd
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)' && break
  sleep 1
done
sinfo
sinfo -h -o %T | grep -Eq '^(idle|mixed|allocated)' || { echo "node never became idle"; tail -20 "$WORK"/slurm*.log; exit 1; }
log "cluster up: $CPUS CPUs, ${MEM} MB"

# ---------------------------------------------------------------- run: SLURM, then local
SMK=("$VENV_BIN/snakemake" -s "$REPO/Snakefile" --configfile "$REPO/config/test.yaml")
export PATH=$VENV_BIN:$PATH
mkdir -p "$WORK/slurm-run" "$WORK/local-run"
log "pipeline through SLURM (profile profiles/slurm)"
( cd "$WORK/slurm-run" && "${SMK[@]}" --directory "$WORK/slurm-run" --profile "$REPO/profiles/slurm" \
    --slurm-status-command squeue --slurm-no-account --slurm-init-seconds-before-status-checks 5 \
    --jobs 4 ) > "$WORK/slurm-run.out" 2>&1 || { tail -60 "$WORK/slurm-run.out"; exit 1; }
log "pipeline locally"
( cd "$WORK/local-run" && "${SMK[@]}" --directory "$WORK/local-run" --cores 2 ) > "$WORK/local-run.out" 2>&1 \
  || { tail -60 "$WORK/local-run.out"; exit 1; }

# ---------------------------------------------------------------- check
N_JOBS=$(grep -c "JobState=COMPLETED" "$JOBCOMP" || true)
# Every job Snakemake submitted must be a COMPLETED record in SLURM's own log, chains included.
SUBMITTED=$(grep -o "submitted with SLURM jobid [0-9]*" "$WORK/slurm-run.out" | awk '{print $NF}')
for id in $SUBMITTED; do
  grep -q "^JobId=$id .*JobState=COMPLETED" "$JOBCOMP" || { echo "SLURM has no completed record of job $id"; exit 1; }
done
N_CHAINS=$(grep -c "slurm_logs/rule_bayesian_chain/" "$WORK/slurm-run.out" || true)
log "SLURM job-completion log: $N_JOBS completed jobs, $(echo $SUBMITTED | wc -w) submitted ($N_CHAINS bayesian_chain)"
[ "$N_JOBS" -ge 10 ] || { echo "expected >= 10 SLURM jobs in $JOBCOMP"; cat "$JOBCOMP"; exit 1; }
[ "$N_CHAINS" -eq 2 ] || { echo "expected 2 bayesian_chain jobs through SLURM, saw $N_CHAINS"; exit 1; }
grep -q "JobState=FAILED" "$JOBCOMP" && { echo "failed SLURM jobs:"; grep FAILED "$JOBCOMP"; exit 1; }
for f in uplift_predictions.csv counterfactuals/uplift_summary.csv counterfactuals/ate.json \
         model/diagnostics_parameters.csv; do
  cmp "$WORK/slurm-run/results/$f" "$WORK/local-run/results/$f" || { echo "DIFFERENT: $f"; exit 1; }
done
log "PASS: SLURM outputs identical to the local run (work dir $WORK); took $(( $(date +%s) - START )) s"
