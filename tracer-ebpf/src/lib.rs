#![no_std]
// The library target exists so that tracer/build.rs can depend on this crate
// (which makes cargo rebuild the probes when their sources change).
