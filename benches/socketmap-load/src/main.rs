//! `socketmap-load`: a load generator for socketmap TLS-policy servers (`mtasts serve`,
//! postfix-mta-sts-resolver's `mta-sts-daemon`), for `benches/compare --only socketmap`.
//!
//! N connections, each on a thread of its own, over a Unix or TCP socket; request/reply (one
//! request at a time per connection, as Postfix asks) or pipelined; bounded by a count, a time
//! and a deadline. It prints one JSON line: requests per second, latency percentiles, the
//! connect-to-first-answer time, and the replies by class. `--fixed-server` serves instead: a
//! server that does no work, the floor a real one is compared with. `--help` has the options.
//! The standard library only: its netstring reader is independent of the server it measures.

use std::process::ExitCode;
use std::thread;
use std::time::Instant;

mod args;
mod event_loop;
mod fixed;
mod load;
mod stats;
mod wire;

use args::{Options, Parsed, Server};
use stats::{Summary, json_string};
use wire::Answer;

fn main() -> ExitCode {
    let o = match args::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Fixed { server, reply }) => {
            return match fixed::serve(&server, &reply) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("socketmap-load: --fixed-server: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(Parsed::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("socketmap-load: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let domains = match std::fs::read_to_string(&o.domains) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("socketmap-load: {}: {e}", o.domains.display());
            return ExitCode::from(2);
        }
    };
    if domains.is_empty() {
        eprintln!("socketmap-load: {}: no domains", o.domains.display());
        return ExitCode::from(2);
    }
    // The whole run is bounded, whatever the server does (each read and write is too).
    let deadline = o.deadline;
    thread::spawn(move || {
        thread::sleep(deadline);
        eprintln!("socketmap-load: past the deadline of {deadline:?}; stopped");
        std::process::exit(3);
    });
    let started = Instant::now();
    let outcome = if o.event_loop {
        event_loop::run(&o, &domains)
    } else {
        load::run(&o, &domains)
    };
    let report = Report::new(&o, outcome, started.elapsed().as_secs_f64());
    if o.text {
        print!("{}", report.text());
    } else {
        println!("{}", report.json());
    }
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The figures of a run.
struct Report {
    server: String,
    connections: usize,
    depth: usize,
    once: bool,
    domains_asked: u64,
    wall: f64,
    total: f64,
    timed: bool,
    latency: Summary,
    first_reply: Summary,
    answers: [u64; 6],
    errors: Vec<String>,
}

impl Report {
    fn new(o: &Options, outcome: load::Outcome, total: f64) -> Report {
        let mut latencies = Vec::new();
        let mut first = Vec::new();
        let mut answers = [0u64; 6];
        let mut errors = Vec::new();
        let mut timed = false;
        for (i, c) in outcome.conns.into_iter().enumerate() {
            latencies.extend_from_slice(&c.latencies);
            first.extend(c.first_reply);
            for (sum, n) in answers.iter_mut().zip(c.answers) {
                *sum += n;
            }
            if let Some(e) = c.error {
                errors.push(format!("connection {i}: {e}"));
            }
            timed |= c.timed;
        }
        Report {
            server: match &o.server {
                Server::Unix(p) => format!("unix:{}", p.display()),
                Server::Tcp(a) => format!("tcp:{a}"),
            },
            connections: o.connections,
            depth: o.depth,
            once: o.once,
            domains_asked: latencies.len() as u64,
            wall: outcome.wall.as_secs_f64(),
            total,
            timed,
            latency: Summary::of(&mut latencies),
            first_reply: Summary::of(&mut first),
            answers,
            errors,
        }
    }

    fn mode(&self) -> &'static str {
        if self.depth == 1 {
            "request/reply"
        } else {
            "pipelined"
        }
    }

    fn qps(&self) -> f64 {
        if self.wall > 0.0 {
            self.domains_asked as f64 / self.wall
        } else {
            0.0
        }
    }

    fn json(&self) -> String {
        let answers: Vec<String> = Answer::ALL
            .iter()
            .filter(|a| self.answers[a.index()] > 0)
            .map(|a| format!("{}: {}", json_string(a.label()), self.answers[a.index()]))
            .collect();
        let samples: Vec<String> = self.errors.iter().take(3).map(|e| json_string(e)).collect();
        format!(
            "{{\"server\": {}, \"mode\": \"{}\", \"connections\": {}, \"depth\": {}, \
             \"once\": {}, \"requests\": {}, \"wall\": {:.6}, \"total_wall\": {:.6}, \
             \"qps\": {:.1}, \"stopped_by_time\": {}, \"latency_us\": {}, \
             \"first_reply_us\": {}, \"answers\": {{{}}}, \"errors\": {}, \
             \"error_samples\": [{}]}}",
            json_string(&self.server),
            self.mode(),
            self.connections,
            self.depth,
            self.once,
            self.domains_asked,
            self.wall,
            self.total,
            self.qps(),
            self.timed,
            self.latency.json_us(),
            self.first_reply.json_us(),
            answers.join(", "),
            self.errors.len(),
            samples.join(", ")
        )
    }

    fn text(&self) -> String {
        let us = |ns: u64| ns as f64 / 1000.0;
        let l = &self.latency;
        let mut out = format!(
            "{}: {} connections, {}{}\n  {} requests in {:.3} s: {:.0} requests/s\n  \
             latency p50 {:.1} us, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}\n  \
             connect to first answer: p50 {:.1} us, max {:.1}\n  answers:",
            self.server,
            self.connections,
            self.mode(),
            if self.depth > 1 {
                format!(" (depth {})", self.depth)
            } else {
                String::new()
            },
            self.domains_asked,
            self.wall,
            self.qps(),
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p999),
            us(l.max),
            us(self.first_reply.p50),
            us(self.first_reply.max),
        );
        for a in Answer::ALL {
            if self.answers[a.index()] > 0 {
                out.push_str(&format!(" {} {}", a.label(), self.answers[a.index()]));
            }
        }
        out.push('\n');
        if self.once {
            out.push_str("  (every domain once)\n");
        }
        for e in self.errors.iter().take(3) {
            out.push_str(&format!("  error: {e}\n"));
        }
        out
    }
}
