//! The kernel programs of `tracer`. Each file holds one concern; every program
//! is a thin wrapper that checks the target first and calls a `try_*` function.
#![no_std]
#![no_main]

mod counters;
mod fds;
mod gil;
mod helpers;
mod kernel;
mod lean;
mod loops;
mod maps;
mod process;
mod python;
mod repeat;
mod sampling;
mod sched;
mod sleeps;
mod stack;
mod syscalls;
mod target;
// Not called before bpf_loop: see python.rs.
#[cfg_attr(feature = "bounded-loops", allow(dead_code))]
mod tasks;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach this.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
