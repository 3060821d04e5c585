#!/usr/bin/env bash
# slurm_local.sh - a real single-node SLURM cluster on one Debian bookworm
# machine (as root, no systemd needed), for end-to-end tests of a Snakemake
# workflow with snakemake-executor-plugin-slurm.
#
# Usage:
#   bash slurm_local.sh up        # install (if needed), configure, start, wait for idle node
#   bash slurm_local.sh status    # show daemons / sinfo
#   bash slurm_local.sh selftest  # run a tiny 3-rule Snakemake workflow through SLURM
#                                       # (needs `snakemake` + the slurm plugin on PATH, or SNAKEMAKE=/path/to/snakemake)
#   bash slurm_local.sh down      # cancel our jobs, stop ONLY the daemons this script started (by PID)
#   bash slurm_local.sh down --purge   # ... and delete the state directory
#
# Environment knobs:
#   SLURM_LOCAL_DIR=/tmp/slurm-local    state dir: configs, munge key, spool, logs, pid files, MariaDB datadir
#   SLURM_LOCAL_ACCOUNTING=dbd|none     dbd (default): MariaDB + slurmdbd, so `sacct` works (plugin default
#                                       status command). none: no accounting; then the Snakemake profile MUST set
#                                       `slurm-status-command: squeue` or the workflow hangs forever.
#   SLURM_LOCAL_PARTITION=debug         partition name(s), space separated; the first one is Default=YES,
#                                       all hold the one node (e.g. "debug gpu" for a profile using slurm_partition: gpu)
#   SLURM_LOCAL_GPUS=0                  number of *fake* gres/gpu units on the node (each one a /dev/null-like
#                                       device node in $SLURM_LOCAL_DIR/dev), so that jobs with `gres: gpu:1`
#                                       can be scheduled (they get CUDA_VISIBLE_DEVICES; there is no real GPU)
#   SLURM_LOCAL_MEM_MB=<auto>           RealMemory of the node (default: 85% of MemTotal)
#   SLURM_LOCAL_ACCOUNTS="proj1 proj2"  (dbd only) SLURM accounts to create and associate with the current
#                                       user, for profiles that set `slurm_account` (the plugin validates it
#                                       with sacctmgr and refuses unknown accounts)
#
# Idempotent: `up` twice leaves the running daemons alone; `down` then `up` starts afresh and reuses the state.
# Ports used (all daemons are bound to 127.0.0.1 where SLURM allows): 6817 slurmctld, 6818 slurmd,
# 6819 slurmdbd, 33306 MariaDB. /etc/slurm/slurm.conf becomes a symlink to the generated config
# (required: the plugin's jobstep strips SLURM_CONF from the environment of the nested `srun`).
set -euo pipefail

ACTION="${1:-up}"
D="${SLURM_LOCAL_DIR:-/tmp/slurm-local}"
ACCT="${SLURM_LOCAL_ACCOUNTING:-dbd}"
PARTS="${SLURM_LOCAL_PARTITION:-debug}"
PART="${PARTS%% *}"   # the default partition
GPUS="${SLURM_LOCAL_GPUS:-0}"
ETC_LINK=/etc/slurm/slurm.conf
CONF="$D/etc/slurm.conf"
DBDCONF="$D/etc/slurmdbd.conf"
MSOCK="$D/run/munge/munge.socket"
MYSOCK="$D/run/mysqld.sock"
MYPORT=33306
DB_PASS=slurm-local-pw   # local-only DB on 127.0.0.1, throwaway

