"""Keys: the key store and the crypto that seals personal fields."""
