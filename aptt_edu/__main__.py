"""``python -m aptt_edu`` is the ``aptt-edu`` command (see ``aptt_edu.cli``)."""

import sys

from aptt_edu.cli import main

if __name__ == "__main__":
    sys.exit(main())
