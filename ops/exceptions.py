from common.errors import ApplicationError


class OpsError(ApplicationError):
    code = "ops_error"


class ReasonRequired(ApplicationError):
    code = "reason_required"
    status = 400


class PermissionRefused(ApplicationError):
    """A staff user without `ops.change_opsswitch` (the operator role) tried to switch something."""

    code = "permission_denied"
    status = 403


class NotAuthorized(ApplicationError):
    code = "not_authorized"
    status = 401


class BackupInvalid(ApplicationError):
    code = "backup_invalid"
    status = 400


class RestoreRefused(ApplicationError):
    code = "restore_refused"
    status = 409