log() { printf '[slurm-local %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

# ---------------------------------------------------------------- helpers
# pid_alive PIDFILE COMM -> prints pid and returns 0 if the pid in PIDFILE is a live process named COMM
pid_alive() {
    local f="$1" comm="$2" pid
    [ -s "$f" ] || return 1
    pid="$(tr -dc '0-9' < "$f")"
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
    echo "$pid"
}

# stop_pid PIDFILE COMM : TERM the process recorded in PIDFILE (only if it is COMM), wait, KILL if needed
stop_pid() {
    local f="$1" comm="$2" pid i
    if pid="$(pid_alive "$f" "$comm")"; then
        log "stopping $comm (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 60); do
            [ -d "/proc/$pid" ] || break
            sleep 0.25
        done
        if [ -d "/proc/$pid" ]; then
            log "$comm (pid $pid) still alive after 15s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$f"
}

port_in_use() { ss -ltnH "( sport = :$1 )" 2>/dev/null | grep -q .; }

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
    local secs="$1" what="$2" i; shift 2
    for i in $(seq 1 $((secs * 4))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "timed out after ${secs}s waiting for $what"
}

show_logs() { for f in "$D"/log/*.log; do [ -f "$f" ] && { echo "---- $f"; tail -n 15 "$f"; }; done; }

# ---------------------------------------------------------------- install
install_packages() {
    local pkgs=(slurm-wlm munge) missing=()
    [ "$ACCT" = dbd ] && pkgs+=(slurmdbd mariadb-server)
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && { log "packages already installed: ${pkgs[*]}"; return; }
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d (present on this machine kind) stops the packages' own services from starting.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- config
write_if_changed() {  # write_if_changed FILE  (content on stdin); returns 0 if changed
    local f="$1" tmp; tmp="$(mktemp)"; cat > "$tmp"
    if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
    mv "$tmp" "$f"; chmod 644 "$f"; return 0
}

write_configs() {
    mkdir -p "$D"/{etc,log,run/munge,spool/ctld,spool/d,munge}
    chmod 700 "$D/munge"; chmod 755 "$D/run/munge"
    local node hw mem_total_mb mem acct_lines gres_line="" node_gres="" part_lines="" p dflt=YES
    node="$(hostname -s)"
    # hardware line as slurmd sees it, e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
    hw="$(slurmd -C 2>/dev/null | head -n1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ RealMemory=[0-9]*//')"
    [ -n "$hw" ] || hw="CPUs=$(nproc)"
    mem_total_mb=$(( $(awk '/^MemTotal:/{print $2}' /proc/meminfo) / 1024 ))
    mem="${SLURM_LOCAL_MEM_MB:-$(( mem_total_mb * 85 / 100 ))}"
    if [ "$ACCT" = dbd ]; then
        acct_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# for the slurmctld->slurmdbd connection this is the munge socket to use
AccountingStoragePass=$MSOCK
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10"
    else
        acct_lines="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
    fi
    if [ "$GPUS" -gt 0 ]; then
        gres_line="GresTypes=gpu
AccountingStorageTRES=gres/gpu"
        node_gres=" Gres=gpu:$GPUS"
    fi
    for p in $PARTS; do
        part_lines+="PartitionName=$p Nodes=$node Default=$dflt MaxTime=INFINITE State=UP"$'\n'
        dflt=NO
    done
    CONF_CHANGED=0
    write_if_changed "$CONF" <<EOF && CONF_CHANGED=1 || true
# generated by slurm_local.sh - single-node test cluster
ClusterName=localcluster
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$D/spool/ctld
SlurmdSpoolDir=$D/spool/d
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
MailProg=/bin/true
$acct_lines
JobCompType=jobcomp/none
$gres_line
NodeName=$node NodeAddr=127.0.0.1 $hw RealMemory=$mem$node_gres State=UNKNOWN
$part_lines
EOF
    # gres.conf is read from the directory of slurm.conf. Fake GPUs: slurmd 22.05 reports 0 for a
    # count-only gpu line ("gres/gpu count reported lower than configured" -> node INVAL), so each
    # fake GPU gets a character device node that behaves like /dev/null (major 1, minor 3).
    if [ "$GPUS" -gt 0 ]; then
        local i
        mkdir -p "$D/dev"
        for i in $(seq 0 $((GPUS - 1))); do
            [ -c "$D/dev/gpu$i" ] || { rm -f "$D/dev/gpu$i"; mknod "$D/dev/gpu$i" c 1 3; }
        done
        local files="$D/dev/gpu0"; [ "$GPUS" -gt 1 ] && files="$D/dev/gpu[0-$((GPUS - 1))]"
        echo "NodeName=$node Name=gpu File=$files" \
            | write_if_changed "$D/etc/gres.conf" && CONF_CHANGED=1 || true
    else
        rm -f "$D/etc/gres.conf"
    fi
    if [ "$ACCT" = dbd ]; then
        write_if_changed "$DBDCONF" <<EOF || true
AuthType=auth/munge
AuthInfo=socket=$MSOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
CommunicationParameters=NoInAddrAny
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/run/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYPORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
        chmod 600 "$DBDCONF"   # slurmdbd refuses a world-readable config
    fi
    # clients (and the nested srun inside each job) read the default path
    if [ -L "$ETC_LINK" ] && [ "$(readlink "$ETC_LINK")" != "$CONF" ] && port_in_use 6817; then
        die "$ETC_LINK points to $(readlink "$ETC_LINK") and port 6817 is in use: another instance is up; run its 'down' first"
    fi
    if [ -L "$ETC_LINK" ] || [ ! -e "$ETC_LINK" ]; then
        mkdir -p /etc/slurm
        ln -sfn "$CONF" "$ETC_LINK"
    elif ! cmp -s "$ETC_LINK" "$CONF"; then
        die "$ETC_LINK is a real file not written by this script; move it away first"
    fi
}

# ---------------------------------------------------------------- daemons
start_munge() {
    if pid_alive "$D/run/munged.pid" munged >/dev/null; then log "munged already running"; return; fi
    [ -s "$D/munge/munge.key" ] || {
        mungekey --create --keyfile="$D/munge/munge.key" --bits=1024 2>/dev/null \
            || dd if=/dev/urandom of="$D/munge/munge.key" bs=1 count=1024 status=none
        chmod 400 "$D/munge/munge.key"
    }
    rm -f "$MSOCK" "$MSOCK.lock"
    # --force: allow running as root with a key/socket outside /etc/munge, /run/munge
    munged --force --socket="$MSOCK" --key-file="$D/munge/munge.key" \
        --pid-file="$D/run/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/munged.seed"
    wait_for 10 munged bash -c "munge -S '$MSOCK' -n | unmunge -S '$MSOCK'"
    log "munged started (pid $(cat "$D/run/munged.pid"))"
}

start_mariadb() {
    if pid_alive "$D/run/mysqld.pid" mariadbd >/dev/null; then log "mariadbd already running"; return; fi
    port_in_use $MYPORT && die "port $MYPORT is taken by another process"
    if [ ! -d "$D/mysql/mysql" ]; then
        mkdir -p "$D/mysql"
        mariadb-install-db --no-defaults --datadir="$D/mysql" --user=root \
            --auth-root-authentication-method=socket --skip-test-db > "$D/log/mariadb-install.log" 2>&1
    fi
    # started through setsid so that it survives this script and is not tied to the caller's terminal
    setsid mariadbd --no-defaults --datadir="$D/mysql" --user=root --bind-address=127.0.0.1 --port=$MYPORT \
        --socket="$MYSOCK" --pid-file="$D/run/mysqld.pid" --log-error="$D/log/mariadb.log" \
        --innodb-buffer-pool-size=1G --innodb-lock-wait-timeout=900 --skip-name-resolve \
        < /dev/null > /dev/null 2>&1 &
    wait_for 60 mariadbd mariadb --no-defaults -S "$MYSOCK" -u root -e 'select 1'
    mariadb --no-defaults -S "$MYSOCK" -u root -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
        FLUSH PRIVILEGES;"
    log "mariadbd started (pid $(cat "$D/run/mysqld.pid"))"
}

start_slurmdbd() {
    if pid_alive "$D/run/slurmdbd.pid" slurmdbd >/dev/null; then log "slurmdbd already running"; return; fi
    port_in_use 6819 && die "port 6819 is taken by another process"
    # slurmdbd finds slurmdbd.conf next to $SLURM_CONF
    SLURM_CONF="$CONF" slurmdbd
    wait_for 30 "slurmdbd on :6819" port_in_use 6819
    log "slurmdbd started (pid $(cat "$D/run/slurmdbd.pid"))"
}

start_slurm() {
    if [ "${CONF_CHANGED:-0}" = 1 ] && pid_alive "$D/run/slurmctld.pid" slurmctld >/dev/null; then
        # node/gres/partition changes need a restart, not just `scontrol reconfigure`; state is kept
        log "slurm.conf changed -> restarting slurmd and slurmctld"
        stop_pid "$D/run/slurmd.pid" slurmd
        stop_pid "$D/run/slurmctld.pid" slurmctld
    fi
    if pid_alive "$D/run/slurmctld.pid" slurmctld >/dev/null; then
        log "slurmctld already running"
    else
        port_in_use 6817 && die "port 6817 is taken by another process"
        SLURM_CONF="$CONF" slurmctld -i
        wait_for 30 slurmctld scontrol ping
        log "slurmctld started (pid $(cat "$D/run/slurmctld.pid"))"
    fi
    if pid_alive "$D/run/slurmd.pid" slurmd >/dev/null; then
        log "slurmd already running"
    else
        port_in_use 6818 && die "port 6818 is taken by another process"
        SLURM_CONF="$CONF" slurmd
        log "slurmd started (pid $(cat "$D/run/slurmd.pid" 2>/dev/null || echo '?'))"
    fi
}

add_accounts() {
    local a user; user="$(id -un)"
    [ -n "${SLURM_LOCAL_ACCOUNTS:-}" ] || return 0
    [ "$ACCT" = dbd ] || die "SLURM_LOCAL_ACCOUNTS needs SLURM_LOCAL_ACCOUNTING=dbd"
    for a in $SLURM_LOCAL_ACCOUNTS; do
        # sacctmgr exits 1 with "Nothing new added." when it already exists
        sacctmgr -i add account "$a" Description=test Organization=test >/dev/null 2>&1 || true
        sacctmgr -i add user "$user" account="$a" >/dev/null 2>&1 || true
        sacctmgr -n -s list user "$user" format=account%64 | grep -qw "$a" || die "could not add account $a"
    done
    log "accounts for $user: $(sacctmgr -n -s list user "$user" format=account%64 | tr -s ' \n' ' ')"
}

wait_node_idle() {
    local node st i; node="$(hostname -s)"
    for i in $(seq 1 240); do
        st="$(sinfo -h -n "$node" -o %T 2>/dev/null || true)"
        case "$st" in
            idle|mixed|allocated) log "node $node is $st"; return 0 ;;
            *drain*|down*|*fail*|inval*) [ $((i % 8)) = 1 ] && scontrol update nodename="$node" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.25
    done
    show_logs
    die "node $node not idle after 60s (state: ${st:-?})"
}

