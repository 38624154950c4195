//! The JSON description of scenario domains (`world.json`), see `tests/world/README.md`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::dns::{Behaviour, RecordData, ZoneEntry, ZoneRecord};
use crate::https::{BodyMode, HttpResponse};

/// The policy served when a domain's `http.body` is omitted: valid, `enforce`, two MX patterns.
pub const DEFAULT_POLICY: &str =
    "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n";

/// The id of the `_mta-sts` TXT record when a domain's `txt` is omitted.
pub const DEFAULT_ID: &str = "20240101T000000";

/// A whole world description file: `{"domains": [...]}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorldSpec {
    /// Free text, ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The scenario domains.
    pub domains: Vec<DomainSpec>,
}

impl WorldSpec {
    /// Parses a description from JSON text.
    pub fn from_json(text: &str) -> Result<WorldSpec, Error> {
        Ok(serde_json::from_str(text)?)
    }

    /// Reads and parses a description file.
    pub fn from_file(path: &Path) -> Result<WorldSpec, Error> {
        WorldSpec::from_json(&std::fs::read_to_string(path)?)
    }

    /// The `world.json` shipped with this crate.
    pub fn bundled() -> Result<WorldSpec, Error> {
        WorldSpec::from_json(include_str!("../world.json"))
    }

    /// The domain called `name` (compared case-insensitively, trailing dot ignored).
    pub fn domain(&self, name: &str) -> Option<&DomainSpec> {
        let name = crate::normalize_name(name);
        self.domains
            .iter()
            .find(|d| crate::normalize_name(&d.name) == name)
    }

    /// The domains for scenario `id` (e.g. `"S-08"`).
    pub fn scenario<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a DomainSpec> + 'a {
        self.domains
            .iter()
            .filter(move |d| d.scenario.as_deref() == Some(id))
    }
}

/// One policy domain: its `_mta-sts` TXT, the address of `mta-sts.<name>`, the certificate and
/// the HTTP response of the policy host, and what a resolver should conclude.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DomainSpec {
    /// The policy domain in A-label form, without trailing dot (e.g. `s01.mtasts.test`).
    pub name: String,
    /// The scenario row it stands for (e.g. `S-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The name a test should pass to the resolver, when not `name` itself (S-25: a U-label,
    /// mixed case, trailing dot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<String>,
    /// The `_mta-sts.<name>` TXT answer; omitted: one record `v=STSv1; id=20240101T000000;`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txt: Option<TxtSpec>,
    /// TTL of the `_mta-sts` records (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txt_ttl: Option<u32>,
    /// What `mta-sts.<name>` resolves to.
    #[serde(default)]
    pub address: AddressSpec,
    /// The certificate the policy host presents.
    #[serde(default)]
    pub cert: CertCase,
    /// The response at `https://mta-sts.<name>/.well-known/mta-sts.txt`.
    #[serde(default)]
    pub http: HttpSpec,
    /// Further DNS records (CNAME targets, MX hosts, …), added to whatever their names hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<DnsRecordSpec>,
    /// The outcome a resolver must reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
}

impl DomainSpec {
    /// A domain with every default: one valid STS record, a valid certificate, the
    /// [`DEFAULT_POLICY`] served with 200 `text/plain`.
    pub fn new(name: &str) -> DomainSpec {
        DomainSpec {
            name: name.to_owned(),
            scenario: None,
            comment: None,
            lookup: None,
            txt: None,
            txt_ttl: None,
            address: AddressSpec::default(),
            cert: CertCase::default(),
            http: HttpSpec::default(),
            dns: Vec::new(),
            expect: None,
        }
    }

    /// `_mta-sts.<name>`.
    pub fn txt_name(&self) -> String {
        format!("_mta-sts.{}", crate::normalize_name(&self.name))
    }

    /// `mta-sts.<name>`, the policy host.
    pub fn policy_host(&self) -> String {
        format!("mta-sts.{}", crate::normalize_name(&self.name))
    }

