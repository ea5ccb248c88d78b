#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (loopback only), for the project's SLURM tests and for CI.
#
#   sudo bash tools/slurm/cluster.sh up       # install if needed, configure, start; prints one line "OK ..."
#   sudo bash tools/slurm/cluster.sh down     # stop the daemons that `up` started (and nothing else)
#        bash tools/slurm/cluster.sh status   # which daemons run, the node's state; exit 0 when it takes jobs
#        bash tools/slurm/cluster.sh config   # print the configuration `up` would write, change nothing
#
# `up` can be run again at any time: it installs only missing packages, rewrites a config file only when its
# content changes (and then restarts the daemons of its own that read it), starts only what is not running.
# Debian (12) packages; root. The daemons: munged, mariadbd (the accounting database, unix socket only), slurmdbd,
# slurmctld, slurmd. Each one `up` starts has its pid in $OECL_SLURM_STATE/<daemon>.pid and its console output in
# <daemon>.out there; `down` stops a daemon only while that pid still runs that daemon's program. SLURM's own logs
# are in /var/log/slurm/. A SLURM daemon already running that `up` did not start (a system service, another
# script's cluster) makes `up` stop with an error before it changes anything; a munged or mariadbd that answers is
# used as it is.
#
# The cluster: one node named after `hostname -s`, with the CPUs the machine has (the layout `slurmd -C` reports
# when it agrees with nproc), OECL_SLURM_MEM_MB of memory and OECL_SLURM_GPUS stand-in GPUs; partitions `debug`
# (the default, at most 1 h) and `gpu` (at most 2 days); accounting on (sacct, sacctmgr); finished jobs stay in
# squeue for MinJobAge=300 s; jobs may be requeued; a request no partition can satisfy is refused at submission.
# Limits are scheduled, not enforced (no cgroups).
#
# Settings (environment):
#   OECL_SLURM_MEM_MB    node memory in MB (default 20000; lowered to fit the machine)
#   OECL_SLURM_GPUS      stand-in GPUs on the node (default 1; 0 for none)
#   OECL_SLURM_GPU_TYPE  their type (default a100; empty for untyped)
#   OECL_SLURM_KILLWAIT  seconds between SIGTERM and SIGKILL at a time limit or scancel (default 30)
#   OECL_SLURM_CLUSTER   the cluster's name in the accounting database (default local)
#   OECL_SLURM_USERS     users besides root who may submit (default: $SUDO_USER, the one who ran sudo)
#   OECL_SLURM_STATE     where the pid files and console output go (default /tmp/oecl-slurm)
set -euo pipefail
export LC_ALL=C

STATE=${OECL_SLURM_STATE:-/tmp/oecl-slurm}
MEM_MB=${OECL_SLURM_MEM_MB:-20000}
GPUS=${OECL_SLURM_GPUS:-1}
GPU_TYPE=${OECL_SLURM_GPU_TYPE-a100}
KILLWAIT=${OECL_SLURM_KILLWAIT:-30}
CLUSTER=${OECL_SLURM_CLUSTER:-local}
USERS=${OECL_SLURM_USERS-${SUDO_USER:-}}

PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd slurm-wlm-basic-plugins slurm-wlm-mysql-plugin mariadb-server)
ORDER=(munged mariadbd slurmdbd slurmctld slurmd)            # start order; `down` goes the other way
declare -A PROGRAM=([munged]=/usr/sbin/munged [mariadbd]=/usr/sbin/mariadbd [slurmdbd]=/usr/sbin/slurmdbd
                    [slurmctld]=/usr/sbin/slurmctld [slurmd]=/usr/sbin/slurmd)
SLURM_LOGS=/var/log/slurm
FAKE_GPU_DIR=/var/lib/slurm/oecl-fake-gpu
MARIADB_DROPIN=/etc/mysql/mariadb.conf.d/90-oecl-slurm.cnf
HOST=$(hostname -s)

fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*" >&2; }
need_root() { [ "$(id -u)" -eq 0 ] || fail "'$1' needs root (sudo bash $0 $1)"; }
is_count() { [[ $1 =~ ^[0-9]+$ ]]; }

