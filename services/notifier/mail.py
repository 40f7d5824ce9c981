"""The e-mails in French (plain text and HTML) and how they leave: SMTP through the standard library
(smtplib, run in a worker thread), or the local outbox when no SMTP server is configured.

smtplib rather than aiosmtplib: one message at a time from one notifier, sent in a thread so the event loop
keeps reading the log; no further dependency."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from urllib.parse import unquote, urlsplit

from services.notifier.domain import Notification
from shared.contracts.reference import TRANSIT_PLANNER_URL, ReferenceData, journey_url
from shared.fr.formats import paris
from shared.fr.labels import CANCEL_REASONS, MODE_PROSE

TRANSIT_LABELS = {"metro": "Métro", "rer": "RER", "tram": "Tramway", "bus": "Bus"}


@dataclass(frozen=True)
class Mail:
    key: str
    kind: str
    recipient: str
    subject: str
    text: str
    html: str

    def message(self, sender: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = self.recipient
        msg["Subject"] = self.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="passpro.local")
        msg["X-Passpro-Notification"] = self.key  # the ledger's key: a duplicate is recognisable
        msg.set_content(self.text)
        msg.add_alternative(self.html, subtype="html")
        return msg


def _lycee_lines(reference: ReferenceData, uai: str) -> tuple[str, list[str], str | None]:
    lycee = reference.get(uai)
    if lycee is None:
        return uai, [], None
    access = [f"{TRANSIT_LABELS.get(s.mode, s.mode)} {', '.join(s.lines)} : {s.stop}" for s in lycee.access]
    return f"{lycee.name}, {lycee.address}", access, journey_url(lycee)


def _formation(reference: ReferenceData, code: str) -> str:
    sheet = reference.formation(code)
    return sheet.label if sheet is not None else code


def render(n: Notification, reference: ReferenceData, *, recipient: str, registration_url: str) -> Mail:
    """The notification as an e-mail in French: what happened, the interview, the lycée's address and access,
    the journey link and (convocations) the convocation page."""
    itw = n.interview
    assert itw is not None
    lycee, access, journey = _lycee_lines(reference, itw.lycee_uai)
    formation = _formation(reference, itw.formation_code)
    when = paris(itw.scheduled_at)
    student = f"{n.student_name} ({n.class_name})" if n.class_name else n.student_name
    page = f"{registration_url.rstrip('/')}/eleves/{n.ine}/entretiens/{itw.interview_id}/convocation"
    greeting = f"Bonjour {n.referent_name}," if n.referent_name else "Bonjour,"
    links: list[tuple[str, str]] = []
    if n.kind == "convocation":
        subject = f"Convocation à l'entretien de {n.student_name} le {when}"
        lead = [greeting, f"L'entretien de {student} est réservé le {when} ({MODE_PROSE.get(itw.mode, itw.mode)}), "
                f"pour la formation {formation}."]
        links.append(("La convocation à remettre à l'élève", page))
    elif n.kind == "convocation_moved":
        subject = f"Entretien de {n.student_name} déplacé au {when}"
        lead = [greeting, f"L'entretien de {student} pour la formation {formation}, prévu le "
                f"{paris(n.previous_at, missing='(date inconnue)')}, est déplacé au {when} "
                f"({MODE_PROSE.get(itw.mode, itw.mode)}). La nouvelle convocation remplace la précédente."]
        links.append(("La nouvelle convocation à remettre à l'élève", page))
    elif n.kind == "convocation_cancelled":
        subject = f"Entretien de {n.student_name} annulé"
        reason = CANCEL_REASONS.get(n.cancel_reason or "", n.cancel_reason or "")
        lead = [greeting, f"L'entretien de {student} prévu le {when} pour la formation {formation} est annulé"
                + (f" (motif : {reason.lower()})." if reason else ".") + " La convocation n'est plus valable."]
    elif n.kind == "reminder_college_avis":
        subject = f"Rappel : avis du collège manquant pour {n.student_name}"
        lead = ["Madame, Monsieur le principal,", f"Le premier entretien de {student} a lieu le {when} "
                f"(formation {formation}) et l'avis du collège n'est pas encore donné. Merci de le saisir avant "
                "l'entretien dans Passpro."]
        links.append(("La fiche de l'élève", f"{registration_url.rstrip('/')}/eleves/{n.ine}"))
    else:
        subject = f"Rappel : avis du lycée manquant pour {n.student_name}"
        lead = ["Madame, Monsieur le proviseur,", f"L'entretien de {student} (formation {formation}) s'est tenu le "
                f"{paris(itw.held_at)} et l'avis du lycée n'est pas encore donné. Merci de le saisir dans Passpro."]
    where = ["Lieu de l'entretien : " + lycee] + [f"Accès : {line}" for line in access]
    place = (("Lien de l'entretien" if itw.mode == "distanciel" else "Salle au lycée"), n.slot_place)
    if n.slot_place:
        where.insert(1, f"{place[0]} : {place[1]}")
    if journey:
        where.append(f"Itinéraire : {journey}")
    where.append(f"Transports en commun : {TRANSIT_PLANNER_URL}")
    text_lines = [*lead, "", *where, "", *(f"{label} : {url}" for label, url in links), "",
                  "Ce message est envoyé automatiquement par Passpro ; merci de ne pas y répondre."]
    html = ["<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>"
            f"{escape(subject)}</title></head><body>"]
    html += [f"<p>{escape(line)}</p>" for line in lead]
    html.append(f"<p><strong>Lieu de l'entretien :</strong> {escape(lycee)}</p>")
    if n.slot_place:
        html.append(f"<p><strong>{escape(place[0])} :</strong> {escape(place[1])}</p>")
    if access:
        html.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in access) + "</ul>")
    if journey:
        html.append(f"<p><a href=\"{escape(journey)}\">Itinéraire jusqu'au lycée</a></p>")
    html += [f"<p><a href=\"{escape(url)}\">{escape(label)}</a></p>" for label, url in links]
    html.append("<p><small>Ce message est envoyé automatiquement par Passpro ; merci de ne pas y répondre."
                "</small></p></body></html>")
    return Mail(n.key, n.kind, recipient, subject, "\n".join(text_lines).strip() + "\n", "\n".join(html))


class SmtpError(Exception):
    """The SMTP server refused or could not be reached; the message says how."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: str  # "plain", "starttls", "tls"
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None  # a private CA (PEM); None: the system's certificates

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file or None)