    /// The name to hand to a resolver ([`DomainSpec::lookup`] or else the name).
    pub fn lookup_name(&self) -> &str {
        self.lookup.as_deref().unwrap_or(&self.name)
    }

    /// The zone entry for `_mta-sts.<name>`.
    pub fn txt_entry(&self) -> Result<ZoneEntry, Error> {
        let ttl = self.txt_ttl.unwrap_or(crate::dns::DEFAULT_TTL);
        Ok(match &self.txt {
            None => ZoneEntry::Records(vec![
                ZoneRecord::txt1(&format!("v=STSv1; id={DEFAULT_ID};")).with_ttl(ttl),
            ]),
            Some(TxtSpec::Records(rrs)) => ZoneEntry::Records(
                rrs.iter()
                    .map(|rr| Ok(ZoneRecord::new(txt_data(rr)?).with_ttl(ttl)))
                    .collect::<Result<_, Error>>()?,
            ),
            Some(TxtSpec::Outcome(o)) => o.entry(),
            Some(TxtSpec::Cname { cname }) => {
                ZoneEntry::Records(vec![ZoneRecord::cname(cname).with_ttl(ttl)])
            }
        })
    }

    /// The response the policy host serves.
    pub fn http_response(&self) -> Result<HttpResponse, Error> {
        self.http.response()
    }
}

/// The `_mta-sts` TXT answer of a domain. In JSON: an array of RRs, each an array of
/// character-strings (`[["v=STSv1; ", "id=abc;"], ["site-verification=x"]]`); or an outcome
/// string (`"servfail"`); or `{"cname": "target"}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum TxtSpec {
    /// These RRs.
    Records(Vec<Vec<TxtString>>),
    /// A failure or an empty answer.
    Outcome(DnsOutcome),
    /// A CNAME to this name (put the target's records in [`DomainSpec::dns`]).
    Cname {
        /// The CNAME target.
        cname: String,
    },
}

/// One character-string of a TXT RR: JSON text (sent as UTF-8) or an array of byte values
/// (for data that is not UTF-8). At most 255 bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum TxtString {
    /// Text, sent as its UTF-8 bytes.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl TxtString {
    /// The bytes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            TxtString::Text(s) => s.as_bytes(),
            TxtString::Bytes(b) => b,
        }
    }
}

fn txt_data(rr: &[TxtString]) -> Result<RecordData, Error> {
    let strings: Vec<Vec<u8>> = rr.iter().map(|s| s.as_bytes().to_vec()).collect();
    if let Some(long) = strings.iter().find(|s| s.len() > 255) {
        return Err(Error::Spec(format!(
            "a TXT character-string has {} bytes, the limit is 255",
            long.len()
        )));
    }
    Ok(RecordData::Txt(strings))
}

/// A DNS answer without data.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DnsOutcome {
    /// NXDOMAIN (the name does not exist).
    Nxdomain,
    /// NOERROR with no records of the asked type.
    Nodata,
    /// SERVFAIL.
    Servfail,
    /// REFUSED.
    Refused,
    /// No answer at all.
    Timeout,
}

impl DnsOutcome {
    /// The zone entry producing this outcome.
    pub fn entry(self) -> ZoneEntry {
        match self {
            DnsOutcome::Nxdomain => ZoneEntry::Behaviour(Behaviour::NxDomain),
            DnsOutcome::Nodata => ZoneEntry::Records(Vec::new()),
            DnsOutcome::Servfail => ZoneEntry::Behaviour(Behaviour::ServFail),
            DnsOutcome::Refused => ZoneEntry::Behaviour(Behaviour::Refused),
            DnsOutcome::Timeout => ZoneEntry::Behaviour(Behaviour::Timeout),
        }
    }
}

