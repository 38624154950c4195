//! One codec between an [`Entry`] and the named fields a persistent store keeps (issue 11).
//!
//! A store maps its own storage onto a [`Record`] (SQLite: one column per field, Redis: one
//! hash field per field) and back, and nothing more: which fields an entry has, how each is
//! written and what a reader does with fields it does not understand are decided here, once,
//! so the SQLite file and a Redis shared by hosts running different versions behave alike.
//!
//! # The rule: what this version does not know never makes an entry unreadable
//!
//! A reader that cannot read an entry treats the domain as uncached (or, for a shared store,
//! as "cannot tell"); a fetch failure at that moment then has no policy to fall back on. So a
//! part of an entry this version cannot use is dropped with a warning naming the store and
//! the domain, and the rest, the policy above all, is kept ([`decode`]):
//!
//! | what is found | outcome | why |
//! |---|---|---|
//! | a field this version does not know | ignored | a newer writer may add fields (rolling upgrades: two versions share one store) |
//! | a backoff whose result type is unknown | backoff dropped | losing a backoff only allows an earlier retry (R-FETCH-10 spares the server; it protects nothing) |
//! | a backoff with fields missing or malformed | backoff dropped | the same |
//! | `failures` missing, malformed or negative | counted as 0 | it only decides when repeated failures are logged (R-CACHE-6) |
//! | no valid domain | **entry unreadable** | the entry cannot be attributed to a domain |
//! | `next_check` or `last_used` missing or malformed | **entry unreadable** | every writer of the format writes them, so the record was not written by mtasts or is damaged; nothing in it can be trusted |
//! | the policy fields incomplete or malformed | **entry unreadable** | dropping them would make a domain that may have a policy look as if it had none (never fail open) |
//! | a policy text that no longer parses | **entry unreadable** | there is no policy to apply; the same reason forbids reading the entry as "no policy" |
//!
//! What a store does with an unreadable entry is the store's to document (it skips it in a
//! listing; the Redis store reports a single read as [`Error::Cache`](crate::Error)).
//!
//! The record is general (named integers, texts and byte strings), so other stores of the
//! crate can use [`Record`] and [`Value`] for their own records the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::{Backoff, CachedPolicy, Entry, from_unix_millis, to_unix_millis};
use crate::domain::Domain;
use crate::error::ResultType;

/// One stored value. Stores that keep only strings (Redis) hand over [`Value::Bytes`]; the
/// readers below accept an integer written as decimal text, so each store maps its values
/// onto these without interpreting them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// An integer (times are milliseconds since the Unix epoch, see [`Value::time`]).
    Integer(i64),
    /// Text.
    Text(String),
    /// Bytes not known to be text (UTF-8 is checked when they are read as text).
    Bytes(Vec<u8>),
}

impl Value {
    /// The stored form of an instant: integer milliseconds since the Unix epoch (finer parts
    /// are dropped).
    pub(crate) fn time(t: SystemTime) -> Value {
        Value::Integer(to_unix_millis(t))
    }

    /// The value as a byte string (an integer in decimal): the form of a store that keeps
    /// only strings (Redis), which [`Value::Bytes`] reads back.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        match self {
            Value::Integer(n) => n.to_string().into_bytes(),
            Value::Text(text) => text.into_bytes(),
            Value::Bytes(bytes) => bytes,
        }
    }

    /// The value as text; the reason if it is not text.
    pub(crate) fn as_text(&self) -> Result<&str, String> {
        match self {
            Value::Text(text) => Ok(text),
            Value::Bytes(bytes) => {
                std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
            }
            Value::Integer(n) => Err(format!("the integer {n}, not text")),
        }
    }

    /// The value as an integer, from an integer or its decimal text; the reason if neither.
    pub(crate) fn as_integer(&self) -> Result<i64, String> {
        match self {
            Value::Integer(n) => Ok(*n),
            other => {
                let text = other.as_text()?;
                text.parse()
                    .map_err(|_| format!("{text:?} is not an integer"))
            }
        }
    }

    /// The value as an instant (see [`Value::time`]); the reason if it is not one.
    pub(crate) fn as_time(&self) -> Result<SystemTime, String> {
        self.as_integer()
            .map(from_unix_millis)
            .map_err(|why| format!("not a time in ms: {why}"))
    }
}

