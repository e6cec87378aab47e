"""The CLI's own error type and exit statuses (kept apart from main.py so `python -m` runs share them)."""

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class CliError(Exception):
    """An error already phrased for the user."""
