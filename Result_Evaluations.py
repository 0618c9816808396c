"""Runs → tables, significance tests and figures; see ``results/cli.py`` for the options.

python Result_Evaluations.py Training_Results/RevisitDML --select selected --out Results
"""

from __future__ import annotations

import sys

from results.cli import main

if __name__ == "__main__":
    sys.exit(main())
