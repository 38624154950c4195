//! Emitting sessions as libtlsrpt datagrams to an existing collector (issue 15, item 3b), for
//! sites already running sys4's stack (`tlsrpt-collectd`, `tlsrpt-reportd`): with
//! `tlsrpt.emit_socket` set, [`Reporter::open`](crate::Reporter::open) records through a
//! [`DatagramEmitter`] instead of a store, and each session becomes the datagram Postfix
//! would send for it ([`Datagram::from_session`]).
//!
//! A datagram carries the domain's TLSRPT record (`pr`): the collector keeps sessions under
//! different records apart and reportd sends to the record's `rua`. The emitter looks it up
//! (R-RPT-1, `_smtp._tls.<domain>`) and keeps the answer for its TTL (at least
//! [`MIN_RECORD_TTL`], at most [`MAX_RECORD_TTL`]). A domain without a usable record gets no
//! datagram, as Postfix sends none then (nothing is reported for it, R-RPT-10).
//!
//! Sending never blocks a delivery for long: the socket has a send timeout of
//! [`SEND_TIMEOUT`]; when the collector's queue stays full that long, or the collector is not
//! there, the session is not counted and the caller gets an error
//! ([`Error::ReportStore`]), never a silent drop.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::datagram::Datagram;
use super::record::{ReportRecordAnswer, discover_report_record};
use super::session::{Session, UtcDay};
use super::store::{CachedReportRecord, DayReport, ReportDelivery, ReportStore};
use crate::clock::{Clock, SystemClock};
use crate::dns::DnsResolver;
use crate::domain::Domain;
use crate::error::{Error, Result};

/// The longest a send waits for room in the collector's queue.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(100);
/// The shortest time a TLSRPT record answer is kept (answers with a smaller TTL, and those
/// without one, are kept this long).
pub const MIN_RECORD_TTL: Duration = Duration::from_secs(60);
/// The longest time a TLSRPT record answer is kept.
pub const MAX_RECORD_TTL: Duration = Duration::from_secs(3600);
/// The most domains whose record answers are kept at once.
const MAX_RECORDS: usize = 10_000;

/// Sends sessions as libtlsrpt datagrams to a collector's socket (see the module docs). As a
/// [`ReportStore`] it keeps nothing: reading calls find no counts (the collector's side has
/// them), and `record` sends.
#[derive(Debug)]
pub struct DatagramEmitter {
    socket: UnixDatagram,
    target: PathBuf,
    dns: Arc<dyn DnsResolver>,
    clock: Arc<dyn Clock>,
    /// domain → (its record's text, or `None` for no reports; kept until).
    records: Mutex<HashMap<Domain, (Option<String>, SystemTime)>>,
}

impl DatagramEmitter {
    /// An emitter sending to the collector socket at `target`, looking TLSRPT records up
    /// through `dns`. The collector need not be running yet: each send finds it anew.
    ///
    /// # Errors
    /// [`Error::ReportStore`] when no socket can be made.
    pub fn new(target: &Path, dns: Arc<dyn DnsResolver>) -> Result<DatagramEmitter> {
        let fail = |e: std::io::Error| Error::ReportStore {
            reason: format!("datagrams to {}: {e}", target.display()),
        };
        let socket = UnixDatagram::unbound().map_err(fail)?;
        socket.set_write_timeout(Some(SEND_TIMEOUT)).map_err(fail)?;
        Ok(DatagramEmitter {
            socket,
            target: target.to_path_buf(),
            dns,
            clock: Arc::new(SystemClock),
            records: Mutex::new(HashMap::new()),
        })
    }

