"""The scoring service: the rectorat side of Passpro (campaigns, projection, reports, exports, audits)."""