/// What `mta-sts.<domain>` resolves to.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AddressSpec {
    /// `A 127.0.0.1`, where the HTTPS server listens.
    #[default]
    Loopback,
    /// `A 127.0.0.2`, where nothing listens on the HTTPS port (S-19).
    Unreachable,
    /// NXDOMAIN (S-20).
    Nxdomain,
    /// NODATA.
    Nodata,
    /// SERVFAIL.
    Servfail,
    /// No answer.
    Timeout,
}

/// The certificate the policy host presents.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CertCase {
    /// SAN `mta-sts.<domain>`, issued by the world's CA.
    #[default]
    Valid,
    /// SAN `*.<domain>`, issued by the world's CA (valid for the policy host).
    Wildcard,
    /// SAN `mta-sts.<domain>`, issued through an intermediate CA (chain sent).
    Chain,
    /// SAN `mta-sts.<domain>`, issued by a second CA nobody trusts (S-15).
    Untrusted,
    /// SAN `www.<domain>` only (S-16).
    WrongName,
    /// SAN `mta-sts.<domain>`, expired in 2001 (S-17).
    Expired,
    /// SAN `mta-sts.<domain>`, valid from 2098.
    NotYetValid,
    /// `mta-sts.<domain>` only as subject CN, no SAN extension.
    CnOnly,
}

/// The HTTP response of the policy host. Every field has a default: `{}` serves the
/// [`DEFAULT_POLICY`] with 200 `text/plain`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// Status code (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Content-Type` (default `text/plain`; JSON `null` or `""` sends none).
    #[serde(
        default = "default_content_type",
        skip_serializing_if = "is_default_content_type"
    )]
    pub content_type: Option<String>,
    /// Body text (default [`DEFAULT_POLICY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Pad the body with `x-pad: aaaa…` lines (an unknown policy field, so the policy stays
    /// valid) until it is exactly this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_pad_to: Option<usize>,
    /// How the body is sent (default `content-length`).
    #[serde(default)]
    pub mode: ModeSpec,
    /// For `declared-length`: the `Content-Length` to announce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_length: Option<u64>,
    /// For `drip`: milliseconds between body bytes (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drip_interval_ms: Option<u64>,
    /// `Location` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Further headers, `[name, value]` pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl Default for HttpSpec {
    fn default() -> Self {
        HttpSpec {
            status: None,
            content_type: default_content_type(),
            body: None,
            body_pad_to: None,
            mode: ModeSpec::default(),
            declared_length: None,
            drip_interval_ms: None,
            location: None,
            headers: Vec::new(),
        }
    }
}

fn default_content_type() -> Option<String> {
    Some("text/plain".to_owned())
}

fn is_default_content_type(ct: &Option<String>) -> bool {
    ct.as_deref() == Some("text/plain")
}

