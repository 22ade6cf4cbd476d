//! Log-linear latency histogram shared by the kernel (which fills it) and
//! userspace (which reads percentiles from it): four buckets per power of two,
//! so a bucket is at most 25 % wide. Durations under 64 ns fall in four linear
//! 16 ns buckets; the last bucket also holds everything above ~137 s.

pub const HIST_BUCKETS: usize = 128;
const SUB_BITS: u32 = 2;
const SUBS: u64 = 1 << SUB_BITS;
const MIN_SHIFT: u32 = 6;

/// Floor of log2(v) for v > 0, written without loops for the BPF verifier.
#[inline(always)]
pub fn log2(mut v: u64) -> u32 {
    let mut r = 0;
    if v >= 1 << 32 {
        v >>= 32;
        r += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        r += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        r += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        r += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        r += 2;
    }
    if v >= 1 << 1 {
        r += 1;
    }
    r
}

/// The bucket a duration in nanoseconds falls in.
#[inline(always)]
pub fn bucket(ns: u64) -> usize {
    if ns < 1 << MIN_SHIFT {
        return (ns >> (MIN_SHIFT - SUB_BITS)) as usize;
    }
    let l = log2(ns);
    let sub = (ns >> (l - SUB_BITS)) & (SUBS - 1);
    let b = SUBS + (l - MIN_SHIFT) as u64 * SUBS + sub;
    if b >= HIST_BUCKETS as u64 {
        HIST_BUCKETS - 1
    } else {
        b as usize
    }
}

/// The half-open range `[low, high)` of durations that land in bucket `b`.
pub fn bucket_bounds(b: usize) -> (u64, u64) {
    let b = b as u64;
    if b < SUBS {
        let width = 1 << (MIN_SHIFT - SUB_BITS);
        return (b * width, (b + 1) * width);
    }
    let l = (b - SUBS) / SUBS + MIN_SHIFT as u64;
    let sub = (b - SUBS) % SUBS;
    let width = 1u64 << (l - SUB_BITS as u64);
    let low = (1u64 << l) + sub * width;
    (low, low + width)
}
