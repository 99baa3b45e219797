"""From canonical events to experiment results: units, attributed conversions, results, SRM."""
