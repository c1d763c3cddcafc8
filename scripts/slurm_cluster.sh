#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (root, Debian 12, no systemd), for the tests.
#
#   bash scripts/slurm_cluster.sh start    # install if needed, configure, start; prints the SLURM_CONF line
#   bash scripts/slurm_cluster.sh stop     # cancel every job, then stop only the daemons it started
#   bash scripts/slurm_cluster.sh status
#
# munged, MariaDB, slurmdbd (job accounting: without it submitit waits forever on a killed job),
# slurmctld and slurmd run in the foreground of their own sessions with their PIDs recorded, all
# state under $WDBENCH_SLURM_DIR (default /tmp/wdbench-slurm), wiped at each start.
set -euo pipefail
dir=${WDBENCH_SLURM_DIR:-/tmp/wdbench-slurm}
conf=$dir/etc/slurm.conf
db_port=${WDBENCH_SLURM_DB_PORT:-3317}
host=$(hostname -s)

log() { echo "slurm_cluster: $*" >&2; }

install() {
  local missing=0
  for bin in munged mariadbd slurmdbd slurmctld slurmd sbatch sacct; do
    command -v "$bin" > /dev/null || missing=1
  done
  [ "$missing" = 0 ] && return
  log "installing slurm 22.05, munge, mariadb (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client slurmdbd munge mariadb-server > /dev/null
}

# run NAME CMD...: start a daemon in the foreground of its own session, record its PID
run() {
  local name=$1; shift
  setsid "$@" > "$dir/log/$name.out" 2>&1 < /dev/null &
  echo "$! $name" >> "$dir/pids"
}

wait_for() {  # wait_for WHAT SECONDS CMD...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq $((seconds * 4))); do "$@" > /dev/null 2>&1 && return 0; sleep 0.25; done
  log "timed out waiting for $what; logs in $dir/log"; tail -n 20 "$dir"/log/* >&2; return 1
}

stop() {
  [ -f "$dir/pids" ] || return 0
  # slurmd does not kill running job steps on SIGTERM: cancel the jobs first.
  if [ -f "$conf" ]; then
    SLURM_CONF=$conf scancel --full --quiet -u "$(id -un)" 2>/dev/null || true
    for _ in $(seq 40); do
      [ -z "$(SLURM_CONF=$conf squeue -h 2>/dev/null)" ] && break; sleep 0.25
    done
  fi
  tac "$dir/pids" | while read -r pid name; do
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$dir/pids"
  log "stopped"
}

start() {
  install
  stop
  rm -rf "$dir"
  mkdir -p "$dir"/{etc,log,state,spool,munge,mysql,run}
  chmod 755 "$dir" "$dir/munge"  # munged refuses a socket directory without o+x
  local sock=$dir/munge/munge.socket.2
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))

  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  run munged munged -F --force --socket="$sock" --key-file="$dir/munge/munge.key" \
    --log-file="$dir/log/munged.log" --pid-file="$dir/run/munged.pid" --seed-file="$dir/munge/seed"
  wait_for munged 10 test -S "$sock"

  mariadb-install-db --user=root --datadir="$dir/mysql" --auth-root-authentication-method=normal > "$dir/log/mysql-install.out" 2>&1
  run mariadbd mariadbd --no-defaults --user=root --datadir="$dir/mysql" --socket="$dir/run/mysqld.sock" \
    --port="$db_port" --bind-address=127.0.0.1 --pid-file="$dir/run/mysqld.pid" --skip-log-bin
  wait_for mariadb 30 mariadb --no-defaults -S "$dir/run/mysqld.sock" -u root -e "select 1"
  mariadb --no-defaults -S "$dir/run/mysqld.sock" -u root -e "
    create user 'slurm'@'127.0.0.1' identified by 'wdbench';
    grant all on slurm_acct_db.* to 'slurm'@'127.0.0.1';"

  cat > "$dir/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$sock
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=wdbench
StorageLoc=slurm_acct_db
PidFile=$dir/run/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
EOF
  chmod 600 "$dir/etc/slurmdbd.conf"  # slurmdbd refuses a world-readable config

  cat > "$conf" <<EOF
ClusterName=wdbench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire=10: a requeued job restarts in ~15 s instead of ~150 s
AuthInfo=socket=$sock,cred_expire=10
CryptoType=crypto/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# no cgroups here
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# without DefMemPerCPU every job takes the whole node and jobs run one at a time
DefMemPerCPU=1024
# without it an impossible request pends forever (and Hydra with it)
EnforcePartLimits=ALL
JobRequeue=1
MinJobAge=600
# job accounting: submitit needs it to see a cancelled or killed job
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# the munge socket for slurmdbd connections is taken from here, not from AuthInfo
AccountingStoragePass=$sock
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$conf
  run slurmdbd slurmdbd -D  # reads slurmdbd.conf beside $SLURM_CONF
  wait_for slurmdbd 30 sacctmgr -n list cluster
  sacctmgr -i add cluster wdbench > /dev/null
  run slurmctld slurmctld -D -i -f "$conf"
  wait_for slurmctld 30 scontrol ping
  run slurmd slurmd -D -f "$conf"
  wait_for "an idle node" 30 bash -c "sinfo -h -o %t | grep -q idle"
  log "up: $(sinfo -h -o '%P %D %t %c CPUs %m MB')"
  echo "export SLURM_CONF=$conf"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) [ -f "$dir/pids" ] && cat "$dir/pids" && SLURM_CONF=$conf sinfo || { log "not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