check_settings() {
  is_count "$MEM_MB" && [ "$MEM_MB" -gt 0 ] || fail "OECL_SLURM_MEM_MB='$MEM_MB' is not a positive number of MB"
  is_count "$GPUS" || fail "OECL_SLURM_GPUS='$GPUS' is not a count"
  is_count "$KILLWAIT" || fail "OECL_SLURM_KILLWAIT='$KILLWAIT' is not a number of seconds"
  [[ $GPU_TYPE =~ ^[A-Za-z0-9_-]*$ ]] || fail "OECL_SLURM_GPU_TYPE='$GPU_TYPE': letters, digits, - and _ only"
  [[ $CLUSTER =~ ^[a-z0-9_-]+$ ]] || fail "OECL_SLURM_CLUSTER='$CLUSTER': lower-case letters, digits, - and _ only"
}

# ---------------------------------------------------------------------------------------------------- processes
# Whether a pid runs a daemon's program: its executable when we may read it (root; /usr/sbin/slurmd is a link to
# slurmd-wlm), else its command name (status as a user).
runs() {  # runs DAEMON PID
  local exe
  if exe=$(readlink "/proc/$2/exe" 2>/dev/null); then
    [ "${exe% (deleted)}" = "$(readlink -f "${PROGRAM[$1]}")" ]
  else
    [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]
  fi
}
# The pid `up` recorded for a daemon, if that pid still runs the daemon's program.
our_pid() {
  local f=$STATE/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && runs "$1" "$pid" && echo "$pid"
}
# Every pid running a daemon's program, ours or not: the processes whose command name is the daemon's name
# (read with the shell's own `read`: no process per pid, no procps needed), checked with `runs`.
pids_running() {
  local dir comm
  for dir in /proc/[0-9]*; do
    read -r comm 2>/dev/null <"$dir/comm" || continue
    [ "$comm" = "$1" ] && runs "$1" "${dir#/proc/}" && echo "${dir#/proc/}"
  done
  return 0
}
foreign_pids() {  # pids running the daemon's program that `up` did not start
  local ours; ours=$(our_pid "$1" || true)
  pids_running "$1" | { grep -vx "${ours:-none}" || true; } | paste -sd' ' -
}

# Start a daemon in its own session, detached from the caller's terminal, output and file descriptors (so that a
# pipe such as `cluster.sh up | tee log` is not held open by it), and record its pid.
launch() {  # launch NAME USER ARGS...
  local name=$1 user=$2; shift 2
  local program=${PROGRAM[$name]} as_user=()
  [ "$user" = root ] || as_user=(setpriv --reuid="$user" --regid="$user" --init-groups --)
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec setsid "${as_user[@]}" "$program" "$@" </dev/null >>"$STATE/$name.out" 2>&1
  ) &
  local pid=$!
  echo "$pid" >"$STATE/$name.pid"
  # setsid and setpriv exec the daemon in this same process: wait until it does, or report that it died.
  for _ in $(seq 50); do
    runs "$name" "$pid" && return 0
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  rm -f "$STATE/$name.pid"
  fail "$name did not start; the end of $STATE/$name.out:
$(tail -n 15 "$STATE/$name.out" 2>/dev/null)"
}

