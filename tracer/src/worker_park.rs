//! Runtimes that park idle worker threads on a futex (a condvar) instead of
//! in a poll call: such a wait is idle time, not blocking. The park is
//! recognised by the functions on the stack of the wait; the kernel is then
//! told which futex that thread idles on. Pools that run no event loop
//! (libuv's threadpool, Node's platform workers) are recognised the same way,
//! by analysis, at each wait ([`is_idle_worker_wait`]).

/// Function name prefixes of worker parks (demangled, without hashes).
const PARKS: &[&str] = &[
    // tokio multi-thread workers that do not hold the I/O driver.
    "tokio::runtime::scheduler::multi_thread::park::Inner::park_condvar",
];

/// Whether a stack (function names, innermost first) is a worker parking.
pub fn is_worker_park<'a>(functions: impl IntoIterator<Item = &'a str>) -> bool {
    functions
        .into_iter()
        .any(|f| PARKS.iter().any(|park| f.starts_with(park)))
}

/// Who calls a condition-variable wait when it waits for work.
enum Caller {
    /// A function of exactly this name (a C function).
    Is(&'static str),
    /// A function whose (demangled) name starts with this.
    StartsWith(&'static str),
    /// A method (second) of a class whose name starts with the first.
    Method(&'static str, &'static str),
}

impl Caller {
    fn matches(&self, function: &str) -> bool {
        match self {
            Caller::Is(name) => function == *name,
            Caller::StartsWith(prefix) => function.starts_with(prefix),
            Caller::Method(class, method) => {
                function.starts_with(class) && function.contains(method)
            }
        }
    }
}

/// Worker pools that run no event loop and wait for work on a condition
/// variable: (the wait, who calls it when it idles). Their futex waits are
/// idle time, like tokio's parks, but the kernel cannot be told (it treats
/// parks only on loop threads), so analysis recognises them by their stack.
const IDLE_WAITS: &[(&str, Caller)] = &[
    // libuv's threadpool (src/threadpool.c): `worker` waits while the work
    // queue is empty. A worker blocked *in* a task (read() under
    // uv__fs_work) waits elsewhere and stays a blocking call.
    ("uv_cond_wait", Caller::Is("worker")),
    // Node's platform workers (src/node_platform.cc) wait for V8's
    // background tasks (GC, compilation) in TaskQueue::BlockingPop, inlined
    // into PlatformWorkerThread in release builds.
    (
        "uv_cond_wait",
        Caller::StartsWith("node::(anonymous namespace)::PlatformWorkerThread("),
    ),
    (
        "uv_cond_wait",
        Caller::Method("node::TaskQueue<", "::BlockingPop"),
    ),
];

/// Whether a futex wait's stack (function names, innermost first) is a
/// worker of a pool waiting for work: idle, not blocking.
pub fn is_idle_worker_wait<'a>(functions: impl IntoIterator<Item = &'a str>) -> bool {
    let functions: Vec<&str> = functions.into_iter().collect();
    functions.windows(2).any(|pair| {
        IDLE_WAITS
            .iter()
            .any(|(wait, caller)| pair[0] == *wait && caller.matches(pair[1]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COND_WAIT: [&str; 4] = [
        "__futex_abstimed_wait_common64",
        "__futex_abstimed_wait_common",
        "__pthread_cond_wait_common",
        "___pthread_cond_wait",
    ];

    fn stack(outer: &[&'static str]) -> Vec<&'static str> {
        COND_WAIT.iter().chain(outer).copied().collect()
    }

    #[test]
    fn idle_pool_workers_are_idle() {
        let platform = stack(&[
            "uv_cond_wait",
            "node::(anonymous namespace)::PlatformWorkerThread(void*)",
            "start_thread",
            "clone3",
        ]);
        assert!(is_idle_worker_wait(platform));
        let not_inlined = stack(&[
            "uv_cond_wait",
            "node::TaskQueue<v8::Task>::BlockingPop()",
            "node::(anonymous namespace)::PlatformWorkerThread(void*)",
        ]);
        assert!(is_idle_worker_wait(not_inlined));
        let threadpool = stack(&["uv_cond_wait", "worker", "start_thread", "clone3"]);
        assert!(is_idle_worker_wait(threadpool));
    }

    #[test]
    fn workers_blocked_in_a_task_are_not_idle() {
        // A threadpool worker in a slow fs read.
        assert!(!is_idle_worker_wait([
            "read",
            "uv__fs_read",
            "uv__fs_work",
            "worker",
            "start_thread",
        ]));
        // A task that waits on a lock of its own.
        assert!(!is_idle_worker_wait(stack(&[
            "uv_mutex_lock",
            "worker",
            "start_thread"
        ])));
        // The main thread draining the platform's tasks waits for them.
        assert!(!is_idle_worker_wait(stack(&[
            "uv_cond_wait",
            "node::TaskQueue<v8::Task>::BlockingDrain()",
            "node::NodePlatform::DrainTasks(v8::Isolate*)",
        ])));
        // Another program's function called `worker` waiting elsewhere.
        assert!(!is_idle_worker_wait(stack(&[
            "pthread_cond_wait",
            "worker"
        ])));
    }

    #[test]
    fn recognises_tokio_parks_only() {
        let worker = [
            "syscall",
            "<std::sys::sync::condvar::futex::Condvar>::wait",
            "tokio::runtime::scheduler::multi_thread::park::Inner::park_condvar",
            "tokio::runtime::scheduler::multi_thread::worker::Context::park_internal",
        ];
        assert!(is_worker_park(worker));
        let blocking_pool = [
            "syscall",
            "<std::sys::sync::condvar::futex::Condvar>::wait_timeout",
            "tokio::runtime::blocking::pool::Inner::run",
        ];
        assert!(!is_worker_park(blocking_pool));
        assert!(!is_worker_park(["take_gil", "PyEval_RestoreThread"]));
        // block_on's thread waits for its future; it is not a worker.
        assert!(!is_worker_park([
            "tokio::runtime::park::Inner::park",
            "tokio::runtime::runtime::Runtime::block_on",
        ]));
    }
}
