//! Loops the verifier accepts on every kernel: `bpf_loop` (Linux 5.17+)
//! checks the body once whatever the count; before it, a bounded loop is
//! checked turn by turn, so the object built with the `bounded-loops`
//! feature (for those kernels) walks fewer turns.

/// One turn of a loop; returns true to stop.
pub trait Step {
    fn step(&mut self) -> bool;
}

/// Runs `state.step()` up to `times` times, until it returns true.
#[cfg(not(feature = "bounded-loops"))]
#[inline(always)]
pub fn repeat<S: Step>(times: u32, state: &mut S) {
    // SAFETY: the callback only touches `state`, which outlives the loop.
    unsafe {
        aya_ebpf::helpers::generated::bpf_loop(
            times,
            turn::<S> as *mut core::ffi::c_void,
            (state as *mut S).cast(),
            0,
        )
    };
}

/// `bpf_loop` body.
#[cfg(not(feature = "bounded-loops"))]
extern "C" fn turn<S: Step>(_index: u64, ctx: *mut core::ffi::c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer `repeat` gave it.
    let state = unsafe { &mut *ctx.cast::<S>() };
    i64::from(state.step())
}

/// Runs `state.step()` up to `times` times, until it returns true.
#[cfg(feature = "bounded-loops")]
#[inline(always)]
pub fn repeat<S: Step>(times: u32, state: &mut S) {
    for _ in 0..times {
        if state.step() {
            break;
        }
    }
}
