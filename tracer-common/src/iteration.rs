//! The event-loop iteration state machine, on a thread's [`ThreadState`].
//! Pure arithmetic, so it is unit-tested here on synthetic event streams;
//! the kernel programs (`tracer-ebpf/src/loops.rs`, `sched.rs`) call it at
//! each event and do the map and ring-buffer work around it.
//!
//! An iteration runs from the return of the loop's own poll wait to the next
//! entry into it. While it runs, the scheduler's switches split its time
//! into on CPU, blocked (asleep) and run queue (runnable, waiting for a CPU).

use crate::ThreadState;

/// A finished iteration: what the loop's statistics get and, if it ran at
/// least the threshold, what its stall record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iteration {
    pub start_ns: u64,
    pub busy_ns: u64,
    pub oncpu_ns: u64,
    pub runqueue_ns: u64,
    pub blocked_ns: u64,
    /// The longest other syscall inside it (0 ns: none).
    pub worst_nr: u64,
    pub worst_ns: u64,
    pub worst_arg0: u64,
    /// When the longest began, if it is a streamed sleep whose end went
    /// unseen (0: it is not).
    pub worst_unseen_ns: u64,
    /// How long the idle wait before it waited: the loop's statistics get
    /// it with the iteration (one map update per iteration, not two).
    pub idle_before_ns: u64,
}

impl ThreadState {
    /// A poll-family wait on `key` begins, called with user stack pointer
    /// `sp`: is it the loop's own idle wait? A wait on another key from
    /// deeper in the stack is a nested loop run from inside a callback
    /// (Node's execSync, a selector in a handler): blocking, not idle. One
    /// on another key from as high up or higher means the loop itself moved
    /// (a new epoll fd), and it becomes the loop's wait.
    pub fn claims_idle_wait(&mut self, key: u64, sp: u64) -> bool {
        let nested = self.loop_sp != 0 && key != self.loop_key && sp < self.loop_sp;
        if !nested {
            self.loop_key = key;
            self.loop_sp = sp;
        }
        !nested
    }

    /// The idle wait begins at `now`: the iteration in progress ends. None
    /// when there was none (the first wait seen since tracing began).
    /// `runtime_ns` reads the scheduler's count of the thread's CPU time
    /// (see [`ThreadState::unaccounted_oncpu_ns`]), if needed.
    pub fn enter_idle_wait(
        &mut self,
        now: u64,
        runtime_ns: impl FnOnce() -> u64,
    ) -> Option<Iteration> {
        self.in_idle_wait = 1;
        self.end_iteration(now, runtime_ns)
    }

    /// The idle wait returned at `now` after waiting `waited` ns: a new
    /// iteration starts.
    pub fn exit_idle_wait(&mut self, now: u64, waited: u64) {
        self.in_idle_wait = 0;
        self.idle_before_ns += waited;
        self.iter_start_ns = now;
        self.iter_oncpu_ns = 0;
        self.iter_runqueue_ns = 0;
        self.iter_blocked_ns = 0;
        self.iter_worst_nr = 0;
        self.iter_worst_ns = 0;
        self.iter_worst_arg0 = 0;
        self.iter_worst_unseen_ns = 0;
    }

    /// A futex wait that began at `began` turned out, while it waited, to
    /// be the thread's park (its idle wait): the iteration ended when the
    /// wait began, and the time the wait slept is not part of it.
    pub fn end_iteration_at_park(
        &mut self,
        began: u64,
        runtime_ns: impl FnOnce() -> u64,
    ) -> Option<Iteration> {
        self.iter_blocked_ns = self.iter_blocked_ns.saturating_sub(self.syscall_blocked_ns);
        self.end_iteration(began, runtime_ns)
    }

    /// A syscall other than the idle wait returned after `duration` ns;
    /// its first argument is read only if it is the longest so far.
    pub fn syscall_returned(&mut self, nr: u64, duration: u64, arg0: impl FnOnce() -> u64) {
        if self.iter_start_ns != 0 && duration > self.iter_worst_ns {
            self.iter_worst_nr = nr;
            self.iter_worst_ns = duration;
            self.iter_worst_arg0 = arg0();
            self.iter_worst_unseen_ns = 0;
        }
    }

    /// A sleep outside traced calls (`nr`: the untraced syscall or the page
    /// fault, with its first argument) slept `asleep` ns, and the switch
    /// back in went unreported: the programs that find it (the syscalls')
    /// cannot stream its end, so if its stack was streamed as it began at
    /// `captured_ns` and it is the iteration's longest, the iteration says
    /// so.
    pub fn sleep_ended_unseen(&mut self, nr: u64, arg0: u64, asleep: u64, captured_ns: u64) {
        self.syscall_returned(nr, asleep, || arg0);
        if self.iter_start_ns != 0 && self.iter_worst_ns == asleep && self.iter_worst_nr == nr {
            self.iter_worst_unseen_ns = captured_ns;
        }
    }

