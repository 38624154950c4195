"""Certificate checks and the STARTTLS probe (S-50..S-64 after TLS).

Certificates come from the test world (what `ssl.SSLSocket.getpeercert(binary_form=True)`
gives for its policy hosts, chaining to the world's CA) and, for what the world does not serve
(a subject-CN-only leaf, an intermediate, an SMTP server), from a small CA made here with
`cryptography`.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import mtasts
from mtasts import FailureReason, ProbeOutcome, ResultType

from conftest import World

UTC = datetime.timezone.utc


def peer_der(world: World, domain: str) -> bytes:
    """The leaf certificate the world's HTTPS server presents for mta-sts.<domain>."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", world.https_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=f"mta-sts.{domain}") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


@pytest.fixture(scope="module")
def verifier(world: World) -> mtasts.CertVerifier:
    return mtasts.CertVerifier(world.ca_pem)


def test_valid_leaf_from_ssl(world: World, verifier: mtasts.CertVerifier) -> None:
    der = peer_der(world, "s01.mtasts.test")
    check = verifier.check(der, "mta-sts.s01.mtasts.test")
    assert check.valid and check.failure is None
    assert repr(check) == "CertCheck(valid=True, failure=None)"
    # The same leaf as PEM text, and as a list of DER certificates.
    assert verifier.check(ssl.DER_cert_to_PEM_cert(der), "MTA-STS.s01.mtasts.test.").valid
    assert verifier.check([der], "mta-sts.s01.mtasts.test").valid
    assert verifier.check(bytearray(der), "mta-sts.s01.mtasts.test").valid


@pytest.mark.parametrize(
    "domain, host, reason, result_type",
    [
        # S-59: valid, for another name.
        ("s01.mtasts.test", "mail.example.com", "certificate-host-mismatch", "certificate-host-mismatch"),
        # S-57: expired.
        ("s17.mtasts.test", "mta-sts.s17.mtasts.test", "certificate-expired", "certificate-expired"),
        # S-58: untrusted CA.
        ("s15.mtasts.test", "mta-sts.s15.mtasts.test", "certificate-not-trusted", "certificate-not-trusted"),
        # SAN www.<domain> only.
        ("s16.mtasts.test", "mta-sts.s16.mtasts.test", "certificate-host-mismatch", "certificate-host-mismatch"),
    ],
)
def test_rejected_leaves(
    world: World, verifier: mtasts.CertVerifier, domain: str, host: str, reason: str, result_type: str
) -> None:
    check = verifier.check(peer_der(world, domain), host)
    assert not check.valid
    assert check.failure is not None
    assert check.failure.reason is FailureReason(reason)
    assert check.failure.result_type is ResultType(result_type)
    assert check.failure.detail


