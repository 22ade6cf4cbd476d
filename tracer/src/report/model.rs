//! The report as data: what `--json` writes (docs/json.md documents it;
//! changes must be additive) and what the text report renders.

use serde::Serialize;

use crate::trace::{Drops, Frame};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub target: ReportTarget,
    pub duration_ns: u64,
    pub threshold_ns: u64,
    pub ended_by: String,
    /// Sum of `drops`: events the tracer could not record.
    pub dropped_events: u64,
    pub drops: Drops,
    pub threads: Vec<ThreadRow>,
    pub syscalls: Vec<SyscallRow>,
    pub blocking: Vec<BlockingRow>,
    pub blocking_groups: Vec<BlockingGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportTarget {
    pub pid: u32,
    pub comm: String,
    pub cmdline: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThreadRow {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyscallRow {
    pub name: String,
    pub nr: u32,
    pub count: u64,
    pub errors: u64,
    pub total_ns: u64,
    pub avg_ns: u64,
    pub max_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockingRow {
    pub syscall: String,
    pub pid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub ret: i64,
    pub fd: Option<i32>,
    pub target: Option<String>,
    pub stack: Vec<Frame>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockingGroup {
    pub syscall: String,
    pub target: Option<String>,
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub tids: Vec<u32>,
    pub stack: Vec<Frame>,
}
