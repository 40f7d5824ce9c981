"""The notifier (SPEC §7 "Reminders by e-mail"): reads the campaign's service streams in a Redis consumer group
and sends the référents' convocations and the avis reminders by SMTP, each recorded once in its own ledger."""
