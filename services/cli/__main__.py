"""`python -m services.cli`: the same as the `passpro` command (used by `passpro up` for its children)."""

import sys

from services.cli import main

sys.exit(main())