halt() {  # halt NAME: stop the daemon if `up` started it; returns 1 if it would not stop
  local pid
  pid=$(our_pid "$1") || { rm -f "$STATE/$1.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  local grace=30; [ "$1" = mariadbd ] && grace=90    # the database flushes its buffers before it exits
  for _ in $(seq $((grace * 10))); do
    [ -d "/proc/$pid" ] || { rm -f "$STATE/$1.pid"; STOPPED+=" $1($pid)"; return 0; }
    sleep 0.1
  done
  say "$1 (pid $pid) still runs ${grace} s after SIGTERM; left running"
  return 1
}

wait_until() {  # wait_until SECONDS WHAT COMMAND...: poll COMMAND every 0.25 s
  local limit=$1 what=$2 n; shift 2
  for ((n = 0; n < limit * 4; n++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  fail "$what not ready after ${limit} s (SLURM logs in $SLURM_LOGS/, daemon output in $STATE/)"
}

# ---------------------------------------------------------------------------------------------------- packages
missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -x 'install ok installed' >/dev/null || echo "$p"
  done
  return 0
}

install_packages() {
  local missing names
  mapfile -t names < <(missing_packages)
  [ ${#names[@]} -eq 0 ] && return 0
  missing=${names[*]}
  command -v apt-get >/dev/null || fail "missing Debian packages ($missing) and no apt-get to install them"
  say "installing $missing"
  # Package scripts must not start the daemons (we start them ourselves, to know their pids): a policy-rc.d that
  # answers 101 ("action forbidden") stops invoke-rc.d and deb-systemd-invoke; any policy-rc.d there is put back.
  local policy=/usr/sbin/policy-rc.d saved="" log=$STATE/apt.log
  if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
  restore_policy() { if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi; }
  trap restore_policy EXIT
  printf '#!/bin/sh\n# cluster.sh: no service starts while packages are installed\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  local ok=1
  { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${names[@]}"; } >"$log" 2>&1 || ok=""
  restore_policy; trap - EXIT
  [ -n "$ok" ] || fail "apt-get could not install $missing; the end of $log:
$(tail -n 15 "$log")"
}

# ---------------------------------------------------------------------------------------------------- the machine
# NoInAddrAny makes the daemons listen on the address the host name resolves to: it must be a loopback one.
host_address() { getent ahostsv4 "$HOST" | awk 'NR == 1 { print $1 }'; }

make_host_loopback() {
  case "$(host_address)" in 127.*) return 0 ;; esac
  say "$HOST does not resolve to a loopback address: adding '127.0.1.1 $HOST' at the top of /etc/hosts"
  local old; old=$(cat /etc/hosts)
  # written in place, not replaced: in a container /etc/hosts is often a mounted file
  printf '127.0.1.1 %s  # added by the OECL project'"'"'s tools/slurm/cluster.sh (SLURM listens here)\n%s\n' \
    "$HOST" "$old" >/etc/hosts
  case "$(host_address)" in 127.*) ;; *) fail "$HOST still resolves to '$(host_address)', not a loopback address" ;; esac
}

node_layout() {  # sets CPU_LAYOUT (slurm.conf words) and NODE_MEM_MB
  local hw cpus machine_mb
  hw=$(slurmd -C 2>/dev/null | head -n 1) || true
  [ -n "$hw" ] || fail "'slurmd -C' printed nothing (is slurmd installed?)"
  cpus=$(nproc)
  if [[ $hw =~ \ CPUs=([0-9]+)\  ]] && [ "${BASH_REMATCH[1]}" = "$cpus" ]; then
    CPU_LAYOUT=$(grep -o 'CPUs=[0-9]* .*ThreadsPerCore=[0-9]*' <<<"$hw")
  else
    CPU_LAYOUT="CPUs=$cpus"   # fewer CPUs are ours than the board has (a cpuset): declare the count alone
  fi
  NODE_CPUS=$cpus
  machine_mb=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  NODE_MEM_MB=$MEM_MB
  if [ -n "$machine_mb" ] && [ "$NODE_MEM_MB" -gt $((machine_mb - 512)) ]; then
    NODE_MEM_MB=$((machine_mb - 512))  # a node that claims more memory than it has is marked invalid
    say "OECL_SLURM_MEM_MB=$MEM_MB is more than this machine has: the node gets $NODE_MEM_MB MB"
  fi
}

gpu_files() {  # the File= value of gres.conf for the stand-in GPUs
  [ "$GPUS" -eq 1 ] && echo "$FAKE_GPU_DIR/nvidia0" || echo "$FAKE_GPU_DIR/nvidia[0-$((GPUS - 1))]"
}

# SLURM 22.05 keeps a `gpu` GRES only with a File= that is a character device (it drops a file-less one, even
# CountOnly, and then marks the node invalid). Stand-ins with /dev/null's device numbers pass: jobs asking for
# GPUs are scheduled and given CUDA_VISIBLE_DEVICES, and find no CUDA device (torch then uses the CPU).
make_fake_gpus() {
  [ "$GPUS" -gt 0 ] || return 0
  mkdir -p "$FAKE_GPU_DIR"
  local i dev
  for ((i = 0; i < GPUS; i++)); do
    dev=$FAKE_GPU_DIR/nvidia$i
    [ -c "$dev" ] && continue
    rm -f "$dev"; mknod -m 666 "$dev" c 1 3
  done
}

# ---------------------------------------------------------------------------------------------------- configs
slurm_conf() {
  local gres=""
  [ "$GPUS" -gt 0 ] && gres=" Gres=gpu${GPU_TYPE:+:$GPU_TYPE}:$GPUS"
  cat <<EOF
# Written by the OECL project's tools/slurm/cluster.sh (change the script, not this file).
# One node, $HOST, that is also the controller and the accounting host; everything on $ADDR.
ClusterName=$CLUSTER
SlurmctldHost=$HOST($ADDR)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
# listen on $ADDR (what $HOST resolves to) rather than on every interface
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$SLURM_LOGS/slurmctld.log
SlurmdLogFile=$SLURM_LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: processes are followed through /proc, CPUs bound by affinity; memory and time are scheduled only
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1000
GresTypes=gpu
# a request that no partition could ever run (too long, too big) is refused by sbatch, as on real clusters
EnforcePartLimits=ALL
# accounting, so that sacct and sacctmgr work; a job needs a user/account association (root has one)
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$ADDR
AccountingStoragePort=6819
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# finished jobs stay visible to squeue for 5 minutes; jobs may be requeued (scontrol requeue, --requeue)
MinJobAge=300
JobRequeue=1
# seconds between SIGTERM and SIGKILL when a job reaches its time limit or is cancelled
KillWait=$KILLWAIT
# a node that was down comes back by itself once its slurmd registers with a valid configuration
ReturnToService=2
InactiveLimit=0
SlurmctldTimeout=120
SlurmdTimeout=300
# no mail on this machine
MailProg=/bin/true
NodeName=$HOST NodeAddr=$ADDR NodeHostname=$HOST $CPU_LAYOUT RealMemory=$NODE_MEM_MB$gres State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=01:00:00 DefaultTime=00:30:00 State=UP
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=2-00:00:00 DefaultTime=01:00:00 State=UP
EOF
}

gres_conf() {
  echo "# Written by the OECL project's tools/slurm/cluster.sh. No real GPU: stand-ins are declared, not detected."
  echo "AutoDetect=off"
  if [ "$GPUS" -gt 0 ]; then
    echo "NodeName=$HOST Name=gpu${GPU_TYPE:+ Type=$GPU_TYPE} File=$(gpu_files)"
  fi
}

slurmdbd_conf() {
  cat <<EOF
# Written by the OECL project's tools/slurm/cluster.sh. The database user slurm logs in through MariaDB's unix
# socket as the Unix user slurm (unix_socket authentication), so no password is kept anywhere.
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=$ADDR
DbdPort=6819
CommunicationParameters=NoInAddrAny
SlurmUser=slurm
LogFile=$SLURM_LOGS/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StorageLoc=slurm_acct_db
EOF
}

mariadb_conf() {
  cat <<EOF
# Written by the OECL project's tools/slurm/cluster.sh: the database of SLURM's accounting (slurmdbd).
[mysqld]
# slurmdbd connects through the unix socket; no TCP port at all
skip-networking
# the values slurmdbd asks for (it warns below them)
innodb_buffer_pool_size = 256M
innodb_lock_wait_timeout = 900
EOF
}

CHANGED=""
install_if_changed() {  # install_if_changed FILE MODE OWNER < CONTENT: replace FILE only if CONTENT differs
  local file=$1 new; new=$(mktemp)
  cat >"$new"
  if cmp -s "$new" "$file"; then rm -f "$new"; return 0; fi
  install -m "$2" -o "$3" -g "$3" "$new" "$file"
  rm -f "$new"
  CHANGED+=" ${file##*/}"
}

# ---------------------------------------------------------------------------------------------------- the node
node_state() { sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n 1 || true; }
# idle, or busy with jobs; a trailing * (not responding) or any down/drain/invalid state is not ready
node_takes_jobs() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }

wait_for_node() {
  local n state
  for ((n = 0; n < 240; n++)); do        # 60 s
    node_takes_jobs && scontrol show slurmd >/dev/null 2>&1 && return 0   # and our slurmd answers
    state=$(node_state)
    # left down or drained by an earlier run (e.g. its slurmd was stopped with jobs on it): take it back
    if ((n == 20)) && [[ $state =~ ^(down|drain|drained|draining|fail)$ ]]; then
      say "node $HOST is $state ($(sinfo -h -n "$HOST" -o %E)): resuming it"
      scontrol update NodeName="$HOST" State=RESUME || true
    fi
    sleep 0.25
  done
  fail "node $HOST is '$(node_state)' after 60 s, not idle (reason: $(sinfo -h -n "$HOST" -o %E 2>/dev/null);" \
       "SLURM logs in $SLURM_LOGS/)"
}

# ---------------------------------------------------------------------------------------------------- commands
cmd_up() {
  need_root up
  check_settings
  local t0=$EPOCHREALTIME d pids
  mkdir -p "$STATE"
  # Before anything changes: a SLURM daemon that is not ours would read the files we are about to write.
  for d in slurmdbd slurmctld slurmd; do
    pids=$(foreign_pids "$d")
    [ -z "$pids" ] || fail "$d is already running (pid $pids) and was not started by $0: stop it first" \
                           "(its service, or the script that started it); nothing was changed"
  done
  install_packages
  make_host_loopback
  ADDR=$(host_address)
  node_layout

  mkdir -p "$SLURM_LOGS" /run/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd \
           /run/munge /var/log/munge /var/lib/munge /run/mysqld
  chown slurm:slurm "$SLURM_LOGS" /run/slurm /var/lib/slurm/slurmctld
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chown mysql:mysql /run/mysqld
  if [ ! -s /etc/munge/munge.key ]; then
    (umask 077; head -c 1024 /dev/urandom >/etc/munge/munge.key)
    CHANGED+=" munge.key"
  fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  make_fake_gpus

  # (fed by redirection, not a pipe: install_if_changed must run in this shell to add to CHANGED)
  install_if_changed /etc/slurm/slurm.conf 644 root < <(slurm_conf)
  install_if_changed /etc/slurm/gres.conf 644 root < <(gres_conf)
  install_if_changed /etc/slurm/slurmdbd.conf 600 slurm < <(slurmdbd_conf)
  install_if_changed "$MARIADB_DROPIN" 644 root < <(mariadb_conf)

  # A changed file: restart (only) our daemons that read it; they are started again below.
  STOPPED=""
  case " $CHANGED " in *" munge.key "*) for d in slurmd slurmctld slurmdbd munged; do halt "$d"; done ;; esac
  case " $CHANGED " in *" slurm.conf "* | *" gres.conf "*) halt slurmd; halt slurmctld ;; esac
  case " $CHANGED " in *" slurmdbd.conf "*) halt slurmdbd ;; esac
  case " $CHANGED " in *" ${MARIADB_DROPIN##*/} "*) halt slurmdbd; halt mariadbd ;; esac
  [ -z "$STOPPED" ] || say "changed:$CHANGED; restarting$STOPPED"

  # munged: used as it is if one (ours or not) already answers
  if ! { munge -n | unmunge; } >/dev/null 2>&1; then
    our_pid munged >/dev/null || launch munged munge --foreground
    wait_until 20 munged sh -c 'munge -n | unmunge'
  fi

  # mariadbd: likewise
  if ! mariadb-admin --protocol=socket ping >/dev/null 2>&1; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE/mariadb-install.out" 2>&1 \
      || fail "mariadb-install-db failed (see $STATE/mariadb-install.out)"
    our_pid mariadbd >/dev/null || launch mariadbd mysql
    wait_until 60 mariadbd mariadb-admin --protocol=socket ping
  fi
  mariadb --protocol=socket -u root <<'SQL' || fail "could not give the slurm user its database (as MariaDB's root)"
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED VIA unix_socket;
GRANT ALL PRIVILEGES ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

  our_pid slurmdbd >/dev/null || launch slurmdbd root -D
  wait_until 60 slurmdbd sacctmgr -n list cluster
  if ! sacctmgr -n -P list cluster format=cluster | grep -x "$CLUSTER" >/dev/null; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail "sacctmgr could not add the cluster $CLUSTER"
  fi
  local u
  for u in $USERS; do
    [ "$u" != root ] && id "$u" >/dev/null 2>&1 || continue
    sacctmgr -n -P list user "$u" format=user | grep -x "$u" >/dev/null && continue
    sacctmgr -n -P list account oecl format=account | grep -x oecl >/dev/null \
      || sacctmgr -i add account oecl Cluster="$CLUSTER" Description="OECL tests" Organization=oecl >/dev/null
    sacctmgr -i add user "$u" Account=oecl DefaultAccount=oecl Cluster="$CLUSTER" >/dev/null \
      || fail "sacctmgr could not add the user $u"
  done

  our_pid slurmctld >/dev/null || launch slurmctld root -D
  wait_until 60 slurmctld scontrol ping
  our_pid slurmd >/dev/null || launch slurmd root -D
  wait_for_node

  local took; took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  echo "OK slurm up in ${took} s: node $HOST $(node_state), $NODE_CPUS CPUs, $NODE_MEM_MB MB," \
       "gres $(sinfo -h -n "$HOST" -o %G); partitions $(sinfo -h -o %P | paste -sd, -); accounting on" \
       "(cluster $CLUSTER); pids in $STATE; stop with: sudo bash $0 down"
}

