//! A start that is killed or fails leaves nothing behind: no process of
//! ours (the command held at its gate or running, the child that holds the
//! programs after the report) and no BPF program of ours, within a second
//! of the tracer's end. And the command, once it runs, has the signal
//! state a shell would give it.
//!
//! Processes are found by a marker unique to each test in their command
//! line: the gated child still has the tracer's, the command its own, both
//! name the marker. Programs are found by name among those loaded since the
//! test began, leaving out any that a live process without the marker holds
//! (a tracer of another test).

use std::{
    collections::HashSet,
    io,
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use tracer_tests::{Lines, READY_TIMEOUT, Tracer, bpf_programs_held_by, require_root, tracer_bin};

/// How long a killed or failed start may take to leave nothing behind.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(1);

/// The names of our programs, as the kernel keeps them (15 bytes at most).
const OUR_PROGRAMS: [&str; 11] = [
    "sys_enter",
    "sys_exit",
    "wait_syscall_enter",
    "wait_syscall_exit",
    "sched_switch",
    "sched_wakeup",
    "sched_process_exit",
    "sched_process_fork",
    "sleep_capture",
    "stall_sample",
    "profile_sample",
];

/// The BPF programs loaded now, by the bpf(2) syscall itself.
mod bpf {
    const PROG_GET_NEXT_ID: libc::c_long = 11;
    const PROG_GET_FD_BY_ID: libc::c_long = 13;
    const OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    /// Where `name` starts in `struct bpf_prog_info`, and its size.
    const NAME_OFFSET: usize = 64;
    const NAME_LEN: usize = 16;

    fn bpf(command: libc::c_long, attr: &mut [u8; 16]) -> libc::c_long {
        // SAFETY: bpf(2) reads and writes at most the attribute block whose
        // size we pass; any pointer in it points into a live buffer.
        unsafe { libc::syscall(libc::SYS_bpf, command, attr.as_mut_ptr(), attr.len()) }
    }

    /// Every loaded program's id and name.
    pub fn programs() -> Vec<(u32, String)> {
        let mut found = Vec::new();
        let mut id = 0u32;
        loop {
            let mut attr = [0u8; 16];
            attr[..4].copy_from_slice(&id.to_ne_bytes());
            if bpf(PROG_GET_NEXT_ID, &mut attr) != 0 {
                return found;
            }
            id = u32::from_ne_bytes([attr[4], attr[5], attr[6], attr[7]]);
            // A program unloaded meanwhile has no name to read: skip it.
            if let Some(name) = name_of(id) {
                found.push((id, name));
            }
        }
    }

    fn name_of(id: u32) -> Option<String> {
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&id.to_ne_bytes());
        let fd = bpf(PROG_GET_FD_BY_ID, &mut attr);
        if fd < 0 {
            return None;
        }
        let mut info = [0u8; NAME_OFFSET + NAME_LEN];
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&(fd as u32).to_ne_bytes());
        attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
        attr[8..].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
        let ok = bpf(OBJ_GET_INFO_BY_FD, &mut attr) == 0;
        // SAFETY: closing the fd we were just given.
        unsafe { libc::close(fd as i32) };
        let name = &info[NAME_OFFSET..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        ok.then(|| String::from_utf8_lossy(&name[..end]).into_owned())
    }
}

/// Whether the kernel's name for a program is one of ours.
fn is_ours(name: &str) -> bool {
    OUR_PROGRAMS
        .iter()
        .any(|ours| &ours[..ours.len().min(15)] == name)
}

/// The ids of our programs loaded now.
fn our_programs() -> HashSet<u32> {
    bpf::programs()
        .into_iter()
        .filter(|(_, name)| is_ours(name))
        .map(|(id, _)| id)
        .collect()
}

/// The live processes: pid and command line (a zombie's is empty).
fn processes() -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        })
        .collect()
}

/// What a start left behind: processes naming `marker`, and programs of
/// ours loaded since `baseline` that no other live process holds.
fn leftovers(marker: &str, baseline: &HashSet<u32>) -> (Vec<String>, Vec<u32>) {
    let all = processes();
    let ours: Vec<String> = all
        .iter()
        .filter(|(_, cmdline)| cmdline.contains(marker))
        .map(|(pid, cmdline)| format!("{pid}: {cmdline}"))
        .collect();
    let held_by_others: HashSet<u32> = all
        .iter()
        .filter(|(_, cmdline)| !cmdline.contains(marker))
        .flat_map(|(pid, _)| bpf_programs_held_by(*pid))
        .collect();
    let mut programs: Vec<u32> = our_programs()
        .into_iter()
        .filter(|id| !baseline.contains(id) && !held_by_others.contains(id))
        .collect();
    programs.sort_unstable();
    (ours, programs)
}

