"""``python -m binaryvision ...``: the same command line as the ``binaryvision`` script."""

import sys

from binaryvision.cli import main

if __name__ == "__main__":
    sys.exit(main())
