//! Records from the kernel: decoding ring-buffer bytes into typed events.

pub mod decode;

pub use decode::{CapturedStack, DecodeError, RawEvent, SampleEvent, SlowSyscallEvent};
