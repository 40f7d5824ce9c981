"""SMTP over TLS: smtp+starttls:// and smtps:// against aiosmtpd with a certificate of a private CA given in
PASSPRO_SMTP_CA_FILE; without that CA the certificate is refused (nothing sent, a retry queued)."""

from __future__ import annotations

import datetime as dt
import ssl
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from notifier_world import Clock, Inbox, Student, free_port, settings_for, text_of

from services.notifier import ledger
from services.notifier.process import opened
from tests.shared.event_factories import T0, ine_number, registered, scheduled


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (its own CA), as PEM files."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp de test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
async def test_tls_with_the_private_ca_and_refused_without_it(scheme, certificate, log, academie, redis_url,
                                                              tmp_path):
    inbox = Inbox()
    port = free_port()
    options = ({"tls_context": server_context(certificate), "require_starttls": True} if scheme == "smtp+starttls"
               else {"ssl_context": server_context(certificate)})
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        student = Student(log, ine_number(40))
        await student.add(registered())
        await student.add(scheduled(at=T0 + timedelta(days=10)))
        url = f"{scheme}://127.0.0.1:{port}"
        untrusted = settings_for(academie, redis_url, tmp_path / "u", url, smtp_timeout_seconds=3)
        async with opened(untrusted, clock=Clock(T0)) as notifier:
            await notifier.create_groups()
            await notifier.read_new()
            with notifier.engine.connect() as conn:
                [queued] = conn.execute(sa.select(ledger.mail_queue)).all()
        assert "CERTIFICATE_VERIFY_FAILED" in queued.last_error and inbox.messages == []
        trusted = settings_for(academie, redis_url, tmp_path / "t", url, smtp_ca_file=str(certificate[0]),
                               consumer_group="notifier-tls")
        async with opened(trusted, clock=Clock(T0)) as notifier:
            await notifier.create_groups()
            await notifier.read_new()
        [message] = inbox.messages
        assert "Léa Martin" in text_of(message)
    finally:
        controller.stop()
