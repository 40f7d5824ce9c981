-- compose-cluster.yaml: each académie's key store in a database of its own (run once, at the server's first start).
CREATE DATABASE keys_lyon;
CREATE DATABASE keys_lille;
CREATE DATABASE keys_paris;
