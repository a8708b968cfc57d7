"""A version's life after registration: archive, restore, and a stage.

A model has at most one version in stage ``production``, by construction: the
RegisteredModel holds a pointer to it (custom property ``mrh_production_version``,
the version's id; ``""`` for none), as an alias does in MLflow or Vertex AI.
Promoting a version is one write of that pointer, so concurrent promoters leave
exactly one production version: the last write wins. A version's stage is
derived: ``production`` when the pointer names it, ``candidate`` when it was
ever staged (its own ``mrh_stage`` property) and is not pointed at, else none.

Data written before the pointer existed (``mrh_stage="production"`` on the
versions, no pointer on the model) reads as it was stored; the next
:func:`set_stage` or :func:`archive_version` on that model writes the pointer.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mrhelpers.core.errors import InvalidInput
from mrhelpers.core.registry import PRODUCTION_KEY, STAGE_KEY, all_versions
from mrhelpers.core.rest import session_for

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


def stage_of(model_props: dict[str, Any] | None, version: Any) -> str | None:
    """A version's stage, derived from its model's production pointer (see the module's doc)."""
    model_props = model_props or {}
    own = (version.custom_properties or {}).get(STAGE_KEY)
    if PRODUCTION_KEY not in model_props:  # written before the pointer existed: as stored
        return own
    if str(model_props[PRODUCTION_KEY]) == str(version.id):
        return "production"
    return "candidate" if own in STAGES else None


def _production_id(model: Any, versions: list[Any] | None, registry: ModelRegistry) -> str:
    """The id of the model's production version, ``""`` for none (old data: the newest one staged so)."""
    props = model.custom_properties or {}
    if PRODUCTION_KEY in props:
        return str(props[PRODUCTION_KEY])
    versions = all_versions(registry, model.id) if versions is None else versions
    staged = [v for v in versions if (v.custom_properties or {}).get(STAGE_KEY) == "production"]
    newest = max(staged, key=lambda v: int(v.last_update_time_since_epoch or 0), default=None)
    return str(newest.id) if newest is not None else ""


def _point(registry: ModelRegistry, model: Any, version_id: str) -> None:
    """Write the production pointer: one write, so concurrent writers leave exactly one (the last)."""
    model.custom_properties = {**(model.custom_properties or {}), PRODUCTION_KEY: version_id}
    session_for(registry).save_model(model)


def _find(registry: ModelRegistry, name: str, version: str) -> tuple[Any, Any]:
    session = session_for(registry)
    model = session.find_model(name)
    if model is None or model.name != name:  # a database that ignores case may find another model
        raise InvalidInput("model", name, "the name of a registered model")
    mv = session.find_version(model.id, version)
    if mv is None or mv.name != version:
        raise InvalidInput("version", f"{name}/{version}", f"an existing version of {name!r}")
    return model, mv


def _save(registry: ModelRegistry, mv: Any) -> Any:
    return session_for(registry).save_version(mv)


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

    model, mv = _find(registry, name, version)
    if _production_id(model, None, registry) == str(mv.id):
        _point(registry, model, "")
    elif PRODUCTION_KEY not in (model.custom_properties or {}):
        _point(registry, model, _production_id(model, None, registry))  # old data: migrate to the pointer
    mv.state = ModelVersionState.ARCHIVED
    if (mv.custom_properties or {}).get(STAGE_KEY) == "production":
        mv.custom_properties = {**mv.custom_properties, STAGE_KEY: "candidate"}
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
    """Put a version into ``stage``; a model has exactly one ``production`` version or none.

    Promoting writes the model's production pointer in one request, so promoters
    racing on one model leave exactly one production version: the last write wins.

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
    versions = all_versions(registry, model.id)
    current = _production_id(model, versions, registry)
    if (mv.custom_properties or {}).get(STAGE_KEY) != stage:
        mv.custom_properties = {**(mv.custom_properties or {}), STAGE_KEY: stage}
        _save(registry, mv)
    demoted: list[str] = []
    if stage == "production":
        _point(registry, model, str(mv.id))
        if current and current != str(mv.id):
            demoted = [v.name for v in versions if str(v.id) == current]
            if demote_to == "archived":
                for other in demoted:
                    archive_version(registry, name, other)
    elif current == str(mv.id) or PRODUCTION_KEY not in (model.custom_properties or {}):
        _point(registry, model, "" if current == str(mv.id) else current)
    return StageChange(name, version, stage, tuple(demoted))


def production_version(registry: ModelRegistry, name: str) -> str | None:
    """The name of model ``name``'s production version, or None."""
    model = session_for(registry).find_model(name)
    if model is None or model.name != name:
        raise InvalidInput("model", name, "the name of a registered model")
    versions = all_versions(registry, model.id)
    current = _production_id(model, versions, registry)
    return next((v.name for v in versions if str(v.id) == current), None) if current else None


def archive_model(registry: ModelRegistry, name: str) -> list[str]:
    """Archive every live version of model ``name``, then the model itself; idempotent.

    Returns:
        The names of the versions this call archived (empty when all already were).

    Raises:
        InvalidInput: When the model does not exist.
    """
    from model_registry.types import RegisteredModelState

    session = session_for(registry)
    model = session.find_model(name)
    if model is None or model.name != name:
        raise InvalidInput("model", name, "the name of a registered model")
    archived = [v.name for v in all_versions(registry, model.id) if _state_of(v) != "ARCHIVED"]
    for version in archived:
        archive_version(registry, name, version)
    if getattr(model.state, "value", model.state) != "ARCHIVED":
        model = session.find_model(name)  # with the pointer just cleared
        model.state = RegisteredModelState.ARCHIVED
        session.save_model(model)
    return archived
