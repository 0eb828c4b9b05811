"""``python -m local_stack``: what ``make dev`` runs."""

import sys

from .stack import main

sys.exit(main())
