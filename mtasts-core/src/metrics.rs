//! What the policy server counts, in the Prometheus text exposition format (version 0.0.4):
//! requests, answers by kind, cache hits, fetches, failures by RFC 8460 result type, and the
//! answer latency as a histogram. Counters only go up; they survive configuration reloads.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ResultType;

/// The kinds of answer the server gives, as the `kind` label says them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerKind {
    /// `OK secure …` (MTA-STS enforce).
    Secure,
    /// `OK dane` or `OK dane-only` (DANE took precedence, R-SRV-6).
    Dane,
    /// `NOTFOUND `.
    NotFound,
    /// `TEMP …`.
    Temp,
    /// `PERM …`.
    Perm,
}

impl AnswerKind {
    const ALL: [AnswerKind; 5] = [
        AnswerKind::Secure,
        AnswerKind::Dane,
        AnswerKind::NotFound,
        AnswerKind::Temp,
        AnswerKind::Perm,
    ];

    /// The label value: `secure`, `dane`, `notfound`, `temp` or `perm`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Secure => "secure",
            AnswerKind::Dane => "dane",
            AnswerKind::NotFound => "notfound",
            AnswerKind::Temp => "temp",
            AnswerKind::Perm => "perm",
        }
    }

    fn index(self) -> usize {
        AnswerKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or_default()
    }
}

/// The upper bounds of the latency histogram's buckets, in seconds (`+Inf` follows).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 10.0,
];

/// The server's counters. Shared by every event loop and lookup thread; each update is one relaxed
/// atomic add (counts, not ordering, are what matter).
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    answers: [AtomicU64; 5],
    cache_hits: AtomicU64,
    fetches: AtomicU64,
    failures: [AtomicU64; ResultType::ALL.len()],
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    connections_closed_on_error: AtomicU64,
    refreshed: AtomicU64,
    refresh_failures: AtomicU64,
}

/// One answered request, as the server reports it to [`Metrics::record`].
#[derive(Clone, Copy, Debug)]
pub struct Answered {
    /// The answer's kind.
    pub kind: AnswerKind,
    /// The policy came from the cache without any network work.
    pub cache_hit: bool,
    /// A policy was fetched to answer.
    pub fetched: bool,
    /// The failure the resolution carried, by RFC 8460 result type.
    pub failure: Option<ResultType>,
    /// From the complete request to the reply.
    pub latency: Duration,
}