/// A stored record: values by field name, in name order. Absent and NULL are the same: a
/// store leaves a field out of the record rather than storing "no value".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Record {
    fields: BTreeMap<String, Value>,
}

impl Record {
    /// Sets field `name` to `value`.
    pub(crate) fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.fields.insert(name.into(), value);
    }

    /// Removes field `name`, returning its value.
    pub(crate) fn remove(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name)
    }

    /// The value of field `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// The fields, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }
}

impl<N: Into<String>> FromIterator<(N, Value)> for Record {
    fn from_iter<I: IntoIterator<Item = (N, Value)>>(fields: I) -> Record {
        Record {
            fields: fields
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        }
    }
}

impl IntoIterator for Record {
    type Item = (String, Value);
    type IntoIter = std::collections::btree_map::IntoIter<String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.fields.into_iter()
    }
}

/// The names a store gives the fields of an entry. Each store's format is fixed (existing
/// files and hashes must stay readable), so the names are the store's to choose;
/// [`EntryFields::STANDARD`] is the set new stores use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryFields {
    /// The policy domain, as text (a store that keys entries by domain supplies it from
    /// the key before [`decode`] and leaves it out when writing).
    pub domain: &'static str,
    /// The cached policy's record id (text). Policy fields: all four or none.
    pub policy_id: &'static str,
    /// The cached policy's raw text (R-POL-8), parsed again on load.
    pub policy_text: &'static str,
    /// When the policy was fetched (time).
    pub fetched_at: &'static str,
    /// When the policy expires (time, R-CACHE-1).
    pub expires_at: &'static str,
    /// No TXT query before this (time, R-CACHE-5). Mandatory.
    pub next_check: &'static str,
    /// The backoff's record id, or the empty text for a remembered DNS failure
    /// ([`Backoff::DNS_FAILURE`]). Backoff fields: all four or none.
    pub backoff_id: &'static str,
    /// When the backoff ends (time, R-FETCH-10).
    pub backoff_until: &'static str,
    /// The backoff's RFC 8460 result type, as its name.
    pub backoff_result: &'static str,
    /// The backoff's one-line reason (text).
    pub backoff_reason: &'static str,
    /// Refreshes that failed in a row (integer, R-CACHE-6).
    pub failures: &'static str,
    /// When a lookup last used the entry (time, R-CACHE-8). Mandatory.
    pub last_used: &'static str,
}

impl EntryFields {
    /// The standard names (also the SQLite store's column names).
    pub(crate) const STANDARD: EntryFields = EntryFields {
        domain: "domain",
        policy_id: "policy_id",
        policy_text: "policy_text",
        fetched_at: "fetched_at",
        expires_at: "expires_at",
        next_check: "next_check",
        backoff_id: "backoff_id",
        backoff_until: "backoff_until",
        backoff_result: "backoff_result_type",
        backoff_reason: "backoff_reason",
        failures: "failures",
        last_used: "last_used",
    };

    /// Every name, for telling the fields this version knows from the others.
    fn all(&self) -> [&'static str; 12] {
        [
            self.domain,
            self.policy_id,
            self.policy_text,
            self.fetched_at,
            self.expires_at,
            self.next_check,
            self.backoff_id,
            self.backoff_until,
            self.backoff_result,
            self.backoff_reason,
            self.failures,
            self.last_used,
        ]
    }
}

