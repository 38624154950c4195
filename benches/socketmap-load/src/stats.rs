//! Latency percentiles and the JSON the script reads: pure, table-tested.

use std::fmt::Write as _;

/// Percentiles of a set of latencies, in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// How many latencies.
    pub count: usize,
    /// Nearest-rank percentiles 50, 90, 99 and 99.9.
    pub p50: u64,
    /// See [`Summary::p50`].
    pub p90: u64,
    /// See [`Summary::p50`].
    pub p99: u64,
    /// See [`Summary::p50`].
    pub p999: u64,
    /// The highest.
    pub max: u64,
    /// The arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// The summary of `values` (sorted here); all zero when there are none.
    pub fn of(values: &mut [u64]) -> Summary {
        values.sort_unstable();
        let count = values.len();
        let mean = if count == 0 {
            0.0
        } else {
            values.iter().map(|&v| v as f64).sum::<f64>() / count as f64
        };
        Summary {
            count,
            p50: nearest_rank(values, 500),
            p90: nearest_rank(values, 900),
            p99: nearest_rank(values, 990),
            p999: nearest_rank(values, 999),
            max: values.last().copied().unwrap_or(0),
            mean,
        }
    }

    /// As a JSON object, in microseconds.
    pub fn json_us(&self) -> String {
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "{{\"count\": {}, \"p50\": {:.2}, \"p90\": {:.2}, \"p99\": {:.2}, \"p999\": {:.2}, \
             \"max\": {:.2}, \"mean\": {:.2}}}",
            self.count,
            us(self.p50),
            us(self.p90),
            us(self.p99),
            us(self.p999),
            us(self.max),
            self.mean / 1000.0
        )
    }
}

/// The nearest-rank percentile of sorted `values`, `per_mille` of 1000 (500 is the median): the
/// smallest value with at least that share of the values at or below it. 0 when empty.
pub fn nearest_rank(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * per_mille)
        .div_ceil(1000)
        .clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let hundred: Vec<u64> = (1..=100).collect();
        let cases: &[(&[u64], usize, u64)] = &[
            (&[], 500, 0),
            (&[7], 500, 7),
            (&[7], 999, 7),
            (&[1, 2], 500, 1),
            (&[1, 2, 3], 500, 2),
            (&hundred, 500, 50),
            (&hundred, 990, 99),
            (&hundred, 999, 100),
            (&hundred, 1000, 100),
        ];
        for (values, per_mille, want) in cases {
            assert_eq!(
                nearest_rank(values, *per_mille),
                *want,
                "{values:?} {per_mille}"
            );
        }
        let mut unsorted = vec![3000, 1000, 2000];
        let s = Summary::of(&mut unsorted);
        assert_eq!((s.count, s.p50, s.max), (3, 2000, 3000));
        assert_eq!(s.mean, 2000.0);
        assert_eq!(
            s.json_us(),
            "{\"count\": 3, \"p50\": 2.00, \"p90\": 3.00, \"p99\": 3.00, \"p999\": 3.00, \
             \"max\": 3.00, \"mean\": 2.00}"
        );
        assert_eq!(Summary::of(&mut []).count, 0);
    }

    #[test]
    fn strings() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(json_string("bücher"), "\"bücher\"");
    }
}
