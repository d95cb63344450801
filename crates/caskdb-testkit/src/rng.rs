//! The one seeded random generator of the tests, fuzz harnesses and benchmarks.

/// A small deterministic generator (SplitMix64): every run is reproducible from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose every output follows from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `0..len` (`len > 0`): an index into something `len` long.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// One of `items` (not empty), uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo) as u64 + 1) as usize
    }

    /// True `num` times out of `den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// The number in the environment variable `var` (decimal, or hexadecimal after `0x`), if set:
/// how a test takes a seed to replay or a number of rounds for a soak.
///
/// # Panics
/// If `var` is set to something else than a number.
pub fn env_u64(var: &str) -> Option<u64> {
    let v = std::env::var(var).ok()?;
    let s = v.trim();
    let n = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    Some(n.unwrap_or_else(|_| panic!("{var} must be a number, got {v:?}")))
}

/// The seed in `var` (see [`env_u64`]), or a new one from the clock; the test prints it, so
/// that a failure can be replayed.
pub fn seed(var: &str) -> u64 {
    env_u64(var).unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        mix(t)
    })
}

/// SplitMix64 as a pure function: a well-mixed hash of `x`, so that (seed, n) pairs give
/// independent-looking streams without carrying a generator around.
pub fn mix(x: u64) -> u64 {
    Rng(x).next_u64()
}
