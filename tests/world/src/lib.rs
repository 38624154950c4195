//! The hermetic test world of mtasts: everything an MTA-STS resolver talks to, on loopback.
//!
//! * [`TestCa`] — a throw-away root CA issuing [`Identity`]s (chain + key) as described by a
//!   [`CertSpec`]: SAN names (wildcards too), expired or not yet valid, CN-only, via an
//!   intermediate; a second `TestCa` is an untrusted CA.
//! * [`DnsServer`] — UDP and TCP on one `127.0.0.1` port, answering from a runtime-mutable
//!   [`Zone`] (TXT with arbitrary character-strings, CNAME chains, A, AAAA, MX, canned
//!   NXDOMAIN / SERVFAIL / REFUSED / timeout), counting queries per name and type.
//! * [`HttpsServer`] — TLS 1.2/1.3 on one `127.0.0.1` port, certificate chosen by SNI, a canned
//!   [`HttpResponse`] per host and path (normal, chunked, lying `Content-Length`, slow drip),
//!   counting handshakes and requests per host.
//! * [`SmtpServer`] — loopback MX hosts speaking enough ESMTP to offer STARTTLS with a test
//!   [`Identity`], or misbehaving as a [`SmtpBehaviour`] says (no STARTTLS, TLS 1.0 only, no
//!   banner, endless lines, …).
//! * [`World`] — all of the above together, populated from [`DomainSpec`]s such as the scenario
//!   domains of `tests/world/world.json` (see the crate README for the JSON vocabulary).
//!
//! Every socket binds a `127.0.0.0/8` address on an ephemeral port; every thread stops when
//! its server is dropped; connections are capped at [`MAX_CONNECTIONS`] per server and have
//! read/write timeouts. Nothing here uses the network or an async runtime.
//!
//! ```no_run
//! use mtasts_testworld::{RecordType, World, WorldSpec};
//!
//! let world = World::from_spec(&WorldSpec::bundled()?)?;
//! // … run the resolver against world.dns_addr(), world.https_port(), world.ca_pem_path() …
//! assert_eq!(world.policy_requests("s02.mtasts.test"), 0);
//! assert!(world.dns().queries("_mta-sts.s01.mtasts.test", RecordType::TXT) <= 2);
//! # Ok::<(), mtasts_testworld::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ca;
mod conns;
mod dns;
mod error;
mod https;
mod redis;
mod smtp;
mod spec;
mod tls;
mod world;

pub use ca::{CertSpec, Identity, TestCa, Validity};
pub use conns::MAX_CONNECTIONS;
pub use dns::{
    Behaviour, DEFAULT_NEGATIVE_TTL, DEFAULT_TTL, DnsServer, QueryLogEntry, RecordData, Transport,
    Zone, ZoneEntry, ZoneRecord,
};
pub use error::Error;
pub use https::{
    BodyMode, HttpResponse, HttpsServer, MAX_BODY, MAX_HEAD, POLICY_PATH, RequestRecord,
};
pub use redis::RedisServer;
pub use smtp::{ReceivedMail, SMTP_SERVER_NAME, SmtpBehaviour, SmtpServer};
pub use spec::{
    AddressSpec, CertCase, DEFAULT_ID, DEFAULT_POLICY, DnsDataSpec, DnsOutcome, DnsRecordSpec,
    DomainSpec, Expect, ExpectedMode, HttpSpec, ModeSpec, Source, TxtSpec, TxtString, WorldSpec,
};
pub use world::{UNREACHABLE_ADDR, World};

/// The DNS record type, re-exported so callers need no direct hickory-proto dependency.
pub use hickory_proto::rr::RecordType;

/// The key under which names are stored and counted: ASCII-lowercase, no trailing dot.
pub(crate) fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
