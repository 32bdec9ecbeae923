"""``python -m spikestream.cli``: the same as the ``spikestream`` console script."""

import sys

from spikestream.cli import main

sys.exit(main())
