"""``python -m spikestream_client``: the ``spikestream`` command of a client-only install
(the console script's dispatcher, with the commands the installed distributions offer)."""

import sys

from spikestream_client.cli import main

sys.exit(main())
