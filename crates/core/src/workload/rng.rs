//! [`Rng`]: SplitMix64, seeded per worker, so that a run's operations are the same on every backend
//! and every time (`--seed`). Written out rather than taken from `rand`, whose generators may change
//! their streams between versions: a seed must keep meaning the same operations.

/// A small, fast, reproducible generator (SplitMix64, Steele, Lea and Flood 2014).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The generator of worker `worker` in a run seeded with `seed`.
    pub fn for_worker(seed: u64, worker: usize) -> Self {
        let mut rng = Self { state: seed ^ (worker as u64).wrapping_mul(0xA076_1D64_78BD_642F) };
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` above 0); the modulo bias is below 2^-32 for any `n` a run uses.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_means_the_same_numbers_and_workers_differ() {
        let draw = |seed, worker| {
            let mut rng = Rng::for_worker(seed, worker);
            (0..4).map(|_| rng.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 0), draw(7, 0));
        assert_ne!(draw(7, 0), draw(7, 1));
        assert_ne!(draw(7, 0), draw(8, 0));
        assert!(draw(7, 3).iter().all(|n| *n < 1000));
    }
}
