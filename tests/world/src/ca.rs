//! A throw-away certificate authority and the server identities it issues.
//!
//! Every certificate is ECDSA P-256 / SHA-256. Validity windows are fixed calendar dates, not
//! relative to "now", so a test running on a controllable clock (any date between 2001 and 2098)
//! sees the same verdict as one on the wall clock:
//!
//! | [`Validity`] | not before | not after |
//! |---|---|---|
//! | `Valid` | 2000-01-01 | 2099-12-31 |
//! | `Expired` | 2000-01-01 | 2001-01-01 |
//! | `NotYetValid` | 2098-01-01 | 2099-12-31 |

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;
use crate::tls::provider;

/// When a certificate is valid (see the module documentation for the exact dates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Validity {
    /// Valid for the whole century.
    #[default]
    Valid,
    /// `not_after` is in 2001: expired under any plausible clock.
    Expired,
    /// `not_before` is in 2098: not yet valid under any plausible clock.
    NotYetValid,
}

impl Validity {
    fn apply(self, params: &mut CertificateParams) {
        let (from, to) = match self {
            Validity::Valid => ((2000, 1, 1), (2099, 12, 31)),
            Validity::Expired => ((2000, 1, 1), (2001, 1, 1)),
            Validity::NotYetValid => ((2098, 1, 1), (2099, 12, 31)),
        };
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(to.0, to.1, to.2);
    }
}

/// What a leaf certificate should look like.
///
/// Build one with [`CertSpec::dns`] or [`CertSpec::cn_only`] and the chained modifiers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertSpec {
    /// SAN dNSName entries, e.g. `mta-sts.example.com` or `*.example.net`. Empty means the
    /// certificate has no subjectAltName extension at all.
    pub dns_names: Vec<String>,
    /// Subject common name; `None` uses the first DNS name (or a fixed label if there is none).
    pub common_name: Option<String>,
    /// Validity window.
    pub validity: Validity,
    /// Issue the leaf from an intermediate CA (itself signed by the root); the identity's chain
    /// is then `[leaf, intermediate]`.
    pub via_intermediate: bool,
}

impl CertSpec {
    /// A valid certificate whose SAN lists these DNS names.
    pub fn dns<I, S>(names: I) -> CertSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CertSpec {
            dns_names: names.into_iter().map(Into::into).collect(),
            ..CertSpec::default()
        }
    }

    /// A certificate naming `name` only in the subject CN, with no subjectAltName extension
    /// (S-60: must not be accepted, there is no CN fallback).
    pub fn cn_only(name: impl Into<String>) -> CertSpec {
        CertSpec {
            common_name: Some(name.into()),
            ..CertSpec::default()
        }
    }

    /// Makes the certificate expired.
    pub fn expired(mut self) -> CertSpec {
        self.validity = Validity::Expired;
        self
    }

    /// Makes the certificate not yet valid.
    pub fn not_yet_valid(mut self) -> CertSpec {
        self.validity = Validity::NotYetValid;
        self
    }

    /// Issues the certificate through an intermediate CA.
    pub fn via_intermediate(mut self) -> CertSpec {
        self.via_intermediate = true;
        self
    }
}

