"""`python -m fakelens ...`: the `fakelens` command (fakelens.cli.main), e.g. where the script is not on PATH."""

import sys

from fakelens.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
