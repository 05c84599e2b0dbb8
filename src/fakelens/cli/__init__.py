"""The `fakelens` command: one module per sub-command, each light to import."""
