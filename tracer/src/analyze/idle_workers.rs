//! Futex waits of pool workers waiting for work (libuv's threadpool, Node's
//! platform workers): idle time, not blocking calls. These threads run no
//! event loop, so the kernel streams their long waits like any other; the
//! stack of the wait tells them apart ([`worker_park::is_idle_worker_wait`]).

use crate::{syscalls, trace::BlockingCall, trace::Trace, worker_park};

/// Whether `call` is a pool worker idling.
pub fn is_idle_wait(trace: &Trace, call: &BlockingCall) -> bool {
    if syscalls::name(call.nr) != "futex" {
        return false;
    }
    let Some(stack) = trace.stacks.get(call.stack as usize) else {
        return false;
    };
    worker_park::is_idle_worker_wait(stack.iter().map(|frame| frame.function.as_str()))
}
