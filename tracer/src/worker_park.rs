//! Runtimes that park idle worker threads on a futex (a condvar) instead of
//! in a poll call: such a wait is idle time, not blocking. The park is
//! recognised by the functions on the stack of the wait; the kernel is then
//! told which futex that thread idles on.

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

#[cfg(test)]
mod tests {
    use super::*;

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