/// Polls until nothing is left (see [`leftovers`]), failing at `deadline`.
fn assert_nothing_left(marker: &str, baseline: &HashSet<u32>, deadline: Instant, what: &str) {
    loop {
        let (processes, programs) = leftovers(marker, baseline);
        if processes.is_empty() && programs.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            // Not to leave them to the next run either.
            kill_all(marker);
            panic!(
                "{what}: left behind after {CLEANUP_TIMEOUT:?}: processes {processes:?}, \
                 BPF programs {programs:?}"
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILLs the processes whose command line names `marker`.
fn kill_all(marker: &str) {
    for (pid, cmdline) in processes() {
        if cmdline.contains(marker) {
            // SAFETY: kill takes a pid and a signal; the pid is one of the
            // processes this test started (their command lines name its
            // marker).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// A marker for this test's processes: a `sleep` argument no one else uses.
fn marker(test: u32) -> String {
    format!("97{:06}.{test}", std::process::id() % 1_000_000)
}

/// When the tracer is killed.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// As soon as it was started.
    Spawned,
    /// This many milliseconds after it was started: loading, verifying,
    /// attaching.
    Millis(u64),
    /// At its "attached" line: the command runs.
    Attached,
    /// While a child holds the programs: recording has ended (its
    /// `--duration`), the report is being written.
    Holding,
}

/// Starts `tracer -- sleep MARKER`, SIGKILLs it at `point`, and checks
/// that nothing is left within a second. False if the tracer ended before
/// the point came (only [`KillAt::Holding`] can miss: its window is short).
fn kill_during_startup(test: u32, point: KillAt) -> bool {
    let marker = marker(test);
    let baseline = our_programs();
    let mut command = Command::new(tracer_bin());
    // The report ends on its own a moment after attaching.
    if matches!(point, KillAt::Holding) {
        command.args(["--duration", "200ms"]);
    }
    let mut tracer = command
        .args(["--", "sleep", &marker])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tracer");
    let mut stderr = Lines::new(tracer.stderr.take().expect("piped stderr"));
    match point {
        KillAt::Spawned => {}
        KillAt::Millis(delay) => thread::sleep(Duration::from_millis(delay)),
        KillAt::Attached => {
            stderr.wait_for("attached to pid", READY_TIMEOUT);
        }
        KillAt::Holding => {
            stderr.wait_for("attached to pid", READY_TIMEOUT);
            if !wait_for_holder(&mut tracer) {
                return false;
            }
        }
    }
    let killed = Instant::now();
    kill(&mut tracer);
    // The second starts once the tracer is gone. A killed process's exit
    // closes its files, and there the kernel detaches each tracepoint
    // after an RCU grace period: 1.3 s here once attached. The command's
    // parent-death signal comes only then.
    let gone = Instant::now();
    eprintln!(
        "killed at {point:?}: the tracer's exit took {:?}",
        gone - killed
    );
    assert_nothing_left(
        &marker,
        &baseline,
        gone + CLEANUP_TIMEOUT,
        &format!("tracer killed at {point:?}"),
    );
    true
}

/// Waits until the tracer has a child with its own command line: once the
/// command runs, that is the holder of the programs. False if the tracer
/// ends first.
fn wait_for_holder(tracer: &mut Child) -> bool {
    let pid = tracer.id();
    let cmdline = |pid: &str| std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let own = cmdline(&pid.to_string());
    loop {
        if !matches!(tracer.try_wait(), Ok(None)) {
            return false;
        }
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if children
            .split_whitespace()
            .any(|child| cmdline(child) == own)
        {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// [`kill_during_startup`] at a point that always comes.
fn kill_at(test: u32, point: KillAt) {
    assert!(
        kill_during_startup(test, point),
        "the tracer ended before {point:?}"
    );
}

/// SIGKILL, then reap (it may have ended by itself already).
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn killed_as_soon_as_started() {
    require_root!("killed_as_soon_as_started");
    kill_at(1, KillAt::Spawned);
}

#[test]
fn killed_10ms_into_startup() {
    require_root!("killed_10ms_into_startup");
    kill_at(2, KillAt::Millis(10));
}

#[test]
fn killed_50ms_into_startup() {
    require_root!("killed_50ms_into_startup");
    kill_at(3, KillAt::Millis(50));
}

#[test]
fn killed_100ms_into_startup() {
    require_root!("killed_100ms_into_startup");
    kill_at(4, KillAt::Millis(100));
}

#[test]
fn killed_200ms_into_startup() {
    require_root!("killed_200ms_into_startup");
    kill_at(5, KillAt::Millis(200));
}

#[test]
fn killed_once_attached() {
    require_root!("killed_once_attached");
    kill_at(6, KillAt::Attached);
}

#[test]
fn killed_while_a_child_holds_the_programs() {
    require_root!("killed_while_a_child_holds_the_programs");
    // The holder lives only while the report is written: a few tries.
    let caught = (0..5).any(|_| kill_during_startup(7, KillAt::Holding));
    assert!(caught, "the tracer never had a holder child when looked at");
}

/// Makes perf_event_open(2) fail with EPERM in this process and the ones
/// it starts, as the default seccomp profile of container runtimes does:
/// the tracer then loads its programs and fails to attach them (tracepoints
/// and the CPU sampler are perf events), after it started the command.
fn forbid_perf_event_open() -> io::Result<()> {
    let instruction = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // Reads seccomp_data.nr (offset 0); the architecture is this one.
    let filter = [
        instruction(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        instruction(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            libc::SYS_perf_event_open as u32,
        ),
        instruction(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        instruction(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl reads the filter, which lives until it returns.
    let installed = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &raw const program,
            ) == 0
    };
    if installed {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[test]
fn failed_attach_leaves_nothing_and_never_runs_the_command() {
    require_root!("failed_attach_leaves_nothing_and_never_runs_the_command");
    let dir = tempfile::tempdir().expect("temp dir");
    // The command would create this file; its path is the marker.
    let ran = dir.path().join(format!("ran-{}", marker(8)));
    let marker = ran.to_string_lossy().into_owned();
    let baseline = our_programs();
    // Its stderr goes to a file: a command left at its gate would keep a
    // pipe open, and reading it to the end would wait forever.
    let stderr_path = dir.path().join("stderr");
    let stderr_file = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut command = Command::new(tracer_bin());
    command
        .args(["--", "touch", &marker])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file);
    // SAFETY: the closure makes two prctl calls (async-signal-safe) and
    // allocates nothing after the fork.
    unsafe { command.pre_exec(forbid_perf_event_open) };
    let status = command.status().expect("run tracer");
    let ended = Instant::now();
    let stderr = std::fs::read_to_string(&stderr_path).expect("tracer's stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_nothing_left(&marker, &baseline, ended + CLEANUP_TIMEOUT, "failed attach");
    assert!(!Path::new(&ran).exists(), "the command ran");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].starts_with("tracer: error: "), "{stderr}");
    // The failure planted, not another one.
    assert!(lines[0].contains("Operation not permitted"), "{stderr}");
    eprintln!("failed as planted: {}", lines[0]);
}

/// The signal mask and ignored signals of process `pid` (from its status).
fn signal_state(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("SigBlk:"), field("SigIgn:"))
}

#[test]
fn the_command_runs_with_default_signals_and_dies_on_sigterm() {
    require_root!("the_command_runs_with_default_signals_and_dies_on_sigterm");
    let marker = marker(9);
    let tracer = Tracer::start(&["--", "sleep", &marker]);
    // The command has exec'd by the "attached" line (release waits for it).
    let command = processes()
        .into_iter()
        .find(|(pid, cmdline)| *pid != tracer.pid() && cmdline.contains(&marker))
        .map(|(pid, _)| pid)
        .expect("the command runs");
    let (blocked, ignored) = signal_state(command);
    let bit = |signal: i32| 1u64 << (signal - 1);
    // (Signals that whoever started the test ignores stay ignored, as
    // under `nohup`: only these two are checked.)
    let wrongly_ignored: Vec<i32> = [libc::SIGTERM, libc::SIGPIPE]
        .into_iter()
        .filter(|&signal| ignored & bit(signal) != 0)
        .collect();
    if blocked != 0 || !wrongly_ignored.is_empty() {
        // Left running, it would outlive this test (a tracer without
        // the parent-death signal leaves it when killed).
        kill_all(&marker);
        panic!(
            "the command's signals: blocked {blocked:#x}, ignored {ignored:#x} \
             (signals {wrongly_ignored:?} must not be)"
        );
    }
    // SAFETY: signalling the command, a process we just found.
    unsafe { libc::kill(command as i32, libc::SIGTERM) };
    let done = tracer.finish();
    assert!(done.status.success(), "{:?}", done.stderr);
    assert_eq!(
        done.report["ended_by"], "target exited (killed by signal 15)",
        "{:?}",
        done.stderr
    );
}
