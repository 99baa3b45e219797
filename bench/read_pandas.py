"""The naive way to look at a file: read it whole with pandas.  python -m bench.read_pandas <file>"""

import sys

import pandas as pd

if __name__ == "__main__":
    pd.read_parquet(sys.argv[1])
