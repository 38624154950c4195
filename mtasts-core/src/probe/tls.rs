//! The TLS part of a probe (R-CERT-1; RFC 8461 §4.2, RFC 3207): a rustls client, TLS 1.2 or
//! 1.3 with SNI = the MX host name, that records the chain the server presents instead of
//! judging it, maps a failed handshake to a [`FailureReason`], and ends the session with
//! `QUIT` and `close_notify`.
//!
//! The chain is judged afterwards by [`CertVerifier::check`](crate::CertVerifier::check) (see
//! the [module docs](super)); the handshake signatures are verified here, so the server proved
//! it holds the leaf's key.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ClientConnection, Resumption};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{AlertDescription, DigitallySignedStruct, PeerIncompatible, ProtocolVersion};
use rustls::{SignatureScheme, Stream};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::dialogue::{QUIT_WAIT, say_quit};
use super::reply::ReplyReader;
use super::transport::{Transport, is_timeout};
use super::{ProbeOutcome, ProbeReport};
use crate::failure::{FailureReason, MxFailure};

/// Runs the TLS handshake over `io` (right after the `220` answer to `STARTTLS`), recording
/// the timing, the TLS version, the cipher suite and the chain in `report`. `Err` is the
/// probe's outcome: a failed handshake fails the MX (R-CERT-1), with the chain recorded so
/// far. `timeout_ms` is the deadline, for the messages.
pub(super) fn handshake(
    io: &mut impl Transport,
    report: &mut ProbeReport,
    start: Instant,
    timeout_ms: u128,
) -> Result<ClientConnection, ProbeOutcome> {
    let incomplete = |reason: String| ProbeOutcome::Incomplete { reason };
    // R-CERT-1: TLS 1.2 or 1.3, SNI = the MX host name.
    let recorder = Arc::new(ChainRecorder::new());
    let config = client_config(Arc::clone(&recorder))
        .map_err(|e| incomplete(format!("TLS configuration: {e}")))?;
    let name = ServerName::try_from(report.mx_host.as_str().to_owned())
        .map_err(|e| incomplete(format!("SNI name {}: {e}", report.mx_host)))?;
    let mut conn = ClientConnection::new(config, name)
        .map_err(|e| incomplete(format!("TLS configuration: {e}")))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(io) {
            report.chain = recorder.take();
            return Err(ProbeOutcome::Fail(tls_failure(&e, timeout_ms)));
        }
    }
    report.timings.handshake = Some(start.elapsed());
    report.tls_version = conn.protocol_version().map(version_name);
    report.cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    report.chain = match conn.peer_certificates() {
        Some(chain) => chain.iter().map(|c| c.clone().into_owned()).collect(),
        None => recorder.take(),
    };
    Ok(conn)
}

/// Sends `QUIT` inside TLS, reads its answer ([`QUIT_WAIT`] at most; it does not change the
/// outcome), then `close_notify`, ignoring errors.
pub(super) fn close(conn: &mut ClientConnection, io: &mut impl Transport) {
    io.shorten_deadline(QUIT_WAIT);
    say_quit(&mut Stream::new(conn, io), &mut ReplyReader::default());
    conn.send_close_notify();
    let _ = conn.write_tls(io);
}

/// The name of a TLS version, e.g. `TLSv1.3`.
fn version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        other => format!("{other:?}"),
    }
}

/// Classifies a failed handshake (R-CERT-1): too old a TLS version, or anything else.
fn tls_failure(e: &io::Error, timeout_ms: u128) -> MxFailure {
    let tls = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    match tls {
        Some(
            tls @ (rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
            | rustls::Error::PeerIncompatible(
                PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig,
            )),
        ) => MxFailure::new(
            FailureReason::TlsVersionUnsupported,
            format!("TLS handshake failed ({tls}): the server offers no TLS version from 1.2 up"),
        ),
        Some(rustls::Error::AlertReceived(alert)) => MxFailure::new(
            FailureReason::TlsHandshakeFailed,
            format!("TLS handshake failed: the server sent the alert {alert:?}"),
        ),
        Some(tls) => MxFailure::new(
            FailureReason::TlsHandshakeFailed,
            format!("TLS handshake failed: {tls}"),
        ),
        None if is_timeout(e) => MxFailure::new(
            FailureReason::TlsHandshakeFailed,
            format!("TLS handshake not complete within the {timeout_ms} ms deadline"),
        ),
        None => MxFailure::new(
            FailureReason::TlsHandshakeFailed,
            format!("TLS handshake failed: {e}"),
        ),
    }
}

/// The probe's client configuration: TLS 1.2 and 1.3 (R-CERT-1), the chain recorded by
/// `recorder`, no client certificate, no session resumption.
fn client_config(recorder: Arc<ChainRecorder>) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        // R-CERT-1: TLS 1.2 or newer (rustls implements nothing older anyway).
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    // One probe, one session: nothing to resume.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Records the chain the server presents and verifies the handshake signatures; the chain
/// itself is judged after the handshake by
/// [`CertVerifier::check`](crate::CertVerifier::check) (see the module docs).
#[derive(Debug)]
struct ChainRecorder {
    /// The chain last presented, leaf first.
    chain: Mutex<Vec<CertificateDer<'static>>>,
    /// The signature algorithms of the crypto provider, for the handshake signatures.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ChainRecorder {
    /// A recorder with no chain yet.
    fn new() -> ChainRecorder {
        ChainRecorder {
            chain: Mutex::new(Vec::new()),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    /// The chain recorded, leaving none.
    fn take(&self) -> Vec<CertificateDer<'static>> {
        std::mem::take(&mut *self.chain.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.chain.lock().unwrap_or_else(PoisonError::into_inner) = chain;
        // Deferred: R-CERT-2 and R-CERT-3 are decided by `CertVerifier::check` afterwards.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
