"""Specific, actionable errors raised by the scoring domain."""

from __future__ import annotations


class ScoringError(Exception):
    """Base class: every error the domain raises on bad input or bad artefacts."""


class SchemaError(ScoringError):
    """The data or the schema file does not describe a usable credit dataset."""


class UnknownClientError(ScoringError, KeyError):
    def __init__(self, client_id):
        self.client_id = client_id
        super().__init__(f"unknown client ID {client_id!r}: no application with this ID in the client files")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class InvalidApplicationError(ScoringError, ValueError):
    """An application sent for scoring has a bad field (name, type, NaN/inf, negative amount)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")


class ModelError(ScoringError):
    """The model directory is missing, corrupt, or does not match the data."""


class ArtefactsMissingError(ModelError):
    """Nothing built yet in the work directory."""


class ServiceUnavailableError(ScoringError):
    """The scoring API cannot be reached (down, refusing connections, too slow) or is failing."""


class ApiAuthenticationError(ScoringError):
    """No token, or the API refused it (401)."""


class AuditUnavailableError(ScoringError):
    """The audit entry of an action cannot be written: the action is refused and nothing is returned."""


class AccessDeniedError(ScoringError):
    """The caller's role does not allow this (403)."""


class UnknownDecisionError(ScoringError, KeyError):
    """No recorded decision of this ID on this client file."""

    def __init__(self, client_id, decision_id):
        self.client_id, self.decision_id = client_id, decision_id
        super().__init__(f"no decision {decision_id!r} recorded on client file {client_id!r}: see "
                         f"GET /clients/{client_id}/decisions for the decisions recorded")

    def __str__(self) -> str:
        return self.args[0]


class RegistryError(ScoringError):
    """A model version that cannot be compared or activated, or an activation without a reason."""


class VersionConflictError(RegistryError):
    """A registered version that cannot be served over the client files: built on other data, reading other
    features, or already the one served (HTTP 409)."""


class UnknownVersionError(RegistryError, KeyError):
    def __init__(self, version, known: str = ""):
        self.version = version
        super().__init__(f"unknown model version {version!r}" + (f" (registered: {known})" if known else ""))

    def __str__(self) -> str:
        return self.args[0]


class PolicyError(ScoringError, ValueError):
    """A threshold simulation or adoption refused (`scoring.policy`): `field` names the input at fault
    (threshold, reason, cost_missed_default, cost_refused_good, target_acceptance)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)