/// A certificate chain (leaf first) and its private key, in DER and PEM.
///
/// Usable for the HTTPS server here and for any other TLS test server (SMTP STARTTLS, …).
#[derive(Clone)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    chain_pem: Vec<String>,
    /// PKCS#8 DER.
    key: Vec<u8>,
    key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A self-signed leaf (its own issuer, trusted by nobody).
    pub fn self_signed(spec: &CertSpec) -> Result<Identity, Error> {
        let key = KeyPair::generate()?;
        let cert = leaf_params(spec)?.self_signed(&key)?;
        Ok(Identity {
            chain_pem: vec![cert.pem()],
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The chain in DER, leaf first (the root is not included).
    pub fn chain_der(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate in DER.
    pub fn leaf_der(&self) -> &CertificateDer<'static> {
        // Invariant: every constructor puts at least the leaf into the chain.
        &self.chain[0]
    }

    /// The chain in PEM, one certificate per entry, leaf first.
    pub fn chain_pem_parts(&self) -> &[String] {
        &self.chain_pem
    }

    /// The whole chain as one PEM text (leaf first), as servers usually load it.
    pub fn chain_pem(&self) -> String {
        self.chain_pem.concat()
    }

    /// The private key (PKCS#8) in DER.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }

    /// The private key (PKCS#8) in PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The chain and key loaded for rustls (ring provider).
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, Error> {
        Ok(Arc::new(CertifiedKey::from_der(
            self.chain.clone(),
            self.key_der(),
            &provider(),
        )?))
    }

    /// A rustls server configuration (TLS 1.2 and 1.3, ring) presenting only this identity,
    /// whatever SNI the client sends. Meant for STARTTLS test servers.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, Error> {
        let config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key_der())?;
        Ok(Arc::new(config))
    }
}

/// A root certificate authority generated at start-up. Two calls to [`TestCa::new`] give two
/// unrelated CAs: trust one and the other's certificates are "from an untrusted CA".
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    name: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("name", &self.name).finish()
    }
}

impl TestCa {
    /// A new root CA named "mtasts test root CA".
    pub fn new() -> Result<TestCa, Error> {
        TestCa::with_name("mtasts test root CA")
    }

    /// A new root CA with this subject common name.
    pub fn with_name(common_name: &str) -> Result<TestCa, Error> {
        let issuer = CertifiedIssuer::self_signed(ca_params(common_name), KeyPair::generate()?)?;
        Ok(TestCa {
            issuer,
            name: common_name.to_owned(),
        })
    }

    /// The subject common name of the root.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The root certificate in PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The root certificate in DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        self.issuer.der()
    }

    /// Writes the root certificate in PEM to `path` (created or truncated).
    pub fn write_pem(&self, path: &Path) -> io::Result<()> {
        fs::write(path, self.pem())
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        // The certificate was generated just above by rcgen; it always parses.
        let _ = roots.add(self.der().clone());
        roots
    }

    /// A rustls client configuration (ring) trusting only this CA.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let config = ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Issues a leaf certificate (and a fresh key) as described by `spec`.
    pub fn issue(&self, spec: &CertSpec) -> Result<Identity, Error> {
        let leaf_key = KeyPair::generate()?;
        let params = leaf_params(spec)?;
        if spec.via_intermediate {
            let intermediate = CertifiedIssuer::signed_by(
                ca_params(&format!("{} intermediate", self.name)),
                KeyPair::generate()?,
                &self.issuer,
            )?;
            let leaf = params.signed_by(&leaf_key, &intermediate)?;
            Ok(Identity {
                chain_pem: vec![leaf.pem(), intermediate.pem()],
                chain: vec![leaf.der().clone(), intermediate.der().clone()],
                key: leaf_key.serialize_der(),
                key_pem: leaf_key.serialize_pem(),
            })
        } else {
            let leaf = params.signed_by(&leaf_key, &self.issuer)?;
            Ok(Identity {
                chain_pem: vec![leaf.pem()],
                chain: vec![leaf.der().clone()],
                key: leaf_key.serialize_der(),
                key_pem: leaf_key.serialize_pem(),
            })
        }
    }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "mtasts test world");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    Validity::Valid.apply(&mut params);
    params
}

fn leaf_params(spec: &CertSpec) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = spec
        .dns_names
        .iter()
        .map(|n| Ok(SanType::DnsName(n.clone().try_into()?)))
        .collect::<Result<Vec<_>, rcgen::Error>>()?;
    let cn = spec
        .common_name
        .clone()
        .or_else(|| spec.dns_names.first().cloned())
        .unwrap_or_else(|| "mtasts test leaf".to_owned());
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    spec.validity.apply(&mut params);
    Ok(params)
}
