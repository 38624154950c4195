//! OpenSMTPD tables: the two protocols smtpd speaks to a table backend, and what an MTA-STS
//! table answers (rules R-SMTPD-1 to R-SMTPD-4 in the rules file).
//!
//! OpenSMTPD has no outbound hook but its tables and the `relay` action's options. The
//! integration (`integrations/opensmtpd`) gives smtpd two tables backed by `table-mtasts`:
//!
//! - `match for domain <mtasts> action "mtasts"` with `action "mtasts" relay tls domain
//!   <mtasts>`: the domains known to enforce MTA-STS, sent with verified STARTTLS to a policy
//!   MX host the table picks at each delivery attempt ([`TableRole::Enforce`]);
//! - `match for domain <mtasts_late> action "mtasts_late"` with `relay domain <mtasts_late>`:
//!   the domains that could not be classified when the message was queued; at each delivery
//!   attempt the table answers a verified `smtp+tls://` host for an enforce domain, a plain
//!   one otherwise, and an error (the message waits) while it still cannot tell
//!   ([`TableRole::Late`]).
//!
//! Everything else goes to the site's usual relay action.
//!
//! The protocols are pure parsers and printers: OpenSMTPD 6.x's binary imsg protocol
//! (`PROC_TABLE_API_VERSION` 2: [`read_frame`], [`V6Message`], [`v6_reply`]) and OpenSMTPD
//! 7.6's line protocol (smtpd-tables(7): [`V7Line`], [`v7_reply`], [`v7_register`]).

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::dns::DnsAnswer;
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::mx::MxRecord;
use crate::policy::Mode;
use crate::resolution::Resolution;
use crate::resolver::Resolver;
use crate::verdict::MxPlan;
use crate::within::run_within;

/// The 6.x table API version this backend speaks (`PROC_TABLE_API_VERSION`).
pub const V6_API_VERSION: u32 = 2;
/// The size of a 6.x imsg header.
pub const V6_HEADER: usize = 16;
/// The largest 6.x imsg, header included (`MAX_IMSGSIZE`).
pub const V6_MAX_FRAME: usize = 16_384;
/// The 7.x protocol version this backend speaks.
pub const V7_PROTOCOL: &str = "0.1";
/// The longest key answered; smtpd itself refuses keys of 1024 bytes and more.
pub const MAX_KEY: usize = 1023;
/// The longest 7.x line read.
pub const V7_MAX_LINE: usize = 4096;

/// Why a table message could not be read. The backend must not answer it: smtpd treats any
/// malformed reply as fatal, so the caller logs this and stops reading.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableProtocolError {
    /// A 6.x frame whose length field is shorter than its header or longer than allowed.
    BadLength(usize),
    /// A 6.x message of an unknown type.
    UnknownType(u32),
    /// A message whose payload does not have the shape its type needs.
    Malformed(String),
    /// smtpd speaks a table API or protocol version other than this backend's.
    Version(String),
}

impl fmt::Display for TableProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableProtocolError::BadLength(n) => write!(f, "a table message of length {n}"),
            TableProtocolError::UnknownType(t) => write!(f, "a table message of unknown type {t}"),
            TableProtocolError::Malformed(why) => write!(f, "a malformed table message: {why}"),
            TableProtocolError::Version(v) => write!(f, "an unsupported table protocol: {v}"),
        }
    }
}

impl std::error::Error for TableProtocolError {}

/// What smtpd asks a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableOp {
    /// Is the key in the table (`match for domain <t>`)?
    Check,
    /// The key's value (`relay domain <t>`).
    Lookup,
    /// Any value, without a key (`relay host <t>`).
    Fetch,
    /// Reload the table (`smtpctl update table`).
    Update,
}

/// The kind of data smtpd asks for (its `K_*` services).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableService {
    /// `domain` (K_DOMAIN): recipient domains, for `match for domain`.
    Domain,
    /// `relayhost` (K_RELAYHOST): the relay URL for a domain, for `relay domain`.
    RelayHost,
    /// Any other service, as smtpd names it (7.x) or numbers it (6.x).
    Other(String),
}

impl TableService {
    /// The 6.x service number (`K_DOMAIN` 0x002, `K_RELAYHOST` 0x200).
    fn from_v6(number: i32) -> TableService {
        match number {
            0x002 => TableService::Domain,
            0x200 => TableService::RelayHost,
            n => TableService::Other(format!("0x{n:03x}")),
        }
    }

    /// The 7.x service name.
    fn from_v7(name: &str) -> TableService {
        match name {
            "domain" => TableService::Domain,
            "relayhost" => TableService::RelayHost,
            other => TableService::Other(other.to_string()),
        }
    }
}

/// One question from smtpd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableQuery {
    /// What is asked.
    pub op: TableOp,
    /// For which service (none for [`TableOp::Update`]).
    pub service: Option<TableService>,
    /// The key (check and lookup).
    pub key: Option<String>,
    /// The request id (7.x), repeated in the reply.
    pub id: Option<String>,
}

/// The table's answer to one [`TableQuery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableAnswer {
    /// Found; with the value for lookup and fetch.
    Found(Option<String>),
    /// Not in the table.
    NotFound,
    /// Cannot answer now: smtpd takes it as a temporary failure (a queued message waits; a
    /// recipient being accepted gets a 451). The text is for the log.
    Error(String),
}

// ---------------------------------------------------------------------------------------
// OpenSMTPD 6.x: imsg frames on the backend's standard input (native byte order).

/// 6.x message types (`PROC_TABLE_*`).
const V6_OK: u32 = 0;
const V6_OPEN: u32 = 2;
const V6_CLOSE: u32 = 3;
const V6_UPDATE: u32 = 4;
const V6_CHECK: u32 = 5;
const V6_LOOKUP: u32 = 6;
const V6_FETCH: u32 = 7;

/// One 6.x imsg: its type and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V6Frame {
    /// The message type.
    pub kind: u32,
    /// The payload after the header.
    pub payload: Vec<u8>,
}

/// A 6.x message, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum V6Message {
    /// The first message: smtpd's table API version and the table name.
    Open {
        /// `PROC_TABLE_API_VERSION` of smtpd.
        version: u32,
        /// The table's name in smtpd.conf.
        name: String,
    },
    /// A question.
    Query(TableQuery),
    /// smtpd closes the table: no reply, stop.
    Close,
}

