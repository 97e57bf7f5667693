//! Sizes, medians and number formats shared by `ipcx bench` and `ipcx-peers` (which
//! includes this file with `#[path]`: the command is a binary crate, not a library).
//! Plain functions over std only.

/// A message size: a byte count with an optional K or M suffix, from 1 byte to 16 MiB.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1024),
        Some('M' | 'm') => (&t[..t.len() - 1], 1024 * 1024),
        _ => (t, 1),
    };
    match num.parse::<usize>() {
        Ok(n) if n > 0 && n.checked_mul(mult).is_some_and(|b| b <= 16 << 20) => Ok(n * mult),
        _ => Err(format!("size `{s}` is not a byte count from 1 to 16M (like 64, 1K, 64K)")),
    }
}

/// The median and the spread (min, max) of a set of figures; NaN for none.
pub fn median_spread(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (med, s[0], s[n - 1])
}

/// The ratio of two lanes' figures, paired by repetition: the median of `a[i] / b[i]`.
/// Repetitions go round the lanes in turn, so `a[i]` and `b[i]` were taken moments apart;
/// pairing them cancels what changes between rounds (on a virtual machine, where the host
/// places the two CPUs can double a cache-line round trip from one round to the next),
/// which a ratio of two medians would not. Unequal counts fall back to that ratio.
pub fn paired(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return median_spread(a).0 / median_spread(b).0;
    }
    median_spread(&a.iter().zip(b).map(|(x, y)| x / y).collect::<Vec<_>>()).0
}

/// The quartiles (25th and 75th percentiles, interpolated) of the per-repetition ratios
/// `a[i] / b[i]` behind [`paired`]: how far one repetition's ratio strays, so a reader can
/// tell a ratio from its noise. `None` for unequal or empty counts.
pub fn paired_quartiles(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    r.sort_by(|x, y| x.total_cmp(y));
    let at = |q: f64| {
        let pos = q * (r.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        r[lo] + (r[hi] - r[lo]) * (pos - lo as f64)
    };
    Some((at(0.25), at(0.75)))
}

/// One round of measurements in the order to take them: `items` as given on even
/// repetitions, reversed on odd ones, so that no lane is always measured first (or always
/// right after the same others).
pub fn round_order<T>(mut items: Vec<T>, rep: usize) -> Vec<T> {
    if rep % 2 == 1 {
        items.reverse();
    }
    items
}

/// Nanoseconds as ns, µs, ms or s; `-` for NaN.
pub fn fmt_ns(ns: f64) -> String {
    if ns.is_nan() {
        "-".into()
    } else if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Messages per second, to three significant figures with k/M.
pub fn fmt_rate(r: f64) -> String {
    if r.is_nan() {
        "-".into()
    } else if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

/// A byte count as B, KiB or MiB.
pub fn fmt_size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_of_known_figures() {
        assert_eq!(fmt_ns(240.0), "240 ns");
        assert_eq!(fmt_ns(1_380.0), "1.38 µs");
        assert_eq!(fmt_ns(2_170_000.0), "2.17 ms");
        assert_eq!(fmt_ns(3.5e9), "3.50 s");
        assert_eq!(fmt_ns(f64::NAN), "-");
        assert_eq!(fmt_rate(18_430_000.0), "18.43M");
        assert_eq!(fmt_rate(632_300.0), "632.3k");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(fmt_size(65536), "64 KiB");
        assert_eq!(fmt_size(100), "100 B");
        assert_eq!(parse_size("1K"), Ok(1024));
        assert!(parse_size("0").is_err() && parse_size("17M").is_err());
    }
}
