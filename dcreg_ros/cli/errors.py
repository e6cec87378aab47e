"""The CLI's own error type (kept apart from main.py so `python -m` runs share one class)."""


class CliError(Exception):
    """An error already phrased for the user."""
