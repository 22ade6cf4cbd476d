//! Readers of /proc: process status, memory maps, file descriptors, sockets.

pub mod fd;
pub mod maps;
pub mod net;
pub mod status;
