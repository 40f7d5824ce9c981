"""The log: the append script, its client, and the chain hash beside the script that computes it."""
