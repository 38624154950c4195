//! Parsing benchmarks: the policy file, the TXT record, and MX matching.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mtasts_core::{Domain, Policy, Record};

const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n\
                      mx: *.example.net\r\nmx: backup.example.org\r\nmax_age: 604800\r\n";

fn parsing(c: &mut Criterion) {
    c.bench_function("policy_parse", |b| {
        b.iter(|| Policy::parse(black_box(POLICY)).unwrap())
    });
    c.bench_function("record_parse", |b| {
        b.iter(|| Record::parse(black_box("v=STSv1; id=20240101T000000;")).unwrap())
    });
    let policy = Policy::parse(POLICY).unwrap();
    let host = Domain::new("mx1.example.net").unwrap();
    c.bench_function("policy_matches_domain", |b| {
        b.iter(|| policy.matches_domain(black_box(&host)))
    });
    c.bench_function("domain_new_ascii", |b| {
        b.iter(|| Domain::new(black_box("mail.example.com")).unwrap())
    });
}

criterion_group!(benches, parsing);
criterion_main!(benches);
