//! Keys, values, latencies, memory and disk: what every workload measures the same way.

use std::path::Path;
use std::time::Instant;

/// splitmix64: a fast, well-mixed generator, so keys are random and reproducible.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is negligible for the sizes used here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 16-byte key number `i` of a key set: random-looking bytes, distinct for distinct `i`
/// (the first half alone is a bijection of `i`), so sequential `i` means random key order.
pub fn key(set: u64, i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&mix(i ^ set.rotate_left(40)).to_be_bytes());
    k[8..].copy_from_slice(&mix(i.wrapping_add(set)).to_be_bytes());
    k
}

/// Key set of the data that is written; reads of absent keys use [`ABSENT`].
pub const PRESENT: u64 = 0x5EED_0001;
pub const ABSENT: u64 = 0xAB5E_0002;

/// Incompressible value bytes: slices of one random buffer at varying offsets.
pub struct Values(Vec<u8>);

impl Values {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut buf = vec![0u8; 4 << 20];
        for chunk in buf.chunks_mut(8) {
            let r = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        Values(buf)
    }

    /// The value of operation `op`, `len` bytes (at most 2 MiB).
    pub fn get(&self, op: u64, len: usize) -> &[u8] {
        let span = (self.0.len() - len) as u64;
        let start = (op.wrapping_mul(7919) % span) as usize;
        &self.0[start..start + len]
    }
}

/// Latencies are recorded for one operation in `SAMPLE` (the first, then every SAMPLE-th).
pub const SAMPLE: u32 = 8;

/// Sampled per-operation latencies in nanoseconds, and a call counter.
#[derive(Default)]
pub struct Latencies(Vec<u32>, u32);

impl Latencies {
    pub fn with_capacity(n: usize) -> Self {
        Latencies(Vec::with_capacity(n / SAMPLE as usize + 1), SAMPLE - 1)
    }

    /// Runs `f` and records how long it took, for one call in [`SAMPLE`]: reading the clock
    /// twice per call would cost the fastest engine a few percent of its throughput.
    #[inline]
    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        self.1 = self.1.wrapping_add(1);
        if !self.1.is_multiple_of(SAMPLE) {
            return f();
        }
        let start = Instant::now();
        let out = f();
        let ns = start.elapsed().as_nanos();
        self.0.push(u32::try_from(ns).unwrap_or(u32::MAX));
        out
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// (p50, p99) in nanoseconds, or None when nothing was recorded.
    pub fn percentiles(mut self) -> Option<(u32, u32)> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q).round() as usize];
        Some((at(0.50), at(0.99)))
    }
}

/// Bytes allocated on disk (st_blocks × 512) under `dir`, recursively.
pub fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += disk_bytes(&entry.path());
        } else {
            total += meta.blocks() * 512;
        }
    }
    total
}

/// Peak resident memory of one measured phase: the process's high-water mark is reset at the
/// start (Linux `clear_refs` 5) and read at the end, minus the resident size at the start.
/// It includes pages of memory-mapped files that were touched (caskdb maps its data files).
pub struct PeakMemory {
    base: u64,
}

impl PeakMemory {
    pub fn start() -> Self {
        // Give freed memory of the previous engine back to the OS first.
        // SAFETY: malloc_trim only releases free heap memory.
        unsafe {
            libc::malloc_trim(0);
        }
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        PeakMemory {
            base: status_kib("VmRSS:").unwrap_or(0) * 1024,
        }
    }

    /// Peak growth in bytes, or None where /proc is not available.
    pub fn peak(&self) -> Option<u64> {
        status_kib("VmHWM:").map(|hwm| (hwm * 1024).saturating_sub(self.base))
    }
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
