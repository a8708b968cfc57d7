"""A version's life after registration: archive, restore, and a stage.

The stage is kept as the version's custom property ``mrh_stage``. A model has
at most one version in stage ``production``: promoting one demotes the others.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mrhelpers.errors import InvalidInput
from mrhelpers.registry import STAGE_KEY, _all_versions, _caller

if TYPE_CHECKING:
    from model_registry import ModelRegistry

STAGES = ("candidate", "production")
DEMOTE_TO = ("candidate", "archived")


@dataclasses.dataclass(frozen=True)
class StageChange:
    """What :func:`set_stage` changed.

    Attributes:
        model_name: The model.
        version_name: The version that got the stage.
        stage: Its new stage.
        demoted: Versions that left ``production`` for this one.
    """

    model_name: str
    version_name: str
    stage: str
    demoted: tuple[str, ...]


def _find(registry: ModelRegistry, name: str, version: str) -> tuple[Any, Any]:
    call = _caller(registry)
    model = call(lambda: registry._api.get_registered_model_by_params(name))
    if model is None:
        raise InvalidInput("model", name, "the name of a registered model")
    mv = call(lambda: registry._api.get_model_version_by_params(model.id, version))
    if mv is None:
        raise InvalidInput("version", f"{name}/{version}", f"an existing version of {name!r}")
    return model, mv


def _save(registry: ModelRegistry, mv: Any) -> Any:
    return _caller(registry)(lambda: registry._api.upsert_model_version(mv, None))


def _set_state(registry: ModelRegistry, name: str, version: str, state: str) -> str:
    from model_registry.types import ModelVersionState

    _, mv = _find(registry, name, version)
    mv.state = ModelVersionState(state)
    return _state_of(_save(registry, mv))


def _state_of(mv: Any) -> str:
    return getattr(mv.state, "value", mv.state)


def archive_version(registry: ModelRegistry, name: str, version: str) -> str:
    """Archive a version (state ``ARCHIVED``); a production version also loses that stage.

    Returns:
        The new state, ``"ARCHIVED"``.

    Raises:
        InvalidInput: When the model or version does not exist.
    """
    from model_registry.types import ModelVersionState

    _, mv = _find(registry, name, version)
    mv.state = ModelVersionState.ARCHIVED
    props = dict(mv.custom_properties or {})
    if props.get(STAGE_KEY) == "production":
        props[STAGE_KEY] = "candidate"
        mv.custom_properties = props
    return _state_of(_save(registry, mv))


def restore_version(registry: ModelRegistry, name: str, version: str) -> str:
    """Bring an archived version back (state ``LIVE``).

    Returns:
        The new state, ``"LIVE"``.

    Raises:
        InvalidInput: When the model or version does not exist.
    """
    return _set_state(registry, name, version, "LIVE")


def set_stage(
    registry: ModelRegistry, name: str, version: str, stage: str, *, demote_to: str = "candidate"
) -> StageChange:
    """Put a version into ``stage``; keep at most one ``production`` version per model.

    Args:
        registry: A client from :func:`mrhelpers.connect`.
        name: The model's name.
        version: The version's name.
        stage: ``"candidate"`` or ``"production"``.
        demote_to: What happens to the model's other production version when this one
            is promoted: ``"candidate"`` (default) or ``"archived"`` (stage candidate
            and state ARCHIVED).

    Returns:
        A :class:`StageChange` naming the demoted versions.

    Raises:
        InvalidInput: Unknown stage or demote_to, a missing model or version, or
            promoting an archived version (restore it first).
    """
    if stage not in STAGES:
        raise InvalidInput("stage", stage, " or ".join(repr(s) for s in STAGES))
    if demote_to not in DEMOTE_TO:
        raise InvalidInput("demote_to", demote_to, " or ".join(repr(s) for s in DEMOTE_TO))
    model, mv = _find(registry, name, version)
    if stage == "production" and _state_of(mv) == "ARCHIVED":
        raise InvalidInput("version", f"{name}/{version}", "a LIVE version: restore_version() it first")
    demoted = []
    if stage == "production":
        from model_registry.types import ModelVersionState

        for other in _all_versions(registry, model.id):
            if other.id != mv.id and (other.custom_properties or {}).get(STAGE_KEY) == "production":
                other.custom_properties = {**other.custom_properties, STAGE_KEY: "candidate"}
                if demote_to == "archived":
                    other.state = ModelVersionState.ARCHIVED
                _save(registry, other)
                demoted.append(other.name)
    mv.custom_properties = {**(mv.custom_properties or {}), STAGE_KEY: stage}
    _save(registry, mv)
    return StageChange(name, version, stage, tuple(demoted))


def production_version(registry: ModelRegistry, name: str) -> str | None:
    """The name of model ``name``'s production version, or None."""
    model = _caller(registry)(lambda: registry._api.get_registered_model_by_params(name))
    if model is None:
        raise InvalidInput("model", name, "the name of a registered model")
    found = [
        v.name for v in _all_versions(registry, model.id) if (v.custom_properties or {}).get(STAGE_KEY) == "production"
    ]
    return found[0] if found else None


def archive_model(registry: ModelRegistry, name: str) -> list[str]:
    """Archive every live version of model ``name``, then the model itself; idempotent.

    Returns:
        The names of the versions this call archived (empty when all already were).

    Raises:
        InvalidInput: When the model does not exist.
    """
    from model_registry.types import RegisteredModelState

    call = _caller(registry)
    model = call(lambda: registry._api.get_registered_model_by_params(name))
    if model is None:
        raise InvalidInput("model", name, "the name of a registered model")
    archived = [v.name for v in _all_versions(registry, model.id) if _state_of(v) != "ARCHIVED"]
    for version in archived:
        archive_version(registry, name, version)
    if getattr(model.state, "value", model.state) != "ARCHIVED":
        model.state = RegisteredModelState.ARCHIVED
        call(lambda: registry._api.upsert_registered_model(model))
    return archived
