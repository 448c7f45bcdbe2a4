"""nutrimatch: the domain core (a Lambda layer in AWS, an importable package locally)."""