/// The first complete 6.x frame in `buf` and the bytes it used, `None` when more bytes are
/// needed.
///
/// # Errors
/// A length field outside [16, 16384].
pub fn read_frame(buf: &[u8]) -> Result<Option<(V6Frame, usize)>, TableProtocolError> {
    if buf.len() < V6_HEADER {
        return Ok(None);
    }
    let kind = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = usize::from(u16::from_ne_bytes([buf[4], buf[5]]));
    if !(V6_HEADER..=V6_MAX_FRAME).contains(&len) {
        return Err(TableProtocolError::BadLength(len));
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some((
        V6Frame {
            kind,
            payload: buf[V6_HEADER..len].to_vec(),
        },
        len,
    )))
}

/// A NUL-terminated string at the start of `bytes` (the rest must be empty).
fn c_string(bytes: &[u8], what: &str) -> Result<String, TableProtocolError> {
    let Some(end) = bytes.iter().position(|&b| b == 0) else {
        return Err(TableProtocolError::Malformed(format!(
            "{what} is not NUL-terminated"
        )));
    };
    if end > MAX_KEY {
        return Err(TableProtocolError::Malformed(format!(
            "{what} of {end} bytes"
        )));
    }
    String::from_utf8(bytes[..end].to_vec())
        .map_err(|_| TableProtocolError::Malformed(format!("{what} is not UTF-8")))
}

impl V6Frame {
    /// The message this frame carries.
    ///
    /// # Errors
    /// An unknown type, or a payload that does not fit its type.
    pub fn message(&self) -> Result<V6Message, TableProtocolError> {
        let p = &self.payload;
        let short = |what: &str| TableProtocolError::Malformed(format!("{what}: too short"));
        // service (i32) and the parameter count (size_t, 0 here: smtpd sends no parameters).
        let service = || -> Result<TableService, TableProtocolError> {
            let bytes: [u8; 4] = p
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| short("service"))?;
            Ok(TableService::from_v6(i32::from_ne_bytes(bytes)))
        };
        let query = |op: TableOp, keyed: bool| -> Result<V6Message, TableProtocolError> {
            let service = service()?;
            let rest = p.get(12..).ok_or_else(|| short("parameters"))?;
            let key = if keyed {
                Some(c_string(rest, "the key")?)
            } else {
                None
            };
            Ok(V6Message::Query(TableQuery {
                op,
                service: Some(service),
                key,
                id: None,
            }))
        };
        match self.kind {
            V6_OPEN => {
                let bytes: [u8; 4] = p
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| short("open"))?;
                let version = u32::from_ne_bytes(bytes);
                let name = c_string(&p[4..], "the table name")?;
                Ok(V6Message::Open { version, name })
            }
            V6_CLOSE => Ok(V6Message::Close),
            V6_UPDATE => Ok(V6Message::Query(TableQuery {
                op: TableOp::Update,
                service: None,
                key: None,
                id: None,
            })),
            V6_CHECK => query(TableOp::Check, true),
            V6_LOOKUP => query(TableOp::Lookup, true),
            V6_FETCH => query(TableOp::Fetch, false),
            kind => Err(TableProtocolError::UnknownType(kind)),
        }
    }
}

/// A 6.x frame: header and payload.
fn v6_frame(kind: u32, payload: &[u8]) -> Vec<u8> {
    let len = V6_HEADER + payload.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes()); // flags
    out.extend_from_slice(&0u32.to_ne_bytes()); // peer id
    out.extend_from_slice(&0u32.to_ne_bytes()); // pid
    out.extend_from_slice(payload);
    out
}

/// The reply to [`V6Message::Open`]: an empty OK.
pub fn v6_open_ok() -> Vec<u8> {
    v6_frame(V6_OK, &[])
}

/// The 6.x reply to `query`: always an OK message (anything else stops smtpd) carrying
/// 1 (found, with the value for lookup and fetch), 0 (not found) or -1 (error).
pub fn v6_reply(query: &TableQuery, answer: &TableAnswer) -> Vec<u8> {
    let mut payload = Vec::new();
    match answer {
        TableAnswer::Found(value) => {
            payload.extend_from_slice(&1i32.to_ne_bytes());
            if matches!(query.op, TableOp::Lookup | TableOp::Fetch) {
                let Some(value) = value
                    .as_deref()
                    .filter(|v| !v.is_empty() && !v.contains('\0'))
                else {
                    // A lookup needs a value; without one the honest answer is an error.
                    return v6_frame(V6_OK, &(-1i32).to_ne_bytes());
                };
                payload.extend_from_slice(value.as_bytes());
                payload.push(0);
            }
        }
        TableAnswer::NotFound => payload.extend_from_slice(&0i32.to_ne_bytes()),
        TableAnswer::Error(_) => payload.extend_from_slice(&(-1i32).to_ne_bytes()),
    }
    v6_frame(V6_OK, &payload)
}

// ---------------------------------------------------------------------------------------
// OpenSMTPD 7.6 and later: lines on standard input and output (smtpd-tables(7)).

/// One line from smtpd, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum V7Line {
    /// `config|KEY|VALUE` of the handshake (`smtpd-version`, `protocol`, `tablename`).
    Config {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// `config|ready`: the backend now registers its services.
    ConfigReady,
    /// `table|0.1|TIMESTAMP|TABLE|OP|…`: a question.
    Query {
        /// The table name.
        table: String,
        /// The question.
        query: TableQuery,
    },
}

