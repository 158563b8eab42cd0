"""``python -m aptt_edu`` is ``python -m aptt_edu.train`` (and the ``aptt-edu`` console script)."""

import sys

from aptt_edu.train import main

if __name__ == "__main__":
    sys.exit(main())