impl Metrics {
    /// Counters at zero.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counts one answered request.
    pub fn record(&self, answered: &Answered) {
        let add = |counter: &AtomicU64| {
            counter.fetch_add(1, Ordering::Relaxed);
        };
        add(&self.requests);
        add(&self.answers[answered.kind.index()]);
        if answered.cache_hit {
            add(&self.cache_hits);
        }
        if answered.fetched {
            add(&self.fetches);
        }
        if let Some(kind) = answered.failure
            && let Some(i) = ResultType::ALL.iter().position(|k| *k == kind)
        {
            add(&self.failures[i]);
        }
        let seconds = answered.latency.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| seconds <= le) {
            add(&self.latency_buckets[i]);
        }
        add(&self.latency_count);
        let micros = u64::try_from(answered.latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts a connection taken (`true`) or refused because the server was full (`false`).
    pub fn connection(&self, accepted: bool) {
        let counter = if accepted {
            &self.connections_accepted
        } else {
            &self.connections_refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed for a protocol error (a malformed netstring, an oversized
    /// request, a client too slow).
    pub fn closed_on_error(&self) {
        self.connections_closed_on_error
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one background refresh run's outcome.
    pub fn refreshed(&self, refreshed: usize, failed: usize) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.refreshed
            .fetch_add(count(refreshed), Ordering::Relaxed);
        self.refresh_failures
            .fetch_add(count(failed), Ordering::Relaxed);
    }

    /// The number of connections closed for a protocol error so far.
    pub fn closed_on_errors(&self) -> u64 {
        self.connections_closed_on_error.load(Ordering::Relaxed)
    }

    /// The number of requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text format; `connections_open` is the current number
    /// of connections being served.
    pub fn render(&self, connections_open: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(4096);
        fn family(out: &mut String, name: &str, kind: &str, help: &str) {
            let _ = writeln!(
                out,
                "# HELP mtasts_{name} {help}\n# TYPE mtasts_{name} {kind}"
            );
        }
        family(
            &mut out,
            "requests_total",
            "counter",
            "Socketmap requests answered.",
        );
        let _ = writeln!(out, "mtasts_requests_total {}", get(&self.requests));
        family(&mut out, "answers_total", "counter", "Answers by kind.");
        for kind in AnswerKind::ALL {
            let _ = writeln!(
                out,
                "mtasts_answers_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                get(&self.answers[kind.index()])
            );
        }
        family(
            &mut out,
            "cache_hits_total",
            "counter",
            "Requests answered from the policy cache without network work.",
        );
        let _ = writeln!(out, "mtasts_cache_hits_total {}", get(&self.cache_hits));
        family(
            &mut out,
            "fetches_total",
            "counter",
            "Requests that fetched a policy.",
        );
        let _ = writeln!(out, "mtasts_fetches_total {}", get(&self.fetches));
        family(
            &mut out,
            "failures_total",
            "counter",
            "Failures the answers carried, by RFC 8460 result type.",
        );
        for (i, kind) in ResultType::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "mtasts_failures_total{{result_type=\"{}\"}} {}",
                kind.as_str(),
                get(&self.failures[i])
            );
        }
        family(
            &mut out,
            "answer_seconds",
            "histogram",
            "Time from a complete request to its reply.",
        );
        let mut cumulative = 0;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += get(&self.latency_buckets[i]);
            let _ = writeln!(
                out,
                "mtasts_answer_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(out, "mtasts_answer_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = get(&self.latency_micros) as f64 / 1e6;
        let _ = writeln!(out, "mtasts_answer_seconds_sum {sum}");
        let _ = writeln!(out, "mtasts_answer_seconds_count {count}");
        family(
            &mut out,
            "connections_open",
            "gauge",
            "Client connections being served.",
        );
        let _ = writeln!(out, "mtasts_connections_open {connections_open}");
        family(
            &mut out,
            "connections_total",
            "counter",
            "Client connections, by what became of them.",
        );
        for (outcome, counter) in [
            ("accepted", &self.connections_accepted),
            ("refused", &self.connections_refused),
            ("closed_on_error", &self.connections_closed_on_error),
        ] {
            let _ = writeln!(
                out,
                "mtasts_connections_total{{outcome=\"{outcome}\"}} {}",
                get(counter)
            );
        }
        family(
            &mut out,
            "refreshes_total",
            "counter",
            "Policies renewed by the background refresh, by outcome.",
        );
        let _ = writeln!(
            out,
            "mtasts_refreshes_total{{outcome=\"refreshed\"}} {}\nmtasts_refreshes_total{{outcome=\"failed\"}} {}",
            get(&self.refreshed),
            get(&self.refresh_failures)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    }

    #[test]
    fn counts_show_in_the_exposition_format() {
        let metrics = Metrics::new();
        let answered = |kind, latency_us, failure| Answered {
            kind,
            cache_hit: kind == AnswerKind::Secure,
            fetched: kind == AnswerKind::Temp,
            failure,
            latency: Duration::from_micros(latency_us),
        };
        metrics.record(&answered(AnswerKind::Secure, 8, None));
        metrics.record(&answered(AnswerKind::Secure, 30, None));
        metrics.record(&answered(
            AnswerKind::Temp,
            2_000_000,
            Some(ResultType::StsPolicyFetchError),
        ));
        metrics.record(&answered(AnswerKind::NotFound, 20_000_000, None));
        metrics.connection(true);
        metrics.connection(false);
        let text = metrics.render(3);
        assert_eq!(value(&text, "mtasts_requests_total"), 4);
        assert_eq!(value(&text, "mtasts_answers_total{kind=\"secure\"}"), 2);
        assert_eq!(value(&text, "mtasts_answers_total{kind=\"temp\"}"), 1);
        assert_eq!(value(&text, "mtasts_answers_total{kind=\"dane\"}"), 0);
        assert_eq!(value(&text, "mtasts_cache_hits_total"), 2);
        assert_eq!(value(&text, "mtasts_fetches_total"), 1);
        assert_eq!(
            value(
                &text,
                "mtasts_failures_total{result_type=\"sts-policy-fetch-error\"}"
            ),
            1
        );
        // Cumulative buckets: 8 µs ≤ 10 µs; 30 µs ≤ 50 µs; 2 s ≤ 10 s; 20 s only in +Inf.
        assert_eq!(
            value(&text, "mtasts_answer_seconds_bucket{le=\"0.00001\"}"),
            1
        );
        assert_eq!(
            value(&text, "mtasts_answer_seconds_bucket{le=\"0.00005\"}"),
            2
        );
        assert_eq!(value(&text, "mtasts_answer_seconds_bucket{le=\"1\"}"), 2);
        assert_eq!(value(&text, "mtasts_answer_seconds_bucket{le=\"10\"}"), 3);
        assert_eq!(value(&text, "mtasts_answer_seconds_bucket{le=\"+Inf\"}"), 4);
        assert_eq!(value(&text, "mtasts_answer_seconds_count"), 4);
        assert_eq!(value(&text, "mtasts_connections_open"), 3);
        assert_eq!(
            value(&text, "mtasts_connections_total{outcome=\"refused\"}"),
            1
        );
        // Every sample line belongs to a family announced with HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{line}: no TYPE for {base}"
            );
        }
    }
}
