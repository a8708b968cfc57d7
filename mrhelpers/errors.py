"""Exceptions raised by mrhelpers.

Every error names the value that was wrong, what is allowed, and the next step
for the reader. Catch :class:`MRHelpersError` to handle all of them.
"""

from __future__ import annotations


class MRHelpersError(Exception):
    """Base class of every error mrhelpers raises on purpose."""


class InvalidInput(MRHelpersError, ValueError):
    """An argument is not acceptable; nothing was written.

    Attributes:
        field: The argument's name, for example ``"version"``.
        value: The rejected value (never a secret).
        allowed: What would have been accepted.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"Invalid {field}: {shown}. Allowed: {allowed}.")


class RegistryUnavailable(MRHelpersError):
    """The Model Registry server did not answer (after bounded retries)."""


class AuthError(MRHelpersError):
    """The Model Registry (or the proxy in front of it) refused the token."""


class VersionConflict(MRHelpersError):
    """The version name is taken by a registration from another run.

    Attributes:
        model_name: The registered model's name.
        version_name: The version name that is taken.
        version_id: The id of the existing version.
        owner_run_id: The ``model_source_id`` (run id) of the existing version,
            or ``None`` when it has no lineage.
    """

    def __init__(
        self,
        model_name: str,
        version_name: str,
        version_id: str,
        owner_run_id: str | None,
    ) -> None:
        self.model_name = model_name
        self.version_name = version_name
        self.version_id = version_id
        self.owner_run_id = owner_run_id
        owner = f"run {owner_run_id!r}" if owner_run_id else "a registration without lineage"
        super().__init__(
            f"Version {version_name!r} of model {model_name!r} already exists "
            f"(id {version_id}, registered by {owner}). Pick a new version name, "
            "or pass on_conflict='bump' to take the next free one."
        )


class StackError(MRHelpersError):
    """The local stack (MariaDB + Model Registry server) could not be started or used."""


class RunFailed(MRHelpersError):
    """A pipeline run ended in a state other than success."""


class LineageWarning(UserWarning):
    """A compiled pipeline feeds lineage from a placeholder that is missing, unknown or crashes kfp.local."""
