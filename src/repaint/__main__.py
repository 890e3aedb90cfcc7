"""`python -m repaint` is the `repaint` command."""

import sys

from repaint.cli import main

sys.exit(main())
