"""``python -m spikestream``: the same as the ``spikestream`` console script."""

import sys

from spikestream.cli import main

sys.exit(main())