    /// The thread goes off CPU at `now` after `stint` ns on CPU by the
    /// scheduler's count (since it last went off). The iteration began
    /// while it ran, so the part of the stint inside it is at most the time
    /// since the iteration began.
    pub fn iteration_switched_out(&mut self, now: u64, stint: u64) {
        if self.iter_start_ns != 0 {
            self.iter_oncpu_ns += stint.min(now.saturating_sub(self.iter_start_ns));
        }
    }

    /// The thread is back on CPU after sleeping `asleep` ns and then
    /// waiting `waited` ns for a CPU.
    pub fn iteration_switched_in(&mut self, asleep: u64, waited: u64) {
        if self.iter_start_ns != 0 {
            self.iter_blocked_ns += asleep;
            self.iter_runqueue_ns += waited;
        }
    }

    fn end_iteration(&mut self, now: u64, runtime_ns: impl FnOnce() -> u64) -> Option<Iteration> {
        let start = self.iter_start_ns;
        if start == 0 {
            return None;
        }
        self.iter_start_ns = 0;
        let busy_ns = now.saturating_sub(start);
        // The thread is running (it is making a syscall): on CPU since it
        // last went on, or since the iteration began. If it went off and
        // its switch back in went unreported (this VM's kernel does that
        // now and then), the scheduler's count says how long it has run
        // since it went off, up to a tick behind.
        let tail = if self.offcpu_since_ns == 0 {
            now.saturating_sub(self.oncpu_since_ns.max(start))
        } else {
            let went_off = self.offcpu_since_ns.max(start);
            self.unaccounted_oncpu_ns(runtime_ns())
                .min(now.saturating_sub(went_off))
        };
        let oncpu_ns = self.iter_oncpu_ns + tail;
        Some(Iteration {
            start_ns: start,
            busy_ns,
            oncpu_ns: oncpu_ns.min(busy_ns),
            runqueue_ns: self.iter_runqueue_ns,
            blocked_ns: self.iter_blocked_ns,
            worst_nr: self.iter_worst_nr,
            worst_ns: self.iter_worst_ns,
            worst_arg0: self.iter_worst_arg0,
            worst_unseen_ns: self.iter_worst_unseen_ns,
            idle_before_ns: core::mem::take(&mut self.idle_before_ns),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const EPOLL_FD_4: u64 = 1 << 32 | 4;
    const EPOLL_FD_9: u64 = 1 << 32 | 9;
    const SP: u64 = 0x7ffd_0000_8000;
    const RECVFROM: u64 = 45;
    const SELECT: u64 = 23;

    /// A loop thread driven by the events the kernel sees, in the order
    /// the programs call the state machine.
    #[derive(Default)]
    struct Thread {
        state: ThreadState,
        ended: std::vec::Vec<Iteration>,
        /// The scheduler's count of the thread's CPU time.
        runtime_ns: u64,
        /// When the last idle wait began.
        wait_began: u64,
    }

    impl Thread {
        fn poll_enter(&mut self, now: u64, key: u64, sp: u64) -> bool {
            let own = self.state.claims_idle_wait(key, sp);
            if own {
                self.wait_began = now;
                let runtime = self.runtime_ns;
                self.ended
                    .extend(self.state.enter_idle_wait(now, || runtime));
            }
            own
        }
        fn poll_exit(&mut self, now: u64) {
            let waited = now - self.wait_began;
            self.state.exit_idle_wait(now, waited);
        }
        fn syscall(&mut self, nr: u64, duration: u64, arg0: u64) {
            self.state.syscall_returned(nr, duration, || arg0);
        }
        /// Off CPU at `out`, woken at `woke`, back on CPU at `back`.
        fn off_cpu(&mut self, out: u64, woke: u64, back: u64) {
            let stint = out.saturating_sub(self.state.oncpu_since_ns);
            self.state.iteration_switched_out(out, stint);
            self.state.iteration_switched_in(woke - out, back - woke);
            self.state.oncpu_since_ns = back;
        }
    }

    #[test]
    fn an_iteration_splits_into_cpu_blocked_and_run_queue() {
        let mut t = Thread::default();
        t.state.oncpu_since_ns = MS;
        assert!(t.poll_enter(2 * MS, EPOLL_FD_4, SP));
        assert_eq!(t.ended, []);
        t.poll_exit(10 * MS);
        // 5 ms on CPU, a 300 ms blocking recvfrom, 2 ms waiting for a CPU,
        // 3 ms on CPU again.
        t.off_cpu(15 * MS, 315 * MS, 317 * MS);
        t.syscall(RECVFROM, 302 * MS, 7);
        t.syscall(SELECT, MS, 0);
        assert!(t.poll_enter(320 * MS, EPOLL_FD_4, SP));
        assert_eq!(
            t.ended,
            [Iteration {
                start_ns: 10 * MS,
                busy_ns: 310 * MS,
                oncpu_ns: 8 * MS,
                runqueue_ns: 2 * MS,
                blocked_ns: 300 * MS,
                worst_nr: RECVFROM,
                worst_ns: 302 * MS,
                worst_arg0: 7,
                worst_unseen_ns: 0,
                idle_before_ns: 8 * MS,
            }]
        );
        assert_eq!(t.state.in_idle_wait, 1);
    }

    #[test]
    fn a_streamed_sleep_ended_unseen_is_named_until_a_longer_call() {
        const PAGE_FAULT: u64 = 512;
        let mut t = Thread::default();
        assert!(t.poll_enter(MS, EPOLL_FD_4, SP));
        t.poll_exit(10 * MS);
        // A 150 ms page fault streamed as it began at 12 ms; a 1 ms one not.
        t.state.sleep_ended_unseen(PAGE_FAULT, 0, 150 * MS, 12 * MS);
        t.state.sleep_ended_unseen(PAGE_FAULT, 0, MS, 0);
        assert!(t.poll_enter(170 * MS, EPOLL_FD_4, SP));
        assert_eq!(t.ended[0].worst_nr, PAGE_FAULT);
        assert_eq!(t.ended[0].worst_ns, 150 * MS);
        assert_eq!(t.ended[0].worst_unseen_ns, 12 * MS);
        // The next iteration: a longer call takes the place.
        t.poll_exit(180 * MS);
        t.state
            .sleep_ended_unseen(PAGE_FAULT, 0, 150 * MS, 182 * MS);
        t.syscall(RECVFROM, 200 * MS, 7);
        assert!(t.poll_enter(400 * MS, EPOLL_FD_4, SP));
        assert_eq!(t.ended[1].worst_nr, RECVFROM);
        assert_eq!(t.ended[1].worst_unseen_ns, 0);
    }

    #[test]
    fn attached_in_the_middle_of_an_iteration_counts_from_the_next_one() {
        let mut t = Thread::default();
        // Tracing began while a callback ran: its syscalls and switches
        // belong to no iteration we saw start.
        t.syscall(RECVFROM, 50 * MS, 7);
        t.off_cpu(60 * MS, 70 * MS, 71 * MS);
        assert!(t.poll_enter(80 * MS, EPOLL_FD_4, SP));
        assert_eq!(t.ended, [], "half an iteration is not one");
        t.poll_exit(100 * MS);
        assert!(t.poll_enter(104 * MS, EPOLL_FD_4, SP));
        let only = t.ended.as_slice();
        assert_eq!(only.len(), 1);
        assert_eq!((only[0].busy_ns, only[0].oncpu_ns), (4 * MS, 4 * MS));
        assert_eq!((only[0].worst_ns, only[0].blocked_ns), (0, 0));
    }

    #[test]
    fn a_switch_in_without_an_event_counts_the_schedulers_time_not_the_gap() {
        let mut t = Thread::default();
        t.state.oncpu_since_ns = MS;
        t.poll_enter(2 * MS, EPOLL_FD_4, SP);
        t.poll_exit(10 * MS);
        // Off at 15 ms after 14 ms on CPU (5 of them in the iteration); back
        // at 100 ms unreported; off again at 120 ms after 20 ms on CPU by
        // the scheduler's count; back at 125 ms unreported again.
        t.state.iteration_switched_out(15 * MS, 14 * MS);
        t.state.offcpu_since_ns = 15 * MS;
        t.state.iteration_switched_out(120 * MS, 20 * MS);
        t.state.offcpu_since_ns = 120 * MS;
        t.state.oncpu_total_ns = 34 * MS;
        // At 130 ms the thread waits: by the scheduler, 5 ms since 120.
        t.runtime_ns = 39 * MS;
        t.poll_enter(130 * MS, EPOLL_FD_4, SP);
        let it = t.ended[0];
        assert_eq!((it.busy_ns, it.oncpu_ns), (120 * MS, 30 * MS));
    }

    #[test]
    fn the_schedulers_time_after_an_unreported_switch_in_is_bounded_by_the_clock() {
        let mut t = Thread::default();
        t.poll_enter(MS, EPOLL_FD_4, SP);
        t.poll_exit(10 * MS);
        t.state.iteration_switched_out(12 * MS, 2 * MS);
        t.state.offcpu_since_ns = 12 * MS;
        t.state.oncpu_total_ns = 2 * MS;
        // A count that ran ahead of the clock cannot make the tail longer
        // than the time since the thread went off.
        t.runtime_ns = 50 * MS;
        t.poll_enter(20 * MS, EPOLL_FD_4, SP);
        assert_eq!(t.ended[0].oncpu_ns, 10 * MS);
    }

    #[test]
    fn a_wait_on_another_epoll_fd_from_deeper_is_a_nested_loop() {
        let mut t = Thread::default();
        t.state.oncpu_since_ns = MS;
        t.poll_enter(MS, EPOLL_FD_4, SP);
        t.poll_exit(2 * MS);
        // execSync: epoll_pwait on its own epoll fd, from a callback.
        assert!(!t.poll_enter(3 * MS, EPOLL_FD_9, SP - 4096));
        t.off_cpu(3 * MS, 208 * MS, 208 * MS);
        t.syscall(281, 205 * MS, 9);
        assert_eq!(t.state.in_idle_wait, 0, "still inside the iteration");
        assert!(t.poll_enter(210 * MS, EPOLL_FD_4, SP));
        let stall = t.ended[0];
        assert_eq!((stall.busy_ns, stall.blocked_ns), (208 * MS, 205 * MS));
        assert_eq!((stall.worst_nr, stall.worst_arg0), (281, 9));
        assert_eq!(t.state.loop_key, EPOLL_FD_4);
    }

    #[test]
    fn a_new_epoll_fd_at_the_same_depth_is_the_loop_moving() {
        let mut t = Thread::default();
        t.poll_enter(MS, EPOLL_FD_4, SP);
        t.poll_exit(2 * MS);
        assert!(t.poll_enter(3 * MS, EPOLL_FD_9, SP));
        assert_eq!(t.state.loop_key, EPOLL_FD_9);
        assert_eq!(t.ended.len(), 1);
    }

    #[test]
    fn each_iteration_starts_clean() {
        let mut t = Thread::default();
        t.poll_enter(MS, EPOLL_FD_4, SP);
        t.poll_exit(2 * MS);
        t.off_cpu(3 * MS, 40 * MS, 45 * MS);
        t.syscall(RECVFROM, 37 * MS, 7);
        t.poll_enter(50 * MS, EPOLL_FD_4, SP);
        t.poll_exit(60 * MS);
        t.poll_enter(61 * MS, EPOLL_FD_4, SP);
        let second = t.ended[1];
        assert_eq!(second.start_ns, 60 * MS);
        assert_eq!(
            (second.blocked_ns, second.runqueue_ns, second.worst_ns),
            (0, 0, 0)
        );
    }

    #[test]
    fn each_iteration_carries_the_idle_wait_before_it() {
        let mut t = Thread::default();
        t.poll_enter(MS, EPOLL_FD_4, SP);
        t.poll_exit(5 * MS);
        t.poll_enter(6 * MS, EPOLL_FD_4, SP);
        t.poll_exit(16 * MS);
        t.poll_enter(17 * MS, EPOLL_FD_4, SP);
        let idle: std::vec::Vec<u64> = t.ended.iter().map(|it| it.idle_before_ns).collect();
        assert_eq!(idle, [4 * MS, 10 * MS]);
        // The wait now in progress goes with the next iteration.
        t.poll_exit(20 * MS);
        assert_eq!(t.state.idle_before_ns, 3 * MS);
    }

    #[test]
    fn a_park_recognised_late_ends_the_iteration_when_the_wait_began() {
        let mut t = Thread::default();
        t.state.oncpu_since_ns = MS;
        t.state.exit_idle_wait(2 * MS, MS);
        // A futex wait from 12 ms, asleep until 500 ms: the worker's park.
        t.state.syscall_blocked_ns = 0;
        t.state.iteration_switched_out(12 * MS, 11 * MS);
        t.state.iteration_switched_in(488 * MS, 0);
        t.state.syscall_blocked_ns = 488 * MS;
        let it = t.state.end_iteration_at_park(12 * MS, || 0).unwrap();
        assert_eq!(
            (it.busy_ns, it.oncpu_ns, it.blocked_ns),
            (10 * MS, 10 * MS, 0)
        );
        assert_eq!(t.state.end_iteration_at_park(13 * MS, || 0), None);
    }
}
