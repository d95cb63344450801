//! What INFO measures beyond plain counters: per-command latency histograms (`latencystats`)
//! and the rates sampled every 100 ms (`instantaneous_ops_per_sec`, `…_kbps`), both as Redis
//! defines them; and the process's memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

/// Resident memory of this process in bytes, all of it (0 if unknown): INFO's
/// `used_memory_rss`. It counts the pages of the store's memory-mapped data files that reads
/// touched.
pub(crate) fn rss_bytes() -> u64 {
    // SAFETY: sysconf only reads a system setting.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// Memory this process allocated and holds (anonymous resident memory: keys' index, buffers,
/// caches, not the data files' mapped pages), in bytes (0 if unknown): INFO's `used_memory`,
/// and what `maxmemory` is compared with.
pub(crate) fn used_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("RssAnon:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or_else(rss_bytes, |kb| kb * 1024)
}

/// Sub-buckets per power of two: values are kept to 1/16 (about 6 %) precision.
const SUB: u32 = 16;
/// Enough buckets for every `u64`.
const BUCKETS: usize = (64 - 3) * SUB as usize;

/// A latency histogram in nanoseconds, log-linear: exact below 16 ns, then 16 buckets per
/// power of two. Lock-free; about 8 KiB.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The bucket of value `v`.
fn bucket(v: u64) -> usize {
    if v < u64::from(SUB) {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // 4 and up
    let sub = (v >> (e - 4)) & u64::from(SUB - 1);
    ((e - 3) * SUB) as usize + sub as usize
}

/// The largest value of bucket `i`.
fn upper(i: usize) -> u64 {
    if i < SUB as usize {
        return i as u64;
    }
    let e = (i / SUB as usize) as u32 + 3;
    let sub = (i % SUB as usize) as u64;
    let top = (u128::from(u64::from(SUB) + sub + 1) << (e - 4)) - 1;
    u64::try_from(top).unwrap_or(u64::MAX)
}

impl Histogram {
    pub fn record(&self, nanos: u64) {
        self.buckets[bucket(nanos)].fetch_add(1, Ordering::Relaxed);
    }

    /// The value (in µs) at or below which `p` percent of the recorded values are; `None`
    /// when nothing was recorded.
    pub fn percentile_usec(&self, p: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(upper(i) as f64 / 1000.0);
            }
        }
        Some(upper(BUCKETS - 1) as f64 / 1000.0)
    }

    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }
}

/// Samples kept per rate: the rate is their mean (Redis: 16 samples, one per 100 ms).
const SAMPLES: usize = 16;

/// Rates of growth of some counters (commands, bytes in, bytes out), sampled by a timer.
#[derive(Default)]
pub(crate) struct Rates {
    inner: Mutex<RatesInner>,
}

#[derive(Default)]
struct RatesInner {
    last: Option<(Instant, [u64; 3])>,
    samples: [[f64; SAMPLES]; 3],
    next: usize,
}

impl Rates {
    /// Records the counters' current totals: one sample of each rate per second since the
    /// last call.
    pub fn sample(&self, totals: [u64; 3]) {
        let now = Instant::now();
        let mut r = self.inner.lock();
        if let Some((at, before)) = r.last {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                let i = r.next;
                for k in 0..3 {
                    r.samples[k][i] = totals[k].saturating_sub(before[k]) as f64 / secs;
                }
                r.next = (i + 1) % SAMPLES;
            }
        }
        r.last = Some((now, totals));
    }

    /// The mean of each rate's samples, per second.
    pub fn get(&self) -> [f64; 3] {
        let r = self.inner.lock();
        r.samples.map(|s| s.iter().sum::<f64>() / SAMPLES as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values_and_grow_in_order() {
        for v in [
            0,
            1,
            15,
            16,
            17,
            31,
            32,
            33,
            1000,
            123_456,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let i = bucket(v);
            assert!(upper(i) >= v, "{v} above its bucket's bound {}", upper(i));
            if i > 0 {
                assert!(upper(i - 1) < v, "{v} belongs to an earlier bucket");
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles() {
        let h = Histogram::default();
        assert_eq!(h.percentile_usec(50.0), None);
        for ns in 1..=100u64 {
            h.record(ns * 1000);
        }
        let p50 = h.percentile_usec(50.0).unwrap();
        assert!((50.0..=54.0).contains(&p50), "{p50}");
        let p100 = h.percentile_usec(100.0).unwrap();
        assert!((100.0..=104.0).contains(&p100), "{p100}");
        h.reset();
        assert_eq!(h.percentile_usec(99.0), None);
    }

    #[test]
    fn rates_average_their_samples() {
        let r = Rates::default();
        assert_eq!(r.get(), [0.0; 3]);
        r.sample([0, 0, 0]);
        r.sample([10, 0, 5]);
        let [ops, input, _] = r.get();
        assert!(ops > 0.0 && input == 0.0);
    }
}
