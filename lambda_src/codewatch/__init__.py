"""codewatch detection core: pure functions on plain data, shared by the Lambda handlers and the CLI.

Nothing in this package calls AWS or imports anything beyond the standard library.
"""
