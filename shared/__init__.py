"""Passpro's own package: the event contracts and the runtime pieces every service uses."""