# ---------------------------------------------------------------- actions
do_up() {
    local t0=$SECONDS
    install_packages
    write_configs
    start_munge
    if [ "$ACCT" = dbd ]; then start_mariadb; start_slurmdbd; fi
    start_slurm
    wait_node_idle
    add_accounts
    log "cluster up in $((SECONDS - t0))s (state dir $D, accounting=$ACCT)"
    sinfo
    if [ "$ACCT" != dbd ]; then
        log "no accounting: set 'slurm-status-command: squeue' in the Snakemake profile"
    fi
}

do_down() {
    local node; node="$(hostname -s)"
    if pid_alive "$D/run/slurmctld.pid" slurmctld >/dev/null; then
        # jobs of this private cluster only
        for p in $PARTS; do scancel --partition="$p" 2>/dev/null || true; done
        sleep 1
    fi
    stop_pid "$D/run/slurmd.pid" slurmd
    stop_pid "$D/run/slurmctld.pid" slurmctld
    stop_pid "$D/run/slurmdbd.pid" slurmdbd
    stop_pid "$D/run/mysqld.pid" mariadbd
    stop_pid "$D/run/munged.pid" munged
    if [ -L "$ETC_LINK" ] && [ "$(readlink "$ETC_LINK")" = "$CONF" ]; then rm -f "$ETC_LINK"; fi
    if [ "${1:-}" = --purge ]; then rm -rf "$D"; log "removed $D"; fi
    log "down"
}