/// The record of `entry`, with the field names `names`. Policy and backoff fields are
/// present exactly when the entry has a policy or a backoff; every value is
/// [`Value::Integer`] or [`Value::Text`].
pub(crate) fn encode(entry: &Entry, names: &EntryFields) -> Record {
    let text = |s: &str| Value::Text(s.to_string());
    let mut record = Record::default();
    record.insert(names.domain, text(entry.domain.as_str()));
    record.insert(names.next_check, Value::time(entry.next_check));
    record.insert(names.failures, Value::Integer(i64::from(entry.failures)));
    record.insert(names.last_used, Value::time(entry.last_used));
    if let Some(policy) = &entry.policy {
        record.insert(names.policy_id, text(&policy.id));
        record.insert(names.policy_text, text(policy.policy.text()));
        record.insert(names.fetched_at, Value::time(policy.fetched_at));
        record.insert(names.expires_at, Value::time(policy.expires_at));
    }
    if let Some(backoff) = &entry.backoff {
        record.insert(names.backoff_id, text(&backoff.id));
        record.insert(names.backoff_until, Value::time(backoff.until));
        record.insert(names.backoff_result, text(backoff.result_type.as_str()));
        record.insert(names.backoff_reason, text(&backoff.reason));
    }
    record
}

/// A decoded entry, with what was tolerated to read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The entry.
    pub entry: Entry,
    /// Each part of the record that was dropped or defaulted, as a sentence (see the module
    /// docs); empty for a record this version wrote.
    pub dropped: Vec<String>,
}

/// Why a record is no usable entry (the fatal cases of the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unreadable {
    /// The record's domain field as text, if it has one (for messages).
    pub domain: Option<String>,
    /// What is wrong, naming the field.
    pub reason: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The entry in `record` (field names `names`) under the rule of the module docs: the
/// tolerated oddities are listed in [`Decoded::dropped`], the fatal ones make it
/// [`Unreadable`]. Pure; [`read`] is the same with the warnings logged.
pub(crate) fn decode(record: &Record, names: &EntryFields) -> Result<Decoded, Unreadable> {
    let raw_domain = record
        .get(names.domain)
        .and_then(|v| v.as_text().ok())
        .map(str::to_string);
    let fatal = |reason: String| Unreadable {
        domain: raw_domain.clone(),
        reason,
    };
    let field = |name: &str| record.get(name).ok_or_else(|| format!("{name} is missing"));
    let text = |name: &str| {
        field(name)?
            .as_text()
            .map_err(|why| format!("{name} is {why}"))
    };
    let time = |name: &str| {
        field(name)?
            .as_time()
            .map_err(|why| format!("{name} is {why}"))
    };
    let present = |group: &[&str]| group.iter().any(|name| record.get(name).is_some());
    let mut dropped = Vec::new();

    // Fatal: no domain, no mandatory time (see the module docs for why).
    let domain = match &raw_domain {
        Some(name) => Domain::new(name).map_err(|e| fatal(format!("invalid domain: {e}")))?,
        None => return Err(fatal(format!("{} is missing or not text", names.domain))),
    };
    let next_check = time(names.next_check).map_err(fatal)?;
    let last_used = time(names.last_used).map_err(fatal)?;

    // Fatal when present but unusable: dropping it would fail open.
    let policy_fields = [
        names.policy_id,
        names.policy_text,
        names.fetched_at,
        names.expires_at,
    ];
    let policy = if present(&policy_fields) {
        let stored = (|| {
            let id = text(names.policy_id)?;
            let policy_text = text(names.policy_text)?;
            let fetched_at = time(names.fetched_at)?;
            let expires_at = time(names.expires_at)?;
            CachedPolicy::from_stored(id.to_string(), policy_text, fetched_at, expires_at)
                .map_err(|e| e.to_string())
        })()
        .map_err(|why| fatal(format!("policy fields: {why}")))?;
        Some(Arc::new(stored))
    } else {
        None
    };

    // Tolerated: a backoff this version cannot read is dropped (an earlier retry at most).
    let backoff_fields = [
        names.backoff_id,
        names.backoff_until,
        names.backoff_result,
        names.backoff_reason,
    ];
    let backoff = if present(&backoff_fields) {
        let read = (|| {
            let id = text(names.backoff_id)?;
            let until = time(names.backoff_until)?;
            let result = text(names.backoff_result)?;
            let reason = text(names.backoff_reason)?;
            let result_type = ResultType::from_name(result)
                .ok_or_else(|| format!("unknown result type {result:?}"))?;
            Ok::<_, String>(Backoff {
                id: id.to_string(),
                until,
                result_type,
                reason: reason.to_string(),
            })
        })();
        match read {
            Ok(backoff) => Some(backoff),
            Err(why) => {
                dropped.push(format!(
                    "backoff dropped ({why}); the fetch may be retried early"
                ));
                None
            }
        }
    } else {
        None
    };

    // Tolerated: the failure count only decides what is logged.
    let failures = match field(names.failures).and_then(|v| {
        v.as_integer()
            .map_err(|why| format!("{} is {why}", names.failures))
    }) {
        Ok(n) if n < 0 => {
            dropped.push(format!(
                "{} is negative ({n}); counted as 0",
                names.failures
            ));
            0
        }
        Ok(n) => u32::try_from(n).unwrap_or(u32::MAX),
        Err(why) => {
            dropped.push(format!("{why}; counted as 0"));
            0
        }
    };

    // Tolerated: fields of a newer writer.
    let known = names.all();
    for (name, _) in record.iter() {
        if !known.contains(&name) {
            dropped.push(format!(
                "unknown field {name:?} ignored (written by a newer mtasts?)"
            ));
        }
    }

    Ok(Decoded {
        entry: Entry {
            domain,
            policy,
            next_check,
            backoff,
            failures,
            last_used,
        },
        dropped,
    })
}

