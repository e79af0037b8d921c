"""``python -m convert``: run the CLI and exit with its status."""

import sys

from convert.cli import main

sys.exit(main())
