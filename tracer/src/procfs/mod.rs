//! Readers of /proc: process status, memory and its maps, file descriptors, sockets.

pub mod fd;
pub mod maps;
pub mod memory;
pub mod net;
pub mod status;
