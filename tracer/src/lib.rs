//! `tracer`: attach to a running service with eBPF and report what blocks its
//! event loop and where its time goes. The binary (main.rs) is a thin shell
//! around [`run::run`]. Data flows one way: kernel probes (`probes`) → events
//! (`collect`) → a resolved [`trace::Trace`] (`recorder`, `unwind`,
//! `symbolize`) → pure analysis (`analyze`) → reports (`report`). A trace
//! saved by `recording` is rendered again by `tracer report FILE`.

pub mod abort;
pub mod analyze;
pub mod call_log;
pub mod cgroup_watch;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod duration;
pub mod error;
pub mod fdinfo;
pub mod gil_waits;
pub mod install;
pub mod live;
pub mod loop_series;
pub mod metrics;
pub mod output;
pub mod privileges;
pub mod probes;
pub mod procfs;
pub mod progress;
pub mod pystack;
pub mod python;
pub mod recorder;
pub mod recording;
pub mod report;
pub mod rotation;
pub mod run;
pub mod stacks;
pub mod symbolize;
pub mod syscalls;
pub mod target;
pub mod trace;
pub mod unwind;
pub mod worker_park;
