"""Errors (stream job): failures a user can act on, carried as one-line messages."""


class JobError(RuntimeError):
    """The stream job cannot start or stopped; the message says what to do."""
