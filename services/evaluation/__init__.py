"""The evaluation service: the lycée side of Passpro."""