do_status() {
    local f c
    for c in munged:munged.pid mariadbd:mysqld.pid slurmdbd:slurmdbd.pid slurmctld:slurmctld.pid slurmd:slurmd.pid; do
        f="$D/run/${c#*:}"
        if pid="$(pid_alive "$f" "${c%%:*}")"; then echo "${c%%:*}: running (pid $pid)"; else echo "${c%%:*}: stopped"; fi
    done
    sinfo 2>/dev/null || true
}

do_selftest() {
    local sm="${SNAKEMAKE:-snakemake}" w="$D/selftest" t0=$SECONDS status_cmd=sacct
    command -v "$sm" >/dev/null || die "snakemake not found (set SNAKEMAKE=/path/to/venv/bin/snakemake)"
    [ "$ACCT" = dbd ] || status_cmd=squeue
    rm -rf "$w"; mkdir -p "$w/profiles/slurm"
    cat > "$w/Snakefile" <<'EOF'
SAMPLES = ["a", "b", "c"]

rule all:
    input: "results/summary.txt"

rule make_sample:
    output: "results/{sample}.txt"
    resources: mem_mb=200, runtime=2, cpus_per_task=1
    shell: "echo sample={wildcards.sample} host=$(hostname) slurm_job=${{SLURM_JOB_ID:-none}} > {output}; sleep 2"

rule summarize:
    input: expand("results/{sample}.txt", sample=SAMPLES)
    output: "results/summary.txt"
    threads: 2
    resources: mem_mb=300, runtime=3, cpus_per_task=2
    shell: "cat {input} > {output}; echo summary slurm_job=${{SLURM_JOB_ID:-none}} cpus=${{SLURM_CPUS_PER_TASK:-?}} >> {output}"
EOF
    cat > "$w/profiles/slurm/config.yaml" <<EOF
executor: slurm
jobs: 4
latency-wait: 5
default-resources:
  slurm_partition: $PART
  mem_mb: 500
  runtime: 5
slurm-status-command: $status_cmd
slurm-init-seconds-before-status-checks: 2
EOF
    ( cd "$w" && timeout -s KILL 300 "$sm" --profile profiles/slurm all > snakemake.log 2>&1 ) \
        || { tail -n 40 "$w/snakemake.log"; die "selftest snakemake run failed"; }
    grep -q 'slurm_job=[0-9]' "$w/results/summary.txt" || die "jobs did not run under SLURM"
    cat "$w/results/summary.txt"
    [ "$ACCT" = dbd ] && sacct -X --format=JobID,JobName%38,Partition,AllocCPUS,ReqMem,Timelimit,State | tail -n 4
    log "selftest passed in $((SECONDS - t0))s"
}

case "$ACTION" in
    up) do_up ;;
    down) do_down "${2:-}" ;;
    status) do_status ;;
    selftest) do_selftest ;;
    *) die "usage: $0 up|down [--purge]|status|selftest" ;;
esac