/// How the body is framed and sent (see [`BodyMode`]).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ModeSpec {
    /// `Content-Length` matching the body.
    #[default]
    ContentLength,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length: declared_length`, then the body as is, then close.
    DeclaredLength,
    /// Head, then one body byte every `drip_interval_ms`.
    Drip,
}

impl HttpSpec {
    /// The canned response described.
    pub fn response(&self) -> Result<HttpResponse, Error> {
        let mut body = self
            .body
            .clone()
            .unwrap_or_else(|| DEFAULT_POLICY.to_owned());
        if let Some(target) = self.body_pad_to {
            pad_policy(&mut body, target)?;
        }
        let mode = match self.mode {
            ModeSpec::ContentLength => BodyMode::ContentLength,
            ModeSpec::Chunked => BodyMode::Chunked,
            ModeSpec::DeclaredLength => BodyMode::DeclaredLength(
                self.declared_length
                    .ok_or_else(|| Error::Spec("declared-length needs declared_length".into()))?,
            ),
            ModeSpec::Drip => {
                BodyMode::Drip(Duration::from_millis(self.drip_interval_ms.unwrap_or(1000)))
            }
        };
        let mut response = HttpResponse::new(self.status.unwrap_or(200))
            .with_body(body)
            .with_mode(mode);
        response.content_type = self.content_type.clone().filter(|c| !c.is_empty());
        response.location = self.location.clone();
        response.headers = self.headers.clone();
        Ok(response)
    }
}

/// Appends `x-pad: aaa…` lines (each ending in `\n`) until `body` is exactly `target` bytes.
fn pad_policy(body: &mut String, target: usize) -> Result<(), Error> {
    const PREFIX: &str = "x-pad: ";
    if body.len() > target {
        return Err(Error::Spec(format!(
            "body_pad_to {target} is smaller than the body ({} bytes)",
            body.len()
        )));
    }
    if !body.is_empty() && !body.ends_with('\n') {
        body.push('\n');
    }
    while body.len() < target {
        let room = target - body.len();
        if room <= PREFIX.len() + 1 {
            // Too little room for another field line: finish with blank-ish filler lines.
            body.push_str(&"\n".repeat(room));
            break;
        }
        let fill = (room - PREFIX.len() - 1).min(1000);
        body.push_str(PREFIX);
        body.push_str(&"a".repeat(fill));
        body.push('\n');
    }
    Ok(())
}

/// One extra DNS record: `{"name": "...", "ttl": 300, "txt": ["..."]}`, or with `"a"`,
/// `"aaaa"`, `"cname"`, `"mx": [10, "mail.example.com"]`, or `"outcome": "servfail"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DnsRecordSpec {
    /// Owner name.
    pub name: String,
    /// TTL (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The data.
    #[serde(flatten)]
    pub data: DnsDataSpec,
}

/// The data of a [`DnsRecordSpec`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DnsDataSpec {
    /// TXT with these character-strings.
    Txt(Vec<TxtString>),
    /// A record.
    A(Ipv4Addr),
    /// AAAA record.
    Aaaa(Ipv6Addr),
    /// CNAME target.
    Cname(String),
    /// MX `[preference, exchange]`.
    Mx(u16, String),
    /// Replace the name's records with this outcome.
    Outcome(DnsOutcome),
}

impl DnsRecordSpec {
    /// The record, or `None` for an outcome.
    pub fn record(&self) -> Result<Option<ZoneRecord>, Error> {
        let data = match &self.data {
            DnsDataSpec::Txt(strings) => txt_data(strings)?,
            DnsDataSpec::A(ip) => RecordData::A(*ip),
            DnsDataSpec::Aaaa(ip) => RecordData::Aaaa(*ip),
            DnsDataSpec::Cname(t) => RecordData::Cname(t.clone()),
            DnsDataSpec::Mx(preference, exchange) => RecordData::Mx {
                preference: *preference,
                exchange: exchange.clone(),
            },
            DnsDataSpec::Outcome(_) => return Ok(None),
        };
        Ok(Some(
            ZoneRecord::new(data).with_ttl(self.ttl.unwrap_or(crate::dns::DEFAULT_TTL)),
        ))
    }
}

/// The outcome a resolver must reach for a domain, from an empty cache. See the README for the
/// vocabulary.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The mode of the policy in effect, or `null` for "no policy".
    pub policy: Option<ExpectedMode>,
    /// The policy id (from the TXT record) the policy is stored under, when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// The RFC 8460 result type reported, or `null` for none.
    #[serde(default)]
    pub result_type: Option<String>,
    /// Where the answer comes from.
    pub source: Source,
    /// `true` when the TXT lookup fails temporarily (never to be reported as "no policy").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dns_temporary: bool,
    /// `true` when the failure is the fetch deadline: configure a short fetch timeout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deadline: bool,
    /// How many HTTPS requests the policy host must see (its head read), when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_requests: Option<u64>,
    /// Text the raw policy must contain, when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_contains: Option<String>,
}