def test_check_at_a_given_time(world: World, verifier: mtasts.CertVerifier) -> None:
    der = peer_der(world, "s17.mtasts.test")  # valid 2000-01-01 .. 2001-01-01
    at = datetime.datetime(2000, 6, 1, tzinfo=UTC)
    assert verifier.check(der, "mta-sts.s17.mtasts.test", at=at).valid
    late = datetime.datetime(2030, 6, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    check = verifier.check(der, "mta-sts.s17.mtasts.test", at=late)
    assert check.failure is not None and check.failure.reason is FailureReason.CERTIFICATE_EXPIRED


def test_decide_with_a_cert_check(world: World, verifier: mtasts.CertVerifier) -> None:
    """S-50 / S-57 / S-63: the verdict decides with the certificate check."""
    policy_text = "version: STSv1\nmode: {mode}\nmx: *.s01.mtasts.test\nmax_age: 86400\n"
    enforce = mtasts.parse_policy(policy_text.format(mode="enforce"))
    testing = mtasts.parse_policy(policy_text.format(mode="testing"))
    good = verifier.check(peer_der(world, "s01.mtasts.test"), "mta-sts.s01.mtasts.test")
    bad = verifier.check(peer_der(world, "s17.mtasts.test"), "mta-sts.s01.mtasts.test")

    verdict = enforce.verdict("mta-sts.s01.mtasts.test")
    assert verdict.requires_tls and verdict.mx_host == "mta-sts.s01.mtasts.test"
    assert verdict.decide(good).deliver
    refused = verdict.decide(bad)
    assert not refused.deliver
    assert refused.failure is not None and refused.failure.result_type is ResultType.CERTIFICATE_EXPIRED

    recorded = testing.verdict("mta-sts.s01.mtasts.test").decide(bad)
    assert recorded.deliver and recorded.failure is not None
    with pytest.raises(TypeError):
        verdict.decide("certificate-expired")  # type: ignore[arg-type]


def test_resolver_cert_verifier(world: World) -> None:
    resolver = world.resolver()
    verifier = resolver.cert_verifier()
    assert verifier.trust_roots == world.ca_pem
    assert verifier.check(peer_der(world, "s01.mtasts.test"), "mta-sts.s01.mtasts.test").valid
    bundled = mtasts.CertVerifier("bundled")
    check = bundled.check(peer_der(world, "s01.mtasts.test"), "mta-sts.s01.mtasts.test")
    assert check.failure is not None
    assert check.failure.reason is FailureReason.CERTIFICATE_NOT_TRUSTED


def test_unreadable_chains(verifier: mtasts.CertVerifier, world: World) -> None:
    for bad in (b"", b"not a certificate", "-----BEGIN CERTIFICATE-----\nnope\n", []):
        with pytest.raises(mtasts.InvalidChain) as info:
            verifier.check(bad, "mail.example.com")
        assert isinstance(info.value, ValueError) and info.value.kind == "invalid-chain"
    for wrong in (42, None, ["a string"], [42]):
        with pytest.raises(TypeError):
            verifier.check(wrong, "mail.example.com")  # type: ignore[arg-type]
    with pytest.raises(mtasts.InvalidDomain):
        verifier.check(peer_der(world, "s01.mtasts.test"), "1.2.3.4")
    with pytest.raises(mtasts.ConfigError):
        mtasts.CertVerifier("/nonexistent/roots.pem")


# Certificates made here ------------------------------------------------------------------


@dataclass
class Pki:
    """A CA (with an intermediate) and helpers to issue leaves, all PEM files in a directory."""

    directory: Path
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    inter_key: ec.EllipticCurvePrivateKey
    inter: x509.Certificate

    @property
    def root_pem(self) -> Path:
        return self.directory / "root.pem"

    def leaf(
        self, sans: List[str], cn: Optional[str] = None, via_intermediate: bool = False
    ) -> Tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer_key, issuer = (self.inter_key, self.inter) if via_intermediate else (self.root_key, self.root)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or "leaf")]))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime.datetime(2090, 1, 1, tzinfo=UTC))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
            )
        return key, builder.sign(issuer_key, hashes.SHA256())


def _ca(name: str, key: ec.EllipticCurvePrivateKey, issuer: Optional[Tuple[ec.EllipticCurvePrivateKey, x509.Certificate]]) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, subject)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime.datetime(2095, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(signer_key, hashes.SHA256())
    )


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ca("mtasts test root", root_key, None)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _ca("mtasts test intermediate", inter_key, (root_key, root))
    (directory / "root.pem").write_bytes(pem(root))
    return Pki(directory, root_key, root, inter_key, inter)


def test_subject_cn_only_is_a_host_mismatch(pki: Pki) -> None:
    """S-60: the name only in the subject CN, no SAN: certificate-host-mismatch."""
    verifier = mtasts.CertVerifier(pki.root_pem)
    _, leaf = pki.leaf([], cn="mail.example.com")
    check = verifier.check(der(leaf), "mail.example.com")
    assert check.failure is not None
    assert check.failure.reason is FailureReason.CERTIFICATE_NO_SAN
    assert check.failure.result_type is ResultType.CERTIFICATE_HOST_MISMATCH


def test_chain_with_an_intermediate(pki: Pki) -> None:
    """A leaf issued by an intermediate: the chain as a list, PEM text, or DER bytes joined."""
    verifier = mtasts.CertVerifier(str(pki.root_pem))
    _, leaf = pki.leaf(["*.example.net"], via_intermediate=True)
    assert verifier.check([der(leaf), der(pki.inter)], "mx1.example.net").valid  # S-61
    assert verifier.check((pem(leaf) + pem(pki.inter)).decode(), "mx1.example.net").valid
    assert verifier.check(der(leaf) + der(pki.inter), "mx1.example.net").valid
    alone = verifier.check(der(leaf), "mx1.example.net")
    assert alone.failure is not None
    assert alone.failure.reason is FailureReason.CERTIFICATE_NOT_TRUSTED
    wrong = verifier.check([der(leaf), der(pki.inter)], "a.mx1.example.net")
    assert wrong.failure is not None and wrong.failure.result_type is ResultType.CERTIFICATE_HOST_MISMATCH


# STARTTLS probe ----------------------------------------------------------------------------


