"""The registration service: the collège side of Passpro."""
