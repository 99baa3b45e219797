"""Run a module as __main__ in this process and print its peak RSS (MB) on the last line.

python -m bench.rss <module> [args...]
"""

from __future__ import annotations

import runpy
import sys

if __name__ == "__main__":
    module, sys.argv = sys.argv[1], sys.argv[1:]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code or 0
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) parent.
    hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(f"peak_rss_mb={hwm_kb / 1024:.1f}", flush=True)
    sys.exit(code)
