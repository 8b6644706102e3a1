from common.errors import ApplicationError


class ApprovalError(ApplicationError):
    code = "approval_error"


class ApprovalNotFound(ApprovalError):
    code = "approval_not_found"
    status = 404


class ApprovalRefused(ApprovalError):
    """The person may not approve this request (their own, or approved by them already)."""

    code = "own_request"
    status = 403


class ApprovalNotPending(ApprovalError):
    """Approved, expired or cancelled already: nothing to approve."""

    code = "not_pending"
    status = 409


class ApprovalPending(ApprovalError):
    """Another request for the same target waits already: approve or cancel that one first."""

    code = "approval_pending"
    status = 409


class FourEyesRequired(ApprovalError):
    """The act needs a second person: it was recorded as a request, not done."""

    code = "four_eyes_required"
    status = 409
