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


class LossNotConfirmed(RestoreRefused):
    """The restore would erase `loss`, and the operator has not confirmed that list (its SHA-256)."""

    code = "loss_not_confirmed"

    def __init__(self, detail: str, *, loss):
        super().__init__(detail)
        self.loss = loss
