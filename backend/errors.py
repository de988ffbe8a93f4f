"""Errors (query layer): failures a user can act on, importable without duckdb or pandas.

The CLI catches these to print one line instead of a traceback; importing them must not
cost every command the start-up time and memory of the query engines.
"""


class QueryError(RuntimeError):
    """A query failed; the message is one line that names the cause."""
