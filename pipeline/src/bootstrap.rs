//! Percentile-bootstrap intervals from a fixed, portable random stream: the same seed gives the
//! same interval on every machine.

/// Resamples per interval.
pub const RESAMPLES: usize = 2000;

/// The 95% percentile-bootstrap interval of `statistic` over [`RESAMPLES`] resamples (with
/// replacement) of `n` items, given as indices. Resamples where the statistic is undefined
/// (`None`) are left out; `[NaN, NaN]` when none is defined.
pub fn interval95(n: usize, seed: u64, mut statistic: impl FnMut(&[usize]) -> Option<f64>) -> [f64; 2] {
    if n == 0 {
        return [f64::NAN, f64::NAN];
    }
    // SplitMix64.
    let mut state = seed ^ 0x5851_f42d_4c95_7f2d;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut idx = vec![0usize; n];
    let mut values: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| {
            idx.iter_mut().for_each(|i| *i = (next() % n as u64) as usize);
            statistic(&idx)
        })
        .collect();
    if values.is_empty() {
        return [f64::NAN, f64::NAN];
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((q * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)];
    [at(0.025), at(0.975)]
}
