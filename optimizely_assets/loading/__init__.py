"""Moving a day: its manifest (footers, ranged reads), the streamed copy to staging, the `_SUCCESS` watch."""