/// A policy mode (RFC 8461 §5).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedMode {
    /// `enforce`.
    Enforce,
    /// `testing`.
    Testing,
    /// `none`.
    None,
}

/// Where a resolver's answer comes from.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The domain publishes no usable STS record: no policy, nothing to report.
    #[default]
    None,
    /// The policy was fetched over HTTPS just now.
    Fetched,
    /// A policy could not be obtained (fetch failed, invalid policy, DNS temporary failure).
    Unavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_reaches_exact_length_and_keeps_lines() {
        for target in [DEFAULT_POLICY.len(), 100, 65_537, 200_000] {
            let mut body = DEFAULT_POLICY.to_owned();
            pad_policy(&mut body, target).unwrap();
            assert_eq!(body.len(), target);
            assert!(body.starts_with(DEFAULT_POLICY));
            assert!(body.lines().all(|l| l.len() <= 1010));
        }
        let mut body = DEFAULT_POLICY.to_owned();
        assert!(pad_policy(&mut body, 10).is_err());
    }

    #[test]
    fn txt_forms_parse() {
        let d: DomainSpec = serde_json::from_str(
            r#"{"name":"a.test","txt":[["v=STSv1; ","id=abc;"],[[255,0,1]]]}"#,
        )
        .unwrap();
        let ZoneEntry::Records(rrs) = d.txt_entry().unwrap() else {
            panic!("records expected")
        };
        assert_eq!(
            rrs[0].data,
            RecordData::Txt(vec![b"v=STSv1; ".to_vec(), b"id=abc;".to_vec()])
        );
        assert_eq!(rrs[1].data, RecordData::Txt(vec![vec![255, 0, 1]]));

        let d: DomainSpec = serde_json::from_str(r#"{"name":"a.test","txt":"servfail"}"#).unwrap();
        assert_eq!(
            d.txt_entry().unwrap(),
            ZoneEntry::Behaviour(Behaviour::ServFail)
        );
        let d: DomainSpec =
            serde_json::from_str(r#"{"name":"a.test","txt":{"cname":"x.test"}}"#).unwrap();
        assert_eq!(
            d.txt_entry().unwrap(),
            ZoneEntry::Records(vec![ZoneRecord::cname("x.test")])
        );
        let d: DomainSpec = serde_json::from_str(
            r#"{"name":"a.test","dns":[{"name":"m.test","mx":[10,"mx.test"]},{"name":"n.test","outcome":"timeout"}]}"#,
        )
        .unwrap();
        assert_eq!(
            d.dns[0].record().unwrap(),
            Some(ZoneRecord::mx(10, "mx.test"))
        );
        assert_eq!(d.dns[1].data, DnsDataSpec::Outcome(DnsOutcome::Timeout));
    }

    #[test]
    fn http_defaults_and_null_content_type() {
        let d: DomainSpec = serde_json::from_str(r#"{"name":"a.test"}"#).unwrap();
        let r = d.http_response().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type.as_deref(), Some("text/plain"));
        assert_eq!(r.body, DEFAULT_POLICY.as_bytes());
        let d: DomainSpec =
            serde_json::from_str(r#"{"name":"a.test","http":{"content_type":null}}"#).unwrap();
        assert_eq!(d.http_response().unwrap().content_type, None);
        assert!(
            serde_json::from_str::<DomainSpec>(r#"{"name":"a.test","htp":{}}"#).is_err(),
            "unknown keys are rejected"
        );
    }

    #[test]
    fn bundled_world_parses_and_round_trips() {
        let world = WorldSpec::bundled().unwrap();
        for d in &world.domains {
            d.txt_entry().unwrap();
            d.http_response().unwrap();
            for r in &d.dns {
                r.record().unwrap();
            }
            assert!(d.expect.is_some(), "{} has no expect", d.name);
        }
        let again: WorldSpec =
            serde_json::from_str(&serde_json::to_string(&world).unwrap()).unwrap();
        assert_eq!(again, world);
    }
}
