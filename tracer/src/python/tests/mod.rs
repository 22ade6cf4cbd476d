//! Tests against live interpreters: every supported CPython, started with
//! `target.py`, is detected, its code objects and strings are read, and its
//! main thread's frame chain is walked with the offsets the kernel gets.

mod live;
mod walk;