impl V7Line {
    /// Parses one line (without its newline).
    ///
    /// # Errors
    /// A line that is not one of the protocol's, another protocol version, or a key over
    /// [`MAX_KEY`] bytes.
    pub fn parse(line: &str) -> Result<V7Line, TableProtocolError> {
        let bad = |why: &str| TableProtocolError::Malformed(format!("{why}: {line:?}"));
        if line.len() > V7_MAX_LINE {
            return Err(TableProtocolError::Malformed(format!(
                "a line of {} bytes",
                line.len()
            )));
        }
        if line == "config|ready" {
            return Ok(V7Line::ConfigReady);
        }
        if let Some(rest) = line.strip_prefix("config|") {
            let (key, value) = rest
                .split_once('|')
                .ok_or_else(|| bad("config without a value"))?;
            if key == "protocol" && value != V7_PROTOCOL {
                return Err(TableProtocolError::Version(format!("protocol {value}")));
            }
            return Ok(V7Line::Config {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
        let Some(rest) = line.strip_prefix("table|") else {
            return Err(bad("neither config nor table"));
        };
        // table|VERSION|TIMESTAMP|TABLE|OP|… ; only the last field may hold '|'.
        let mut fields = rest.splitn(4, '|');
        let version = fields.next().unwrap_or_default();
        if version != V7_PROTOCOL {
            return Err(TableProtocolError::Version(format!("protocol {version}")));
        }
        let _timestamp = fields.next().ok_or_else(|| bad("no timestamp"))?;
        let table = fields
            .next()
            .ok_or_else(|| bad("no table name"))?
            .to_string();
        let rest = fields.next().ok_or_else(|| bad("no operation"))?;
        let (op, rest) = rest.split_once('|').ok_or_else(|| bad("no request id"))?;
        let query = match op {
            "check" | "lookup" => {
                let mut parts = rest.splitn(3, '|');
                let service = parts.next().unwrap_or_default();
                let id = parts.next().ok_or_else(|| bad("no request id"))?;
                let key = parts.next().ok_or_else(|| bad("no key"))?;
                if key.len() > MAX_KEY {
                    return Err(TableProtocolError::Malformed(format!(
                        "a key of {} bytes",
                        key.len()
                    )));
                }
                TableQuery {
                    op: if op == "check" {
                        TableOp::Check
                    } else {
                        TableOp::Lookup
                    },
                    service: Some(TableService::from_v7(service)),
                    key: Some(key.to_string()),
                    id: Some(valid_id(id).ok_or_else(|| bad("a bad request id"))?),
                }
            }
            "fetch" => {
                let (service, id) = rest.split_once('|').ok_or_else(|| bad("no request id"))?;
                TableQuery {
                    op: TableOp::Fetch,
                    service: Some(TableService::from_v7(service)),
                    key: None,
                    id: Some(valid_id(id).ok_or_else(|| bad("a bad request id"))?),
                }
            }
            "update" => TableQuery {
                op: TableOp::Update,
                service: None,
                key: None,
                id: Some(valid_id(rest).ok_or_else(|| bad("a bad request id"))?),
            },
            _ => return Err(bad("an unknown operation")),
        };
        Ok(V7Line::Query { table, query })
    }
}

/// A request id as smtpd writes it (hexadecimal digits).
fn valid_id(id: &str) -> Option<String> {
    (!id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| id.to_string())
}

/// The lines that end the handshake: one `register|SERVICE` each, then `register|ready`.
pub fn v7_register(services: &[&str]) -> String {
    let mut out = String::new();
    for service in services {
        out.push_str("register|");
        out.push_str(service);
        out.push('\n');
    }
    out.push_str("register|ready\n");
    out
}

/// The 7.x reply line to `query` (with its newline). A lookup or fetch answered found
/// without a value, or with one smtpd could not take (empty, a newline), is an error.
pub fn v7_reply(query: &TableQuery, answer: &TableAnswer) -> String {
    let id = query.id.as_deref().unwrap_or("0");
    let op = match query.op {
        TableOp::Check => "check-result",
        TableOp::Lookup => "lookup-result",
        TableOp::Fetch => "fetch-result",
        TableOp::Update => "update-result",
    };
    let error = |why: &str| {
        let why: String = why
            .chars()
            .map(|c| if c.is_control() || c == '|' { ' ' } else { c })
            .collect();
        format!("{op}|{id}|error|{why}\n")
    };
    match (query.op, answer) {
        (TableOp::Update, TableAnswer::Error(why)) => error(why),
        (TableOp::Update, _) => format!("{op}|{id}|ok\n"),
        (TableOp::Check, TableAnswer::Found(_)) => format!("{op}|{id}|found\n"),
        (_, TableAnswer::Found(Some(value)))
            if !value.is_empty() && !value.contains(['\n', '\r']) =>
        {
            format!("{op}|{id}|found|{value}\n")
        }
        (_, TableAnswer::Found(_)) => error("no value"),
        (_, TableAnswer::NotFound) => format!("{op}|{id}|not-found\n"),
        (_, TableAnswer::Error(why)) => error(why),
    }
}

// ---------------------------------------------------------------------------------------
// The answers.

/// Which of the two tables a backend serves (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableRole {
    /// `<mtasts>`: the domains known to enforce a policy; its relay action has `tls`.
    Enforce,
    /// `<mtasts_late>`: the domains not classified when queued; its relay action has no `tls`
    /// and the table picks the scheme at each attempt.
    Late,
}

/// R-SMTPD-1: the answer to `check domain` at enqueue. `resolution` is `None` when it was
/// not known within the table's bound.
///
/// - [`TableRole::Enforce`]: found when the domain is known to enforce (or to be `testing`
///   under strict testing); otherwise not found, and the next rule decides.
/// - [`TableRole::Late`]: found unless the domain is known to need nothing (`testing`,
///   `none`, no policy): so a domain that cannot be told now (not known in time, cache
///   unreadable) is queued for the late action, which defers while it still cannot tell —
///   never the usual relay, which might deliver in clear.
pub fn check_answer(
    role: TableRole,
    resolution: Option<&Resolution>,
    strict_testing: bool,
) -> TableAnswer {
    let enforced = resolution.map(|r| {
        r.applicable_policy()
            .map(|p| enforces(p.map(|p| p.mode()), strict_testing))
    });
    match (role, enforced) {
        (TableRole::Enforce, Some(Ok(true))) => TableAnswer::Found(None),
        (TableRole::Enforce, _) => TableAnswer::NotFound,
        (TableRole::Late, Some(Ok(false))) => TableAnswer::NotFound,
        (TableRole::Late, _) => TableAnswer::Found(None),
    }
}

fn enforces(mode: Option<Mode>, strict_testing: bool) -> bool {
    match mode {
        Some(Mode::Enforce) => true,
        Some(Mode::Testing) => strict_testing,
        Some(Mode::None) | None => false,
    }
}

/// R-SMTPD-2, R-SMTPD-3: the answer to `lookup relayhost` at each delivery attempt: a relay
/// URL naming one MX host.
///
/// `resolution` is `None` when not known within the table's bound, `mx` the domain's MX
/// records (sorted by preference; `Err` when they could not be had), and `attempt` counts the
/// lookups for the domain so far, so that later attempts take the next usable host (fail-over
/// at smtpd's retry interval, since smtpd tries only the host it is given).
///
/// - Enforcing (`enforce`, or `testing` under strict testing): `smtp+tls://HOST:25` for a
///   host the policy allows (R-MX-2; the certificate is then verified for that host by smtpd);
///   no such host: an error, the message waits (R-APPLY-1: never bounce, never use another).
/// - Nothing to enforce: under [`TableRole::Late`] `smtp://HOST:25` (opportunistic, as the
///   usual relay would); under [`TableRole::Enforce`] (the policy changed after the message
///   was queued) `smtp+tls://HOST:25` all the same, since its action requires TLS anyway.
/// - Not known in time, or whether a policy applies cannot be told: an error (the message
///   waits in the queue; never fail open).
pub fn relay_answer(
    role: TableRole,
    resolution: Option<&Resolution>,
    mx: Result<&[MxRecord], String>,
    strict_testing: bool,
    attempt: usize,
) -> TableAnswer {
    let Some(resolution) = resolution else {
        return TableAnswer::Error("the MTA-STS policy is not known yet".into());
    };
    let policy = match resolution.applicable_policy() {
        Ok(policy) => policy,
        Err(e) => return TableAnswer::Error(format!("{}: {e}", resolution.domain())),
    };
    let mx = match mx {
        Ok(mx) => mx,
        Err(why) => return TableAnswer::Error(why),
    };
    if mx.iter().any(|r| r.exchange.is_empty()) {
        return TableAnswer::Error(format!("{}: null MX: accepts no mail", resolution.domain()));
    }
    let enforcing = enforces(policy.map(|p| p.mode()), strict_testing);
    let plan = MxPlan::new(policy, resolution.domain(), mx);
    // `enforce` skips the hosts outside the policy already; under strict testing a `testing`
    // policy's patterns decide as well.
    let hosts: Vec<&str> = plan
        .usable
        .iter()
        .map(|u| u.host.as_str())
        .filter(|host| !enforcing || policy.is_some_and(|p| p.matches(host)))
        .collect();
    if hosts.is_empty() {
        return TableAnswer::Error(format!(
            "{}: no MX host matches the MTA-STS policy",
            resolution.domain()
        ));
    }
    let host = hosts[attempt % hosts.len()];
    let scheme = if enforcing || role == TableRole::Enforce {
        "smtp+tls"
    } else {
        "smtp"
    };
    TableAnswer::Found(Some(format!("{scheme}://{host}:25")))
}

// ---------------------------------------------------------------------------------------
// The backend: settings, answers within the bound, the protocol loops.

/// The prefix of the table backend's keys in the settings file.
pub const SMTPD_PREFIX: &str = "smtpd.";
/// The longest `smtpd.timeout`: smtpd is frozen while it waits for a table.
pub const MAX_TABLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The table backend's settings: the `smtpd.*` keys of the settings file.
///
/// | key | value | default |
/// |---|---|---|
/// | `smtpd.timeout` | seconds a lookup may take before it is answered without the network (R-SMTPD-4); at most 10 | 1 |
/// | `smtpd.strict_testing` | `yes`/`no`: apply `testing` policies as `enforce` | `no` |
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpdSettings {
    /// How long a lookup may take (`smtpd.timeout`).
    pub timeout: Duration,
    /// Apply `testing` as `enforce` (`smtpd.strict_testing`).
    pub strict_testing: bool,
}

impl Default for SmtpdSettings {
    fn default() -> SmtpdSettings {
        SmtpdSettings {
            timeout: Duration::from_secs(1),
            strict_testing: false,
        }
    }
}

impl SmtpdSettings {
    /// Applies one `smtpd.*` setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key, for an unknown key or a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        let bad = |why: &str| Error::Config {
            reason: format!("{key} = {value:?}: {why}"),
        };
        match key {
            "smtpd.timeout" => {
                let timeout = crate::config::parse_seconds(value, false).map_err(|e| bad(&e))?;
                if timeout > MAX_TABLE_TIMEOUT {
                    return Err(bad("at most 10 seconds: smtpd waits for its tables"));
                }
                self.timeout = timeout;
            }
            "smtpd.strict_testing" => {
                self.strict_testing = crate::config::parse_yes_no(value).map_err(|e| bad(&e))?;
            }
            _ => {
                return Err(Error::Config {
                    reason: format!(
                        "unknown setting {key:?} (known: smtpd.timeout, smtpd.strict_testing)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Applies the `smtpd.*` lines of settings text (the resolver's keys are
    /// [`Config`](crate::Config)'s); `origin` names the text in errors.
    ///
    /// # Errors
    /// A bad `smtpd.*` line, named with its line number; the settings are then unchanged.
    pub fn load_str(&mut self, text: &str, origin: &str) -> Result<()> {
        crate::config::load_section(self, text, origin, SMTPD_PREFIX, SmtpdSettings::set)
    }
}

/// The role a table plays, from its name in smtpd.conf: a name ending in `_late` (or
/// `-late`) is the late table, any other the enforce table.
pub fn table_role(name: &str) -> TableRole {
    if name.ends_with("_late") || name.ends_with("-late") {
        TableRole::Late
    } else {
        TableRole::Enforce
    }
}

/// The services a backend registers (7.x) and answers.
pub const TABLE_SERVICES: [&str; 2] = ["domain", "relayhost"];

/// One table backend: smtpd starts one process per table declaration, each answering from
/// the shared cache (R-SMTPD-4).
#[derive(Debug)]
pub struct SmtpdTable {
    /// `Err`: no resolver could be built (the reason); every answer is then "cannot tell".
    resolver: std::result::Result<Arc<Resolver>, String>,
    role: TableRole,
    settings: SmtpdSettings,
    /// Relay-host lookups per domain so far, for the rotation (R-SMTPD-2).
    attempts: Mutex<HashMap<String, usize>>,
    /// MX answers by domain until their TTL ends, so a relay-host lookup needs no thread
    /// (and no DNS) while they hold.
    mx_memo: Mutex<HashMap<String, (Vec<MxRecord>, Instant)>>,
}

/// The most MX answers [`SmtpdTable`] keeps.
const MX_MEMO_ENTRIES: usize = 16_384;

impl SmtpdTable {
    /// A backend for a table in `role`, resolving with `resolver`.
    pub fn new(resolver: Arc<Resolver>, role: TableRole, settings: SmtpdSettings) -> SmtpdTable {
        SmtpdTable {
            resolver: Ok(resolver),
            role,
            settings,
            attempts: Mutex::new(HashMap::new()),
            mx_memo: Mutex::new(HashMap::new()),
        }
    }

    /// A backend that cannot resolve (its configuration did not load: `reason`) and still
    /// answers every question, as "cannot tell": the enforce table finds nothing, the late
    /// table finds every domain, and every relay-host lookup is an error, so messages wait
    /// in the queue (never fail open) and smtpd keeps running (a backend that exits stops
    /// it).
    pub fn unavailable(role: TableRole, reason: String) -> SmtpdTable {
        SmtpdTable {
            resolver: Err(reason),
            role,
            settings: SmtpdSettings::default(),
            attempts: Mutex::new(HashMap::new()),
            mx_memo: Mutex::new(HashMap::new()),
        }
    }

    /// The answer to one question.
    pub fn answer(&self, query: &TableQuery) -> TableAnswer {
        let key = query.key.as_deref().unwrap_or_default();
        match (query.op, &query.service) {
            (TableOp::Update, _) => TableAnswer::Found(None),
            (TableOp::Check, Some(TableService::Domain)) => {
                // smtpd asks about every recipient domain; one that is not a host name has no
                // policy (and is the usual relay's to refuse).
                let Ok(domain) = Domain::new(key) else {
                    return TableAnswer::NotFound;
                };
                let resolution = self.resolution(&domain);
                check_answer(self.role, resolution.as_ref(), self.settings.strict_testing)
            }
            (TableOp::Lookup, Some(TableService::RelayHost)) => {
                let Ok(domain) = Domain::new(key) else {
                    return TableAnswer::Error(format!("{key:?} is not a domain name"));
                };
                let resolution = self.resolution(&domain);
                let mx = self.mx(&domain);
                let attempt = {
                    let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
                    if attempts.len() > 100_000 {
                        attempts.clear();
                    }
                    let n = attempts.entry(domain.as_str().to_string()).or_insert(0);
                    *n += 1;
                    *n - 1
                };
                relay_answer(
                    self.role,
                    resolution.as_ref(),
                    mx.as_deref().map_err(Clone::clone),
                    self.settings.strict_testing,
                    attempt,
                )
            }
            (op, service) => TableAnswer::Error(format!(
                "table-mtasts answers check domain and lookup relayhost, not {op:?} {service:?}"
            )),
        }
    }

    /// The resolution of `domain` within the bound: the cache's own answer, else the
    /// network's if it comes in time, else an unexpired cached policy (RFC 8461 §5.1), else
    /// `None` (not known in time; the lookup goes on and caches what it finds).
    fn resolution(&self, domain: &Domain) -> Option<Resolution> {
        let resolver = self.resolver.as_ref().ok()?;
        if let Some(resolution) = resolver.resolve_from_cache(domain) {
            return Some(resolution);
        }
        let (background, lookup) = (Arc::clone(resolver), domain.clone());
        run_within(self.settings.timeout, "mtasts-resolve", move || {
            background.resolve_domain(&lookup)
        })
        .or_else(|| resolver.resolve_cached_policy(domain))
    }

    /// The MX records of `domain` within the bound (the DNS answers are cached by TTL).
    fn mx(&self, domain: &Domain) -> std::result::Result<Vec<MxRecord>, String> {
        let resolver = Arc::clone(self.resolver.as_ref().map_err(Clone::clone)?);
        let now = Instant::now();
        {
            let memo = self.mx_memo.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((records, until)) = memo.get(domain.as_str())
                && now < *until
            {
                return Ok(records.clone());
            }
        }
        let name = domain.as_str().to_string();
        let answer = run_within(self.settings.timeout, "mtasts-mx", move || {
            resolver.dns().mx(&name)
        })
        .ok_or_else(|| format!("{domain}: no MX answer within the bound"))?;
        let (records, ttl) = match answer {
            Ok(DnsAnswer::Found { records, ttl }) => (records, ttl),
            Ok(DnsAnswer::NoData { ttl }) => (Vec::new(), ttl.unwrap_or(0)),
            Ok(DnsAnswer::NxDomain { .. }) => return Err(format!("{domain}: no such domain")),
            Err(e) => return Err(e.to_string()),
        };
        let ttl = ttl.min(crate::dns::DNS_CACHE_MAX_TTL);
        if ttl > 0 {
            let mut memo = self.mx_memo.lock().unwrap_or_else(|p| p.into_inner());
            if memo.len() >= MX_MEMO_ENTRIES {
                memo.retain(|_, (_, until)| now < *until);
                if memo.len() >= MX_MEMO_ENTRIES {
                    memo.clear();
                }
            }
            let until = now + Duration::from_secs(u64::from(ttl));
            memo.insert(domain.as_str().to_string(), (records.clone(), until));
        }
        Ok(records)
    }

    /// Serves smtpd on `input` until it closes the table: the protocol is told by the first
    /// bytes (6.x sends a binary OPEN message, 7.x a `config|` line). 6.x replies go to
    /// `v6_out` (the same socket as the input), 7.x replies to `v7_out` (standard output).
    ///
    /// # Errors
    /// A read or write that failed, or a message smtpd could not have sent (logged; there is
    /// no well-formed reply to it, and smtpd stops the table either way).
    pub fn serve(
        &self,
        input: impl Read,
        v6_out: impl Write,
        v7_out: impl Write,
    ) -> std::io::Result<()> {
        let mut input = std::io::BufReader::new(input);
        let first = input.fill_buf()?;
        if first.is_empty() {
            return Ok(());
        }
        if first.starts_with(b"config|") {
            self.serve_v7(input, v7_out)
        } else {
            self.serve_v6(input, v6_out)
        }
    }

    fn serve_v6(&self, mut input: impl Read, mut out: impl Write) -> std::io::Result<()> {
        let invalid =
            |e: TableProtocolError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let mut buf: Vec<u8> = Vec::with_capacity(V6_MAX_FRAME);
        let mut chunk = [0u8; 8192];
        loop {
            while let Some((frame, used)) = read_frame(&buf).map_err(invalid)? {
                buf.drain(..used);
                let message = match frame.message() {
                    Ok(message) => message,
                    // A question whose key cannot be read (too long, not UTF-8) still gets a
                    // well-formed reply: an error (R-SMTPD-4).
                    Err(e) if matches!(frame.kind, V6_CHECK | V6_LOOKUP | V6_FETCH) => {
                        log::warn!("answering a malformed question with an error: {e}");
                        out.write_all(&v6_frame(V6_OK, &(-1i32).to_ne_bytes()))?;
                        out.flush()?;
                        continue;
                    }
                    Err(e) => return Err(invalid(e)),
                };
                match message {
                    V6Message::Open { version, name } => {
                        if version != V6_API_VERSION {
                            return Err(invalid(TableProtocolError::Version(format!(
                                "table API {version} (this backend speaks {V6_API_VERSION})"
                            ))));
                        }
                        log::info!("table {name}: serving ({:?})", self.role);
                        out.write_all(&v6_open_ok())?;
                    }
                    V6Message::Query(query) => {
                        let answer = self.answer(&query);
                        log_answer(&query, &answer);
                        out.write_all(&v6_reply(&query, &answer))?;
                    }
                    V6Message::Close => return Ok(()),
                }
                out.flush()?;
            }
            let n = input.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn serve_v7(&self, mut input: impl BufRead, mut out: impl Write) -> std::io::Result<()> {
        let invalid =
            |e: TableProtocolError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        loop {
            // One line at a time, never more than V7_MAX_LINE bytes of it in memory.
            let mut raw = Vec::new();
            let limit = u64::try_from(V7_MAX_LINE + 1).unwrap_or(u64::MAX);
            let n = (&mut input).take(limit).read_until(b'\n', &mut raw)?;
            if n == 0 {
                return Ok(()); // smtpd closed the table
            }
            if raw.last() != Some(&b'\n') {
                return Err(invalid(if raw.len() > V7_MAX_LINE {
                    TableProtocolError::Malformed(format!("a line over {V7_MAX_LINE} bytes"))
                } else {
                    TableProtocolError::Malformed("the input ended inside a line".into())
                }));
            }
            raw.pop();
            let line = String::from_utf8_lossy(&raw);
            let reply = match V7Line::parse(&line) {
                Ok(V7Line::Config { key, value }) => {
                    log::debug!("smtpd config {key}: {value}");
                    continue;
                }
                Ok(V7Line::ConfigReady) => v7_register(&TABLE_SERVICES),
                Ok(V7Line::Query { query, .. }) => {
                    let answer = self.answer(&query);
                    log_answer(&query, &answer);
                    v7_reply(&query, &answer)
                }
                // A question that names its operation and id gets an error reply
                // (R-SMTPD-4); anything else cannot be answered at all.
                Err(e) => match v7_error_reply(&line, &e) {
                    Some(reply) => {
                        log::warn!("answering a malformed question with an error: {e}");
                        reply
                    }
                    None => return Err(invalid(e)),
                },
            };
            out.write_all(reply.as_bytes())?;
            out.flush()?;
        }
    }
}

/// The error reply to a 7.x question that could not be parsed, when its operation and
/// request id can still be read from it.
fn v7_error_reply(line: &str, e: &TableProtocolError) -> Option<String> {
    let fields: Vec<&str> = line.splitn(8, '|').collect();
    if fields.first() != Some(&"table") || fields.get(1) != Some(&V7_PROTOCOL) {
        return None;
    }
    let op = match *fields.get(4)? {
        "check" => TableOp::Check,
        "lookup" => TableOp::Lookup,
        "fetch" => TableOp::Fetch,
        "update" => TableOp::Update,
        _ => return None,
    };
    let id = match op {
        TableOp::Update => fields.get(5)?,
        _ => fields.get(6)?,
    };
    let query = TableQuery {
        op,
        service: None,
        key: None,
        id: Some(valid_id(id)?),
    };
    Some(v7_reply(&query, &TableAnswer::Error(e.to_string())))
}

/// A log line for an answer worth telling: an error (smtpd defers), or a relay host given.
fn log_answer(query: &TableQuery, answer: &TableAnswer) {
    let key = query.key.as_deref().unwrap_or("-");
    match answer {
        TableAnswer::Error(why) => {
            log::warn!("{key}: {:?} answered with an error: {why}", query.op)
        }
        TableAnswer::Found(Some(url)) => log::info!("{key}: relay {url}"),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::domain::Domain;
    use crate::error::Error;
    use crate::policy::{CachedPolicy, Policy};
    use crate::resolution::Source;

    fn resolution(mode: Option<&str>, source: Source) -> Resolution {
        let now = SystemTime::now();
        let failure = (source == Source::CacheUnreadable).then(|| Error::Cache {
            reason: "database disk image is malformed".into(),
        });
        Resolution {
            domain: Domain::new("example.com").unwrap(),
            source,
            policy: mode.map(|mode| {
                let text = format!(
                    "version: STSv1\nmode: {mode}\nmx: mx1.example.com\nmx: *.backup.example.com\nmax_age: 86400\n"
                );
                Arc::new(CachedPolicy {
                    id: "1".into(),
                    policy: Arc::new(Policy::parse(&text).unwrap()),
                    fetched_at: now,
                    expires_at: now + Duration::from_secs(86_400),
                })
            }),
            failure,
            notice: None,
            domain_not_found: false,
        }
    }

    fn mx(hosts: &[&str]) -> Vec<MxRecord> {
        hosts
            .iter()
            .enumerate()
            .map(|(i, h)| MxRecord {
                preference: 10 * (i as u16 + 1),
                exchange: h.to_string(),
            })
            .collect()
    }

    #[test]
    fn r_smtpd_1_check_classifies_at_enqueue() {
        let enforce = resolution(Some("enforce"), Source::Fetched);
        let testing = resolution(Some("testing"), Source::Cache);
        let none = resolution(Some("none"), Source::Fetched);
        let nothing = resolution(None, Source::NoPolicy);
        let unreadable = resolution(None, Source::CacheUnreadable);
        let found = TableAnswer::Found(None);
        let not = TableAnswer::NotFound;
        use TableRole::{Enforce, Late};
        let rows: [(TableRole, Option<&Resolution>, bool, &TableAnswer, &str); 12] = [
            (
                Enforce,
                Some(&enforce),
                false,
                &found,
                "enforce: the verified action",
            ),
            (
                Enforce,
                Some(&testing),
                false,
                &not,
                "testing is not enforced",
            ),
            (
                Enforce,
                Some(&testing),
                true,
                &found,
                "unless strict testing",
            ),
            (Enforce, Some(&none), false, &not, "none"),
            (Enforce, Some(&nothing), false, &not, "no policy"),
            (
                Enforce,
                None,
                false,
                &not,
                "not known in time: the late table decides",
            ),
            (
                Enforce,
                Some(&unreadable),
                false,
                &not,
                "cannot tell: the late table decides",
            ),
            (Late, Some(&enforce), false, &found, "enforce known by now"),
            (
                Late,
                Some(&testing),
                false,
                &not,
                "known to need nothing: the usual relay",
            ),
            (
                Late,
                Some(&nothing),
                false,
                &not,
                "no policy: the usual relay",
            ),
            (
                Late,
                None,
                false,
                &found,
                "not known in time: late, never the usual relay",
            ),
            (
                Late,
                Some(&unreadable),
                false,
                &found,
                "cannot tell: late (fail closed)",
            ),
        ];
        for (role, r, strict, want, why) in rows {
            assert_eq!(&check_answer(role, r, strict), want, "{why}");
        }
    }

    #[test]
    fn r_smtpd_2_3_relay_hosts_follow_the_policy_and_rotate() {
        let enforce = resolution(Some("enforce"), Source::Cache);
        let testing = resolution(Some("testing"), Source::Cache);
        let nothing = resolution(None, Source::NoPolicy);
        let unreadable = resolution(None, Source::CacheUnreadable);
        let records = mx(&[
            "evil.example.org",
            "mx1.example.com",
            "a.backup.example.com",
        ]);
        let answer = |role, r: Option<&Resolution>, strict, attempt| {
            relay_answer(role, r, Ok(&records), strict, attempt)
        };
        let url = |u: &str| TableAnswer::Found(Some(u.to_string()));
        // Only the policy's hosts, in preference order, one per attempt.
        assert_eq!(
            answer(TableRole::Enforce, Some(&enforce), false, 0),
            url("smtp+tls://mx1.example.com:25")
        );
        assert_eq!(
            answer(TableRole::Enforce, Some(&enforce), false, 1),
            url("smtp+tls://a.backup.example.com:25")
        );
        assert_eq!(
            answer(TableRole::Enforce, Some(&enforce), false, 2),
            url("smtp+tls://mx1.example.com:25")
        );
        assert_eq!(
            answer(TableRole::Late, Some(&enforce), false, 0),
            url("smtp+tls://mx1.example.com:25"),
            "late, enforce by now: verified"
        );
        assert_eq!(
            answer(TableRole::Late, Some(&nothing), false, 0),
            url("smtp://evil.example.org:25"),
            "no policy: every MX, opportunistic"
        );
        assert_eq!(
            answer(TableRole::Late, Some(&testing), false, 0),
            url("smtp://evil.example.org:25")
        );
        assert_eq!(
            answer(TableRole::Late, Some(&testing), true, 0),
            url("smtp+tls://mx1.example.com:25"),
            "strict testing: the patterns decide"
        );
        assert_eq!(
            answer(TableRole::Enforce, Some(&nothing), false, 0),
            url("smtp+tls://evil.example.org:25"),
            "the verified action stays verified"
        );
        for (r, why) in [
            (None, "not known in time"),
            (Some(&unreadable), "cannot tell"),
        ] {
            assert!(
                matches!(answer(TableRole::Late, r, false, 0), TableAnswer::Error(_)),
                "{why}: the message waits"
            );
        }
        let outside = mx(&["evil.example.org"]);
        assert!(matches!(
            relay_answer(TableRole::Enforce, Some(&enforce), Ok(&outside), false, 0),
            TableAnswer::Error(e) if e.contains("no MX host matches")
        ));
        assert!(matches!(
            relay_answer(
                TableRole::Enforce,
                Some(&enforce),
                Err("SERVFAIL".into()),
                false,
                0
            ),
            TableAnswer::Error(_)
        ));
        assert!(matches!(
            relay_answer(TableRole::Late, Some(&nothing), Ok(&mx(&[""])), false, 0),
            TableAnswer::Error(e) if e.contains("null MX")
        ));
        // No MX records: the domain is its own host (R-MX-3).
        assert_eq!(
            relay_answer(TableRole::Late, Some(&nothing), Ok(&[]), false, 0),
            url("smtp://example.com:25")
        );
    }

    fn frame(kind: u32, payload: &[u8]) -> Vec<u8> {
        v6_frame(kind, payload)
    }

    fn query_payload(service: i32, key: Option<&str>) -> Vec<u8> {
        let mut p = service.to_ne_bytes().to_vec();
        p.extend_from_slice(&0u64.to_ne_bytes());
        if let Some(key) = key {
            p.extend_from_slice(key.as_bytes());
            p.push(0);
        }
        p
    }

    #[test]
    fn v6_frames_parse_and_replies_are_always_ok_messages() {
        let mut open = V6_API_VERSION.to_ne_bytes().to_vec();
        let mut name = b"mtasts".to_vec();
        name.resize(2048, 0);
        open.extend(name);
        let mut wire = frame(V6_OPEN, &open);
        wire.extend(frame(V6_CHECK, &query_payload(0x002, Some("example.com"))));
        wire.extend(frame(V6_LOOKUP, &query_payload(0x200, Some("example.com"))));
        wire.extend(frame(V6_FETCH, &query_payload(0x200, None)));
        wire.extend(frame(V6_UPDATE, &[]));
        wire.extend(frame(V6_CLOSE, &[]));
        let mut messages = Vec::new();
        let mut at = 0;
        while let Some((f, used)) = read_frame(&wire[at..]).unwrap() {
            messages.push(f.message().unwrap());
            at += used;
        }
        assert_eq!(at, wire.len());
        assert_eq!(
            messages[0],
            V6Message::Open {
                version: 2,
                name: "mtasts".into()
            }
        );
        let V6Message::Query(check) = &messages[1] else {
            panic!()
        };
        assert_eq!(
            (check.op, check.service.clone(), check.key.as_deref()),
            (
                TableOp::Check,
                Some(TableService::Domain),
                Some("example.com")
            )
        );
        let V6Message::Query(lookup) = &messages[2] else {
            panic!()
        };
        assert_eq!(lookup.service, Some(TableService::RelayHost));
        let V6Message::Query(fetch) = &messages[3] else {
            panic!()
        };
        assert_eq!((fetch.op, fetch.key.clone()), (TableOp::Fetch, None));
        assert_eq!(messages[5], V6Message::Close);
        // Incomplete: nothing used.
        assert_eq!(read_frame(&wire[..10]).unwrap(), None);
        assert_eq!(read_frame(&wire[..V6_HEADER + 3]).unwrap(), None);

        // Replies: OK with 1 (+ value), 0 or -1.
        let reply = v6_reply(lookup, &TableAnswer::Found(Some("smtp+tls://mx:25".into())));
        let (f, _) = read_frame(&reply).unwrap().unwrap();
        assert_eq!(f.kind, V6_OK);
        assert_eq!(&f.payload[..4], &1i32.to_ne_bytes());
        assert_eq!(&f.payload[4..], b"smtp+tls://mx:25\0");
        let (f, _) = read_frame(&v6_reply(check, &TableAnswer::Found(None)))
            .unwrap()
            .unwrap();
        assert_eq!(f.payload, 1i32.to_ne_bytes());
        let (f, _) = read_frame(&v6_reply(check, &TableAnswer::NotFound))
            .unwrap()
            .unwrap();
        assert_eq!(f.payload, 0i32.to_ne_bytes());
        let (f, _) = read_frame(&v6_reply(lookup, &TableAnswer::Error("x".into())))
            .unwrap()
            .unwrap();
        assert_eq!((f.kind, f.payload), (V6_OK, (-1i32).to_ne_bytes().to_vec()));
        let (f, _) = read_frame(&v6_reply(lookup, &TableAnswer::Found(None)))
            .unwrap()
            .unwrap();
        assert_eq!(
            f.payload,
            (-1i32).to_ne_bytes(),
            "a lookup without a value is an error"
        );
        let (f, _) = read_frame(&v6_open_ok()).unwrap().unwrap();
        assert_eq!((f.kind, f.payload.len()), (V6_OK, 0));
    }

    #[test]
    fn v6_malformed_frames_are_errors() {
        let mut short_len = frame(V6_CHECK, &[]);
        short_len[4..6].copy_from_slice(&8u16.to_ne_bytes());
        assert_eq!(
            read_frame(&short_len),
            Err(TableProtocolError::BadLength(8))
        );
        let cases: [(Vec<u8>, &str); 5] = [
            (frame(99, &[]), "unknown type"),
            (frame(V6_CHECK, &[1, 2]), "too short"),
            (frame(V6_CHECK, &query_payload(2, None)), "NUL-terminated"),
            (
                frame(V6_CHECK, &query_payload(2, Some(&"k".repeat(2000)))),
                "bytes",
            ),
            (
                {
                    let mut p = query_payload(2, None);
                    p.extend_from_slice(b"\xff\xfe\0");
                    frame(V6_LOOKUP, &p)
                },
                "UTF-8",
            ),
        ];
        for (wire, why) in cases {
            let (f, _) = read_frame(&wire).unwrap().unwrap();
            let e = f.message().unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn v7_lines_as_smtpd_tables_7_gives_them() {
        assert_eq!(
            V7Line::parse("config|smtpd-version|7.6.0").unwrap(),
            V7Line::Config {
                key: "smtpd-version".into(),
                value: "7.6.0".into()
            }
        );
        assert_eq!(V7Line::parse("config|ready").unwrap(), V7Line::ConfigReady);
        assert!(matches!(
            V7Line::parse("config|protocol|0.2"),
            Err(TableProtocolError::Version(_))
        ));
        let V7Line::Query { table, query } = V7Line::parse(
            "table|0.1|1717936800.123456|mtasts|lookup|relayhost|0000002a|example.com",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(table, "mtasts");
        assert_eq!(query.op, TableOp::Lookup);
        assert_eq!(query.service, Some(TableService::RelayHost));
        assert_eq!(query.key.as_deref(), Some("example.com"));
        assert_eq!(
            v7_reply(
                &query,
                &TableAnswer::Found(Some("smtp+tls://mx1.example.com:25".into()))
            ),
            "lookup-result|0000002a|found|smtp+tls://mx1.example.com:25\n"
        );
        assert_eq!(
            v7_reply(&query, &TableAnswer::NotFound),
            "lookup-result|0000002a|not-found\n"
        );
        assert_eq!(
            v7_reply(&query, &TableAnswer::Error("cannot|tell\nnow".into())),
            "lookup-result|0000002a|error|cannot tell now\n"
        );
        assert_eq!(
            v7_reply(&query, &TableAnswer::Found(None)),
            "lookup-result|0000002a|error|no value\n"
        );
        // Only the last field may hold '|': a key with one is the key.
        let V7Line::Query { query, .. } =
            V7Line::parse("table|0.1|1.0|t|check|domain|00000001|a|b").unwrap()
        else {
            panic!()
        };
        assert_eq!(query.key.as_deref(), Some("a|b"));
        assert_eq!(
            v7_reply(&query, &TableAnswer::Found(None)),
            "check-result|00000001|found\n"
        );
        let V7Line::Query { query, .. } =
            V7Line::parse("table|0.1|1.0|t|fetch|relayhost|00000002").unwrap()
        else {
            panic!()
        };
        assert_eq!((query.op, query.key), (TableOp::Fetch, None));
        let V7Line::Query { query, .. } = V7Line::parse("table|0.1|1.0|t|update|00000003").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            v7_reply(&query, &TableAnswer::NotFound),
            "update-result|00000003|ok\n"
        );
        assert_eq!(
            v7_register(&["domain", "relayhost"]),
            "register|domain\nregister|relayhost\nregister|ready\n"
        );
        for bad in [
            "",
            "hello",
            "table|0.2|1.0|t|check|domain|1|k",
            "table|0.1|1.0|t|check|domain",
            "table|0.1|1.0|t|frobnicate|domain|1|k",
            "table|0.1|1.0|t|check|domain|xyz|k",
            &format!("table|0.1|1.0|t|check|domain|1|{}", "k".repeat(1024)),
        ] {
            assert!(V7Line::parse(bad).is_err(), "{bad:?}");
        }
    }
}
