#!/bin/sh
# Runs in the guest, chrooted into the root image: mounts what the tracer
# reads, then the checks appended below, each between markers on the serial
# console that xtask/src/vm/checks.rs reads back.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tracefs nodev /sys/kernel/tracing
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# No tmpfs on /tmp: it would hide a workspace under /tmp. The root disk is a
# snapshot anyway, which the tests' temporary files cannot outlive.
ip link set lo up
cd /tmp

boot() {
    uname -r
    [ -e /sys/kernel/btf/vmlinux ] || { echo "no /sys/kernel/btf/vmlinux"; return 1; }
    [ -d /sys/kernel/tracing/events ] || { echo "tracefs is not mounted"; return 1; }
    echo "BTF and tracefs present"
}

# Where each thread of each tracer process is in the kernel (the verifier?).
tracer_stacks() {
    for pid in $(pidof tracer); do
        for task in /proc/"$pid"/task/*; do
            echo "tracer $pid thread ${task##*/} ($(cat "$task/comm")):" \
                $(head -n 6 "$task/stack" 2>/dev/null | sed 's/^\[<[0-9a-f]*>\] //')
        done
    done
}

# within SECONDS COMMAND...: runs COMMAND in a process group of its own so
# that at the deadline it dies with all it started (tracer, targets), after
# saying what was still running (the watchdog's sleep outlives a command
# that ends in time: harmless, it ends at the deadline).
within() {
    seconds=$1; shift
    setsid "$@" &
    pid=$!
    (
        sleep "$seconds"
        echo "deadline of $seconds s reached; the kernel's last messages:"
        # In the background: reading /proc can hang on a task stuck in the
        # kernel (seen: a soft lockup), and the kill must still come.
        (
            dmesg | tail -n 60
            tracer_stacks
            echo "still running:"
            ps -o pid,ppid,pgid,stat,args | grep -v ' \[.*\]$'
        ) &
        sleep 10
        kill -9 -"$pid"
    ) &
    watchdog=$!
    wait "$pid"
    status=$?
    kill "$watchdog" 2>/dev/null
    return "$status"
}

# check NAME COMMAND...
check() {
    name=$1; shift
    echo "@@tracer-vm begin $name"
    "$@" 2>&1
    echo "@@tracer-vm end $name $?"
}

