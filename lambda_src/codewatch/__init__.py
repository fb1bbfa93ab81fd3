"""codewatch detection core: pure functions on plain data, shared by the Lambda handlers and the CLI.

Nothing in this package calls AWS. It needs only the standard library, except ``asff``, which reads
botocore's Security Hub model (no call is made) to validate findings.
"""
