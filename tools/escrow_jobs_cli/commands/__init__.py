"""The commands, one module per idea: ``stats``; ``jobs`` (show one, enqueue one); ``dlq``
(the dead-letter queue: list, show, replay, purge); ``drain`` (run due jobs once).

Each ``cmd_*`` takes the invocation (``cli.Cli``) and returns the exit code.
"""
