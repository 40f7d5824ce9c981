"""Runtime pieces every service uses at its edges: the log, the consumer loop, auth, errors, settings."""