    /// The clock the record answers expire by (tests move it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> DatagramEmitter {
        self.clock = clock;
        self
    }

    /// The collector socket datagrams go to.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Sends `datagram` as it is.
    ///
    /// # Errors
    /// [`Error::ReportStore`] naming the socket: the datagram cannot be written (too large),
    /// no collector is listening, or its queue stayed full for [`SEND_TIMEOUT`]. The
    /// datagram is then not counted.
    pub fn send(&self, datagram: &Datagram) -> Result<()> {
        let fail = |why: String| Error::ReportStore {
            reason: format!(
                "datagram for {} to {}: {why}; the session is not counted",
                datagram.domain,
                self.target.display()
            ),
        };
        let bytes = datagram.to_bytes().map_err(|e| fail(e.to_string()))?;
        let sent = self
            .socket
            .send_to(&bytes, &self.target)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => fail(format!(
                    "the collector's queue stayed full for {} ms",
                    SEND_TIMEOUT.as_millis()
                )),
                _ => fail(e.to_string()),
            })?;
        if sent != bytes.len() {
            return Err(fail(format!("only {sent} of {} bytes sent", bytes.len())));
        }
        Ok(())
    }

    /// Sends `session` with its domain's TLSRPT record; `Ok(false)` when the domain has no
    /// usable record (nothing is sent: no report would be made for it).
    ///
    /// # Errors
    /// [`Error::DnsTemporary`] when the record cannot be looked up now (the session is not
    /// counted), and as [`DatagramEmitter::send`].
    pub fn emit(&self, session: &Session) -> Result<bool> {
        let domain = session.policy().domain();
        let Some(record) = self.record(domain)? else {
            log::debug!(
                "tlsrpt: no TLS-RPT record for {domain}: its session is not sent (R-RPT-10)"
            );
            return Ok(false);
        };
        self.send(&Datagram::from_session(session, &record))?;
        Ok(true)
    }

    /// The TLSRPT record text of `domain`, from the answers kept or from DNS.
    fn record(&self, domain: &Domain) -> Result<Option<String>> {
        let now = self.clock.now();
        {
            let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((record, until)) = records.get(domain)
                && now < *until
            {
                return Ok(record.clone());
            }
        }
        let (record, ttl) = match discover_report_record(self.dns.as_ref(), domain)? {
            ReportRecordAnswer::Found(record) => (Some(record.text), None),
            ReportRecordAnswer::NoReports { ttl, .. } => (None, ttl),
        };
        let keep = ttl
            .map_or(MIN_RECORD_TTL, |t| Duration::from_secs(u64::from(t)))
            .clamp(MIN_RECORD_TTL, MAX_RECORD_TTL);
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() >= MAX_RECORDS {
            records.retain(|_, (_, until)| now < *until);
            if records.len() >= MAX_RECORDS {
                records.clear();
            }
        }
        records.insert(domain.clone(), (record.clone(), now + keep));
        Ok(record)
    }
}

impl ReportStore for DatagramEmitter {
    /// Sends the session ([`DatagramEmitter::emit`]); a domain without TLSRPT record is `Ok`
    /// with nothing sent (no report would be made for it).
    fn record(&self, session: &Session) -> Result<()> {
        self.emit(session).map(|_| ())
    }

    fn list_days(&self) -> Result<Vec<ReportDelivery>> {
        Ok(Vec::new())
    }

    fn day_report(&self, _day: UtcDay, _domain: &Domain) -> Result<Option<DayReport>> {
        Ok(None)
    }

    fn delivery(&self, _day: UtcDay, _domain: &Domain) -> Result<Option<ReportDelivery>> {
        Ok(None)
    }

    fn record_attempt(
        &self,
        _day: UtcDay,
        _domain: &Domain,
        _next_attempt: Option<SystemTime>,
    ) -> Result<bool> {
        Ok(false)
    }

    fn mark_delivered(&self, _day: UtcDay, _domain: &Domain, _at: SystemTime) -> Result<bool> {
        Ok(false)
    }

    fn mark_abandoned(&self, _day: UtcDay, _domain: &Domain, _at: SystemTime) -> Result<bool> {
        Ok(false)
    }

    fn prune(&self, _now: SystemTime) -> Result<usize> {
        Ok(0)
    }

    /// Nothing is kept for the sender: the collector's side reports (the emitter keeps the
    /// records it sends with in memory, [`DatagramEmitter::emit`]).
    fn report_record(&self, _domain: &Domain) -> Result<Option<CachedReportRecord>> {
        Ok(None)
    }

    fn put_report_record(&self, _record: &CachedReportRecord) -> Result<()> {
        Ok(())
    }

    fn location(&self) -> String {
        format!("datagrams to {}", self.target.display())
    }
}