/// [`decode`], with each tolerated oddity logged as a warning naming `location` (the
/// store's file or URL) and the domain.
pub(crate) fn read(
    record: &Record,
    names: &EntryFields,
    location: &str,
) -> Result<Entry, Unreadable> {
    let decoded = decode(record, names)?;
    for what in &decoded.dropped {
        log::warn!(
            "{location}: cache entry for {}: {what}",
            decoded.entry.domain
        );
    }
    Ok(decoded.entry)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const NAMES: EntryFields = EntryFields::STANDARD;

    /// An instant of the fixtures: `s` seconds after a fixed start.
    pub(crate) fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    /// An entry with every field set (policy and backoff; times with milliseconds), shared by
    /// the stores' tests.
    pub(crate) fn full_entry() -> Entry {
        Entry {
            domain: Domain::new("example.com").unwrap(),
            policy: Some(Arc::new(
                CachedPolicy::from_stored(
                    "20240101".into(),
                    "version: STSv1\nmode: enforce\nmx: mx.example.com\nmx: *.example.net\nmax_age: 86400\n",
                    at(10) + Duration::from_millis(123),
                    at(86_410) + Duration::from_millis(123),
                )
                .unwrap(),
            )),
            next_check: at(3_610),
            backoff: Some(Backoff {
                id: "20240102".into(),
                until: at(310),
                result_type: ResultType::StsWebpkiInvalid,
                reason: "certificate expired: 1 day ago; \"quoted\"\nsecond line".into(),
            }),
            failures: 3,
            last_used: at(20),
        }
    }

    /// The record as a store that keeps only byte strings (Redis) hands it back.
    fn as_bytes(record: Record) -> Record {
        record
            .into_iter()
            .map(|(name, value)| (name, Value::Bytes(value.into_bytes())))
            .collect()
    }

    fn with(mut record: Record, name: &str, value: Option<Value>) -> Record {
        match value {
            Some(v) => record.insert(name, v),
            None => {
                record.remove(name);
            }
        }
        record
    }

    fn text(s: &str) -> Option<Value> {
        Some(Value::Text(s.into()))
    }

    #[test]
    fn every_field_round_trips_typed_and_as_bytes() {
        let full = full_entry();
        let dns_failure = Entry {
            backoff: Some(Backoff {
                id: Backoff::DNS_FAILURE.into(),
                until: at(60),
                result_type: ResultType::StsPolicyFetchError,
                reason: "SERVFAIL".into(),
            }),
            failures: u32::MAX,
            ..Entry::new(Domain::new("example.org").unwrap(), at(5))
        };
        let before_1970 = Entry::new(
            Domain::new("xn--bcher-kva.example").unwrap(),
            UNIX_EPOCH - Duration::from_millis(1500),
        );
        for entry in [
            full,
            dns_failure,
            before_1970,
            Entry::new(Domain::new("bare.example").unwrap(), at(0)),
        ] {
            let record = encode(&entry, &NAMES);
            for record in [record.clone(), as_bytes(record)] {
                let decoded = decode(&record, &NAMES).unwrap();
                assert_eq!(decoded.entry, entry);
                assert!(decoded.dropped.is_empty(), "{:?}", decoded.dropped);
            }
        }
    }

    #[test]
    fn the_record_has_each_field_under_its_name() {
        let record = encode(&full_entry(), &NAMES);
        let names: Vec<&str> = record.iter().map(|(n, _)| n).collect();
        let mut all = NAMES.all().to_vec();
        all.sort_unstable();
        assert_eq!(names, all);
        assert_eq!(record.get("failures"), Some(&Value::Integer(3)));
        assert_eq!(
            record.get("fetched_at"),
            Some(&Value::Integer(1_700_000_010_123))
        );
        assert_eq!(
            record.get("backoff_result_type"),
            text("sts-webpki-invalid").as_ref()
        );
        let bare = encode(
            &Entry::new(Domain::new("bare.example").unwrap(), at(0)),
            &NAMES,
        );
        let names: Vec<&str> = bare.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["domain", "failures", "last_used", "next_check"]);
        // A store's own names are used throughout.
        let renamed = EntryFields {
            policy_text: "policy",
            ..NAMES
        };
        let record = encode(&full_entry(), &renamed);
        assert!(record.get("policy").is_some() && record.get("policy_text").is_none());
        assert_eq!(decode(&record, &renamed).unwrap().entry, full_entry());
    }

    /// What this version does not know costs only that part (each case: the field changed,
    /// its new value or None to remove it, what is left of the entry, the note expected).
    #[test]
    fn tolerated_oddities_keep_the_policy() {
        let entry = full_entry();
        let no_backoff = Entry {
            backoff: None,
            ..entry.clone()
        };
        let no_failures = Entry {
            failures: 0,
            ..entry.clone()
        };
        let cases: [(&str, Option<Value>, &Entry, &str); 11] = [
            (
                "backoff_result_type",
                text("sts-from-the-future"),
                &no_backoff,
                "unknown result type \"sts-from-the-future\"",
            ),
            (
                "backoff_reason",
                None,
                &no_backoff,
                "backoff_reason is missing",
            ),
            ("backoff_id", None, &no_backoff, "backoff_id is missing"),
            (
                "backoff_until",
                text("soon"),
                &no_backoff,
                "backoff_until is not a time",
            ),
            (
                "backoff_id",
                Some(Value::Bytes(vec![0xff])),
                &no_backoff,
                "backoff_id is not UTF-8",
            ),
            (
                "backoff_result_type",
                Some(Value::Integer(3)),
                &no_backoff,
                "is the integer 3, not text",
            ),
            ("failures", None, &no_failures, "failures is missing"),
            ("failures", text("-1"), &no_failures, "negative"),
            (
                "failures",
                text("many"),
                &no_failures,
                "\"many\" is not an integer",
            ),
            (
                "failures",
                Some(Value::Integer(i64::MAX)),
                &Entry {
                    failures: u32::MAX,
                    ..entry.clone()
                },
                "",
            ),
            (
                "added_later",
                text("x"),
                &entry,
                "unknown field \"added_later\" ignored",
            ),
        ];
        for (field, value, expected, note) in cases {
            let record = with(encode(&entry, &NAMES), field, value.clone());
            let decoded = decode(&record, &NAMES)
                .unwrap_or_else(|e| panic!("{field} = {value:?}: unreadable: {e}"));
            assert_eq!(&decoded.entry, expected, "{field} = {value:?}");
            assert!(
                decoded.entry.policy.is_some(),
                "{field}: the policy is kept"
            );
            if note.is_empty() {
                assert!(decoded.dropped.is_empty(), "{field}: {:?}", decoded.dropped);
            } else {
                assert!(
                    decoded.dropped.len() == 1 && decoded.dropped[0].contains(note),
                    "{field} = {value:?}: {:?}",
                    decoded.dropped
                );
            }
        }
        // A half-written backoff beside no policy at all: the entry still reads.
        let record = with(
            encode(
                &Entry::new(Domain::new("a.example").unwrap(), at(0)),
                &NAMES,
            ),
            "backoff_id",
            text(""),
        );
        let decoded = decode(&record, &NAMES).unwrap();
        assert_eq!(decoded.entry.backoff, None);
        assert_eq!(decoded.dropped.len(), 1);
    }

    /// What makes the entry meaningless: no domain, no mandatory time, an unusable policy.
    #[test]
    fn fatal_damage_makes_the_entry_unreadable() {
        let entry = full_entry();
        let cases: [(&str, Option<Value>, &str); 12] = [
            ("domain", None, "domain is missing"),
            ("domain", text("-not a domain-"), "invalid domain"),
            (
                "domain",
                Some(Value::Integer(7)),
                "domain is missing or not text",
            ),
            ("next_check", None, "next_check is missing"),
            ("next_check", text("soon"), "next_check is not a time"),
            (
                "last_used",
                Some(Value::Bytes(vec![0xff])),
                "last_used is not a time",
            ),
            ("last_used", text(""), "last_used is not a time"),
            ("policy_text", None, "policy_text is missing"),
            ("policy_text", text("garbage"), "no longer parses"),
            (
                "policy_id",
                Some(Value::Bytes(vec![0xff])),
                "policy_id is not UTF-8",
            ),
            ("expires_at", text(""), "expires_at is not a time"),
            ("fetched_at", None, "fetched_at is missing"),
        ];
        for (field, value, expected) in cases {
            let record = with(encode(&entry, &NAMES), field, value.clone());
            let why = decode(&record, &NAMES).unwrap_err();
            assert!(why.reason.contains(expected), "{field} = {value:?}: {why}");
        }
        // Policy fields without the id are as incomplete as the id without the rest.
        let bare = encode(
            &Entry::new(Domain::new("a.example").unwrap(), at(0)),
            &NAMES,
        );
        let why = decode(&with(bare, "policy_text", text("x")), &NAMES).unwrap_err();
        assert!(why.reason.contains("policy_id is missing"), "{why}");
        assert_eq!(why.domain.as_deref(), Some("a.example"));
    }

    #[test]
    fn values_read_across_representations() {
        assert_eq!(Value::Text("42".into()).as_integer(), Ok(42));
        assert_eq!(Value::Bytes(b"-5".to_vec()).as_integer(), Ok(-5));
        assert_eq!(Value::Bytes(b"id".to_vec()).as_text(), Ok("id"));
        assert_eq!(Value::Bytes(Vec::new()).as_text(), Ok(""));
        assert!(Value::Integer(1).as_text().is_err());
        assert!(Value::Text("1.5".into()).as_time().is_err());
        assert_eq!(
            Value::time(UNIX_EPOCH + Duration::from_millis(1234)),
            Value::Integer(1234)
        );
        assert_eq!(
            Value::Integer(-1500).as_time(),
            Ok(UNIX_EPOCH - Duration::from_millis(1500))
        );
    }
}