class SmtpServer:
    """A tiny SMTP server on loopback: banner, EHLO (STARTTLS advertised or not), STARTTLS,
    then QUIT over TLS. Serves connections until closed."""

    def __init__(self, tls: Optional[ssl.SSLContext]) -> None:
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    self._session(conn)
                except (OSError, ssl.SSLError):
                    pass

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        conn.sendall(b"220 mx.test ESMTP ready\r\n")
        reader.readline()  # EHLO
        if self.tls is None:
            conn.sendall(b"250-mx.test\r\n250 8BITMIME\r\n")
        else:
            conn.sendall(b"250-mx.test\r\n250 STARTTLS\r\n")
        line = reader.readline()
        if not line.upper().startswith(b"STARTTLS") or self.tls is None:
            conn.sendall(b"221 bye\r\n")
            return
        conn.sendall(b"220 go ahead\r\n")
        with self.tls.wrap_socket(conn, server_side=True) as tls:
            tls_reader = tls.makefile("rb")
            while True:
                line = tls_reader.readline()
                if not line:
                    return
                if line.upper().startswith(b"QUIT"):
                    tls.sendall(b"221 bye\r\n")
                    return
                tls.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def smtp_tls(pki: Pki, tmp_path: Path) -> Iterator[SmtpServer]:
    key, leaf = pki.leaf(["mx.probe.test"])
    cert_file = tmp_path / "leaf.pem"
    key_file = tmp_path / "leaf.key"
    cert_file.write_bytes(pem(leaf))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    server = SmtpServer(context)
    yield server
    server.close()


def test_probe_pass(pki: Pki, smtp_tls: SmtpServer, world: World) -> None:
    resolver = world.resolver(trust_roots=pki.root_pem)
    report = resolver.probe("mx.probe.test", addresses=[f"127.0.0.1:{smtp_tls.port}"], timeout=10)
    assert report.outcome is ProbeOutcome.PASS, report
    assert report.failure is None and report.reason is None
    assert report.mx_host == "mx.probe.test"
    assert report.address == f"127.0.0.1:{smtp_tls.port}"
    assert report.starttls_offered
    assert report.tls_version in ("TLSv1.2", "TLSv1.3")
    assert report.cipher_suite
    assert report.banner and "ESMTP" in report.banner[0]
    assert len(report.chain) == 1 and isinstance(report.chain[0], bytes)
    assert report.timings.total >= (report.timings.handshake or 0) > 0
    # The chain the probe got checks the same way with a verifier.
    assert mtasts.CertVerifier(pki.root_pem).check(list(report.chain), "mx.probe.test").valid


def test_probe_with_untrusted_roots(smtp_tls: SmtpServer, world: World) -> None:
    """S-58 through the probe: the world's CA does not know this server's certificate."""
    report = world.resolver().probe(
        "mx.probe.test", addresses=[f"127.0.0.1:{smtp_tls.port}"], timeout=10
    )
    assert report.outcome is ProbeOutcome.FAIL
    assert report.failure is not None
    assert report.failure.result_type is ResultType.CERTIFICATE_NOT_TRUSTED


def test_probe_starttls_not_offered(world: World) -> None:
    """S-56: no STARTTLS in the EHLO reply: starttls-not-supported."""
    server = SmtpServer(None)
    try:
        report = world.resolver().probe(
            "mx.probe.test", addresses=[f"127.0.0.1:{server.port}"], timeout=10
        )
    finally:
        server.close()
    assert report.outcome is ProbeOutcome.FAIL
    assert not report.starttls_offered
    assert report.failure is not None
    assert report.failure.reason is FailureReason.STARTTLS_NOT_OFFERED
    assert report.failure.result_type is ResultType.STARTTLS_NOT_SUPPORTED


def test_probe_incomplete(world: World) -> None:
    resolver = world.resolver()
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    report = resolver.probe("mx.probe.test", addresses=[f"127.0.0.1:{port}"], timeout=5)
    assert report.outcome is ProbeOutcome.INCOMPLETE
    assert report.reason and report.failure is None
    assert report.connect_errors
    # Through the world's DNS: the host does not exist.
    missing = resolver.probe("nx.s02.mtasts.test", timeout=5)
    assert missing.outcome is ProbeOutcome.INCOMPLETE and missing.address is None
    with pytest.raises(mtasts.InvalidDomain):
        resolver.probe("not a host")
    with pytest.raises(mtasts.ConfigError):
        resolver.probe("mx.probe.test", ehlo_name="bad name!")
    with pytest.raises(mtasts.ConfigError):
        resolver.probe("mx.probe.test", addresses=["nowhere"])
