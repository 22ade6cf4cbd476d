//! pprof profiles (`cpu.pb.gz`, `offcpu.pb.gz`): the CPU and off-CPU
//! profiles of cpu.folded and offcpu.folded in Google's `profile.proto`,
//! gzipped, as `go tool pprof`, Pyroscope and Parca read them. Frames keep
//! their function, source file and line (Python and native), and the binary
//! native code is in. Format and labels: docs/pprof.md.

mod builder;
mod cpu;
mod labels;
mod offcpu;
pub mod proto;

use std::io::Write;

use flate2::{Compression, write::GzEncoder};
use prost::Message;

use crate::{report::model::OffCpuRow, trace::Trace};

/// `cpu.pb.gz`: samples and CPU nanoseconds by stack, thread and loop.
pub fn cpu(trace: &Trace) -> Vec<u8> {
    gzip(&cpu::profile(trace).encode_to_vec())
}

/// `offcpu.pb.gz`: waits and off-CPU nanoseconds by stack, wait reason,
/// thread and syscall, from the report's off-CPU rows.
pub fn offcpu(trace: &Trace, rows: &[OffCpuRow]) -> Vec<u8> {
    gzip(&offcpu::profile(trace, rows).encode_to_vec())
}

/// profile.proto files are gzipped on disk (readers also take them plain).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into memory cannot fail; should it, the profile is written
    // plain, which every reader accepts too.
    match encoder.write_all(bytes).and_then(|()| encoder.finish()) {
        Ok(gzipped) => gzipped,
        Err(error) => {
            log::warn!("cannot gzip a pprof profile: {error}");
            bytes.to_vec()
        }
    }
}

/// When the recording started, in nanoseconds since the Unix epoch.
fn start_nanos(trace: &Trace) -> i64 {
    i64::try_from(trace.started_unix_ms)
        .unwrap_or(0)
        .saturating_mul(1_000_000)
}

/// The profile's first comment: what was traced.
fn about(trace: &Trace) -> String {
    format!(
        "tracer: pid {} ({}) traced for {:.2} s, {}",
        trace.target.pid,
        trace.target.comm,
        trace.duration_ns as f64 / 1e9,
        trace.ended_by
    )
}

#[cfg(test)]
mod tests;
