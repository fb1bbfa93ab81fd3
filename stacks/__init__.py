"""codewatch's CDK app: one construct per logical unit, composed by the stacks."""
