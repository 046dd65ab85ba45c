"""Channel kinds, one folder each; each speaks its provider's real API."""
