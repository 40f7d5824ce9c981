-- compose-cluster.yaml: each académie's views in a database of its own (run once, at the server's first start).
CREATE DATABASE passpro_lyon;
CREATE DATABASE passpro_lille;
CREATE DATABASE passpro_paris;
