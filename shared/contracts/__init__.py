"""Pure contracts shared by every service: identifiers, events, stream keys. No I/O here."""