def parse_smtp_url(url: str, ca_file: str = "") -> SmtpTarget:
    """smtp://host:25 (plain), smtp+starttls://host:587, smtps://host:465, with user:password@ when needed."""
    parts = urlsplit(url)
    security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}.get(parts.scheme)
    if security is None or not parts.hostname:
        raise ValueError(f"PASSPRO_SMTP_URL : schéma ou hôte invalide ({parts.scheme or 'aucun'}) ; "
                         "attendu smtp://, smtp+starttls:// ou smtps://hôte:port")
    port = parts.port or {"plain": 25, "starttls": 587, "tls": 465}[security]
    return SmtpTarget(parts.hostname, port, security,
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None, ca_file or None)


def _connect(target: SmtpTarget, timeout: float) -> smtplib.SMTP:
    if target.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=target.tls())
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=timeout)
    try:
        if target.security == "starttls":
            client.starttls(context=target.tls())
        if target.user:
            client.login(target.user, target.password or "")
    except BaseException:
        client.close()
        raise
    return client


def send_smtp(target: SmtpTarget, message: EmailMessage, timeout: float) -> None:
    """One message through one connection (blocking: run it in a thread). Any failure is an SmtpError."""
    try:
        with _connect(target, timeout) as client:
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpError(f"{type(exc).__name__}: {exc}") from exc


class SmtpConnection:
    """One SMTP connection kept open between messages (blocking: call it from one thread at a time). A message
    that fails on a connection already used is tried once on a fresh one (the server may have closed it while
    idle); any other failure closes it and is an SmtpError."""

    def __init__(self, target: SmtpTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.client: smtplib.SMTP | None = None

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None

    def send(self, message: EmailMessage) -> None:
        reused = self.client is not None
        try:
            try:
                if self.client is None:
                    self.client = _connect(self.target, self.timeout)
                self.client.send_message(message)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                self.client = None
                self.client = _connect(self.target, self.timeout)
                self.client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500 or exc.smtp_code in (421,):  # the connection is not to be used again
                self.close()
            else:
                self._reset()
            raise SmtpError(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SmtpError(f"{type(exc).__name__}: {exc}") from exc

    def _reset(self) -> None:
        try:
            if self.client is not None:
                self.client.rset()
        except (OSError, smtplib.SMTPException):
            self.close()