cmd_down() {
  need_root down
  local jobs=0 d rc=0
  if our_pid slurmctld >/dev/null; then jobs=$(timeout 15 squeue -h 2>/dev/null | wc -l) || jobs=0; fi
  STOPPED=""
  for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
    halt "${ORDER[i]}" || rc=1
  done
  if [ "$jobs" -gt 0 ]; then
    say "$jobs job(s) were in the queue; they were not cancelled (running ones go on; the queue is kept for the next up)"
  fi
  for d in "${ORDER[@]}"; do
    local others; others=$(foreign_pids "$d")
    [ -z "$others" ] || say "$d pid $others still runs: not started by this script, left alone"
  done
  echo "OK slurm down: stopped${STOPPED:- nothing}"
  return $rc
}

cmd_status() {
  local d pid others what ok=0
  for d in "${ORDER[@]}"; do
    pid=$(our_pid "$d" || true)
    others=$(foreign_pids "$d")
    what=""
    [ -z "$pid" ] || what="pid $pid (started by cluster.sh)"
    [ -z "$others" ] || what="${what:+$what; }pid $others (not started by cluster.sh)"
    printf '%-10s %s\n' "$d" "${what:-not running}"
  done
  if command -v sinfo >/dev/null && sinfo -h >/dev/null 2>&1; then
    sinfo
    node_takes_jobs && ok=1
  fi
  if [ "$ok" = 1 ]; then echo "OK node $HOST $(node_state)"; else echo "NOT READY: node $HOST is '$(node_state)'"; return 1; fi
}

cmd_config() {
  check_settings
  ADDR=$(host_address)
  case "$ADDR" in 127.*) ;; *) say "$HOST resolves to '$ADDR': up would add '127.0.1.1 $HOST' to /etc/hosts"; ADDR=127.0.1.1 ;; esac
  command -v slurmd >/dev/null || fail "slurmd is not installed: 'up' installs it, then the layout is known"
  node_layout
  local f
  for f in "/etc/slurm/slurm.conf:slurm_conf" "/etc/slurm/gres.conf:gres_conf" \
           "/etc/slurm/slurmdbd.conf:slurmdbd_conf" "$MARIADB_DROPIN:mariadb_conf"; do
    echo "==> ${f%%:*} <=="
    "${f##*:}"
    echo
  done
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0   # sourced (to try one function): define, do nothing
case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  config) cmd_config ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
