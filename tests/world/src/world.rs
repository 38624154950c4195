//! A CA, a DNS server and an HTTPS server started together, plus scenario domains.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::RecordType;
use crate::dns::{DnsServer, Zone, ZoneEntry, ZoneRecord};
use crate::https::{HttpResponse, HttpsServer};
use crate::spec::{AddressSpec, CertCase, DnsDataSpec, DomainSpec, WorldSpec};
use crate::{CertSpec, Error, Identity, TestCa, normalize_name};

/// The address `mta-sts.<domain>` resolves to for [`AddressSpec::Unreachable`]: a loopback
/// address where nothing listens on the HTTPS port.
pub const UNREACHABLE_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A running test world: a trusted CA (its PEM in a temporary file), a second untrusted CA, a
/// DNS server and an HTTPS server, all on loopback.
///
/// Point the resolver under test at [`World::dns_addr`], give it [`World::https_port`] as the
/// port override for policy fetches and [`World::ca_pem_path`] as its only trust root.
/// Dropping the world stops both servers and deletes the CA file.
#[derive(Debug)]
pub struct World {
    ca: TestCa,
    untrusted_ca: TestCa,
    dns: DnsServer,
    https: HttpsServer,
    ca_file: PathBuf,
}

impl World {
    /// Starts an empty world (no domains).
    pub fn start() -> Result<World, Error> {
        let ca = TestCa::new()?;
        let untrusted_ca = TestCa::with_name("mtasts untrusted CA")?;
        let dns = DnsServer::start(Zone::new())?;
        let https = start_https()?;
        let ca_file = unique_temp_path("ca", "pem");
        write_new(&ca_file, ca.pem().as_bytes())?;
        Ok(World {
            ca,
            untrusted_ca,
            dns,
            https,
            ca_file,
        })
    }

    /// Starts a world holding every domain of `spec`.
    pub fn from_spec(spec: &WorldSpec) -> Result<World, Error> {
        let world = World::start()?;
        for domain in &spec.domains {
            world.add_policy_domain(domain)?;
        }
        Ok(world)
    }

    /// Starts a world holding every domain of this crate's `world.json`.
    pub fn bundled() -> Result<World, Error> {
        World::from_spec(&WorldSpec::bundled()?)
    }

    /// Adds (or replaces) a policy domain: its `_mta-sts` TXT, the address of `mta-sts.<name>`,
    /// the certificate and response of the policy host, and its extra DNS records.
    pub fn add_policy_domain(&self, spec: &DomainSpec) -> Result<(), Error> {
        let name = normalize_name(&spec.name);
        if name.is_empty() || !name.is_ascii() {
            return Err(Error::Spec(format!(
                "domain {:?} must be a non-empty A-label name",
                spec.name
            )));
        }
        let host = spec.policy_host();
        let zone = self.zone();
        zone.set_entry(&spec.txt_name(), spec.txt_entry()?);
        zone.set_entry(&host, address_entry(spec.address));
        for record in &spec.dns {
            match (&record.data, record.record()?) {
                (_, Some(r)) => zone.add_record(&record.name, r),
                (DnsDataSpec::Outcome(o), None) => zone.set_entry(&record.name, o.entry()),
                (_, None) => {}
            }
        }
        let identity = self.policy_identity(&name, spec.cert)?;
        self.https.set_identity(&host, &identity)?;
        self.https.set_policy_response(&host, spec.http_response()?);
        Ok(())
    }

    /// Removes a domain's `_mta-sts` and `mta-sts` names from DNS and its policy host from HTTPS
    /// (extra records from [`DomainSpec::dns`] stay).
    pub fn remove_policy_domain(&self, domain: &str) {
        let name = normalize_name(domain);
        self.zone().remove(&format!("_mta-sts.{name}"));
        self.zone().remove(&format!("mta-sts.{name}"));
        self.https.remove_host(&format!("mta-sts.{name}"));
    }

    /// Replaces `_mta-sts.<domain>` with the single record `v=STSv1; id=<id>;`.
    pub fn set_policy_id(&self, domain: &str, id: &str) {
        self.zone().set_records(
            &format!("_mta-sts.{}", normalize_name(domain)),
            vec![ZoneRecord::txt1(&format!("v=STSv1; id={id};"))],
        );
    }

