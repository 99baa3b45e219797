"""Run a module as __main__ in this process and print its peak RSS (MB) on the last line.

python -m bench.rss <module> [args...]
"""

from __future__ import annotations

import resource
import runpy
import sys

if __name__ == "__main__":
    module, sys.argv = sys.argv[1], sys.argv[1:]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code or 0
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}", flush=True)
    sys.exit(code)
