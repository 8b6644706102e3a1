"""The one exception a migration raises to refuse a step (usually a backward one) in a sentence.

Migrations import it, so it is history: keep its name and module. The `migrate` command
(ops/management/commands/migrate.py) turns it into a CommandError: the operator reads why and what
to do first, not a traceback, and the migration's transaction has rolled back.
"""


class MigrationRefused(Exception):
    pass