    /// Replaces the response of `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    pub fn set_policy_response(&self, domain: &str, response: HttpResponse) {
        self.https
            .set_policy_response(&format!("mta-sts.{}", normalize_name(domain)), response);
    }

    /// How many HTTPS requests `mta-sts.<domain>` received.
    pub fn policy_requests(&self, domain: &str) -> u64 {
        self.https
            .requests(&format!("mta-sts.{}", normalize_name(domain)))
    }

    /// How many TXT queries for `_mta-sts.<domain>` the DNS server received.
    pub fn txt_queries(&self, domain: &str) -> u64 {
        self.dns.queries(
            &format!("_mta-sts.{}", normalize_name(domain)),
            RecordType::TXT,
        )
    }

    /// The DNS server address (`127.0.0.1:port`, UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns.addr()
    }

    /// The HTTPS port; every policy host is served there on `127.0.0.1`.
    pub fn https_port(&self) -> u16 {
        self.https.port()
    }

    /// The trusted root certificate in PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A file holding [`World::ca_pem`], deleted when the world is dropped.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_file
    }

    /// The trusted CA (to issue more certificates, e.g. for SMTP test servers).
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// A second CA that nobody trusts.
    pub fn untrusted_ca(&self) -> &TestCa {
        &self.untrusted_ca
    }

    /// The DNS server (counters, zone changes).
    pub fn dns(&self) -> &DnsServer {
        &self.dns
    }

    /// The zone of the DNS server.
    pub fn zone(&self) -> &Zone {
        self.dns.zone()
    }

    /// The HTTPS server (counters, host and response changes).
    pub fn https(&self) -> &HttpsServer {
        &self.https
    }

    fn policy_identity(&self, domain: &str, case: CertCase) -> Result<Identity, Error> {
        let host = format!("mta-sts.{domain}");
        match case {
            CertCase::Valid => self.ca.issue(&CertSpec::dns([host])),
            CertCase::Wildcard => self.ca.issue(&CertSpec::dns([format!("*.{domain}")])),
            CertCase::Chain => self.ca.issue(&CertSpec::dns([host]).via_intermediate()),
            CertCase::Untrusted => self.untrusted_ca.issue(&CertSpec::dns([host])),
            CertCase::WrongName => self.ca.issue(&CertSpec::dns([format!("www.{domain}")])),
            CertCase::Expired => self.ca.issue(&CertSpec::dns([host]).expired()),
            CertCase::NotYetValid => self.ca.issue(&CertSpec::dns([host]).not_yet_valid()),
            CertCase::CnOnly => self.ca.issue(&CertSpec::cn_only(host)),
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

fn address_entry(address: AddressSpec) -> ZoneEntry {
    use crate::spec::DnsOutcome;
    match address {
        AddressSpec::Loopback => ZoneEntry::Records(vec![ZoneRecord::a(Ipv4Addr::LOCALHOST)]),
        AddressSpec::Unreachable => ZoneEntry::Records(vec![ZoneRecord::a(UNREACHABLE_ADDR)]),
        AddressSpec::Nxdomain => DnsOutcome::Nxdomain.entry(),
        AddressSpec::Nodata => DnsOutcome::Nodata.entry(),
        AddressSpec::Servfail => DnsOutcome::Servfail.entry(),
        AddressSpec::Timeout => DnsOutcome::Timeout.entry(),
    }
}

/// Starts the HTTPS server on a port that is free on [`UNREACHABLE_ADDR`] too, so connecting
/// there is refused (S-19).
fn start_https() -> Result<HttpsServer, Error> {
    for _ in 0..16 {
        let https = HttpsServer::start()?;
        match TcpListener::bind((UNREACHABLE_ADDR, https.port())) {
            // Bound and dropped at once: nothing listens there.
            Ok(_probe) => return Ok(https),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            // 127.0.0.2 is not configured (e.g. macOS): connecting there fails anyway.
            Err(_) => return Ok(https),
        }
    }
    Err(Error::Io(io::Error::other(
        "no HTTPS port is free on both 127.0.0.1 and 127.0.0.2",
    )))
}

/// A path in the temporary directory that no other world (in this or another process) uses.
pub(crate) fn unique_temp_path(what: &str, ext: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "mtasts-testworld-{what}-{}-{}-{nanos}.{ext}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ))
}

fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(data)
}
