"""A version's life after registration: archive, restore, and a stage (``candidate`` or ``production``); the model's
pointer ``mrh_production_version`` names its one production version (docs/guarantees.md: the races)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mrhelpers.core.errors import InvalidInput, MRHelpersError
from mrhelpers.core.registry import PRODUCTION_KEY, STAGE_KEY
from mrhelpers.core.rest import session_for

if TYPE_CHECKING:
    from model_registry import ModelRegistry

STAGES = ("candidate", "production")
DEMOTE_TO = ("candidate", "archived")
ARCHIVED_MARK = "mrh_archived"  # on a version's ModelArtifact while archived: "1", or "model" (by archive_model)
REPAIRS = 3  # most writes of one state change that racing writes undo


@dataclasses.dataclass(frozen=True)
class StageChange:
    """What :func:`set_stage` changed: ``demoted`` names the versions that left ``production`` for this one."""

    model_name: str
    version_name: str
    stage: str
    demoted: tuple[str, ...]


def state_of(entity: Any) -> str | None:
    state = getattr(entity, "state", None)
    return getattr(state, "value", state)


def stage_of(model_props: dict[str, Any] | None, version: Any) -> str | None:
    """``production`` when the model's pointer names the LIVE version and its own stage agrees; else ``candidate`` if
    ever staged (without a pointer, as stored)."""
    model_props = model_props or {}
    own = (version.custom_properties or {}).get(STAGE_KEY)
    live = state_of(version) != "ARCHIVED"
    if PRODUCTION_KEY not in model_props:
        return own if live or own != "production" else "candidate"
    if str(model_props[PRODUCTION_KEY]) == str(version.id) and own == "production" and live:
        return "production"
    return "candidate" if own in STAGES else None


def _production_id(model: Any, versions: list[Any]) -> str:
    """The id of the model's production version, ``""`` for none (old data: the newest one staged so)."""
    staged = [v for v in versions if stage_of(model.custom_properties, v) == "production"]
    newest = max(staged, key=lambda v: int(v.last_update_time_since_epoch or 0), default=None)
    return str(newest.id) if newest is not None else ""


def _find(registry: ModelRegistry, name: str, version: str | None = None) -> tuple[Any, Any]:
    """The model and (when ``version`` is given) its version, exactly so named (a database may ignore case)."""
    model = session_for(registry).find_model(name)
    if model is None or model.name != name:
        raise InvalidInput("model", name, "the name of a registered model")
    mv = session_for(registry).find_version(model.id, version) if version is not None else None
    if version is not None and (mv is None or mv.name != version):
        raise InvalidInput("version", f"{name}/{version}", f"an existing version of {name!r}")
    return model, mv


def _write(
    read: Callable[[], Any], change: Callable[[Any], bool], save: Callable[[Any], Any], what: str, tries: int = 1
) -> Any:
    """Read, ``change`` and save the entity whole when changed; up to ``tries`` times while racing writes undo it."""
    entity = read()
    for _ in range(tries):
        if not change(entity):
            return entity
        entity = save(entity)
        if tries > 1:
            entity = read()
    if tries > 1 and change(entity):
        raise MRHelpersError(f"{what} was undone {tries} times by other writers at the same moment; retry it.")
    return entity


def _set_prop(entity: Any, key: str, value: str) -> bool:
    """Set custom property ``key`` to ``value``; False when it has it already."""
    if (entity.custom_properties or {}).get(key) == value:
        return False
    entity.custom_properties = {**(entity.custom_properties or {}), key: value}
    return True


def _put_state(entity: Any, state: Any) -> bool:
    """Set the ``state`` (an enum member); False when it had it already."""
    changed = state_of(entity) != state.value
    entity.state = state
    return changed


def _marked(registry: ModelRegistry, version_id: str, archived: bool | None = None, mark: str = "1") -> str:
    """The version's artifact's ``mrh_archived`` mark, ``""`` for none (set or cleared first, given ``archived``)."""
    session = session_for(registry)
    art = session.model_artifact(version_id)
    marked = str((art.custom_properties or {}).get(ARCHIVED_MARK) or "") if art is not None else ""
    if art is not None and archived is not None and bool(marked) != archived:
        _set_prop(art, ARCHIVED_MARK, mark if archived else "")
        session.save_artifact(art)
        return mark if archived else ""
    return marked


def _set_state(registry: ModelRegistry, name: str, version: str, state: str, mark: str = "1") -> str:
    """Write a version's state (marking its artifact first), taking back its own ``production`` stage."""
    from model_registry.types import ModelVersionState

    session = session_for(registry)
    _, mv = _find(registry, name, version)
    _marked(registry, str(mv.id), state == "ARCHIVED", mark)

    def change(v: Any) -> bool:
        demote = (v.custom_properties or {}).get(STAGE_KEY) == "production" and _set_prop(v, STAGE_KEY, "candidate")
        return _put_state(v, ModelVersionState(state)) or demote

    what = f"{state} for {name}/{version}"
    return str(state_of(_write(lambda: session.version(str(mv.id)), change, session.save_version, what, REPAIRS)))


def archive_version(registry: ModelRegistry, name: str, version: str) -> str:
    """Archive a version (state ``ARCHIVED``; a production version loses that stage); returns the new state."""
    return _set_state(registry, name, version, "ARCHIVED")


def restore_version(registry: ModelRegistry, name: str, version: str) -> str:
    """Bring an archived version back (state ``LIVE``, stage ``candidate`` if it had one); returns the new state."""
    return _set_state(registry, name, version, "LIVE")


def set_stage(
    registry: ModelRegistry, name: str, version: str, stage: str, *, demote_to: str = "candidate"
) -> StageChange:
    """Put a version into ``stage`` (``"candidate"``, ``"production"``); the previous production version becomes
    ``demote_to`` (``"candidate"`` or ``"archived"``). An archived version must be restored first."""
    if stage not in STAGES:
        raise InvalidInput("stage", stage, " or ".join(repr(s) for s in STAGES))
    if demote_to not in DEMOTE_TO:
        raise InvalidInput("demote_to", demote_to, " or ".join(repr(s) for s in DEMOTE_TO))
    session = session_for(registry)
    model, mv = _find(registry, name, version)
    versions = session.versions(model.id)
    current = _production_id(model, versions)
    archived = InvalidInput("version", f"{name}/{version}", "a LIVE version: restore_version() it first")
    if stage == "production" and state_of(mv) == "ARCHIVED":
        raise archived
    if stage == "production" and _marked(registry, str(mv.id)):  # an archive runs, or another tool restored it
        raise InvalidInput(
            "version", f"{name}/{version}", f"a version not being archived: its artifact carries {ARCHIVED_MARK}, "
            "so an archive of it runs now, or a tool other than mrhelpers restored it; restore_version() it first",
        )  # fmt: skip

    def change(v: Any) -> bool:
        if stage == "production" and state_of(v) == "ARCHIVED":
            raise archived
        return _set_prop(v, STAGE_KEY, stage)

    _write(lambda: session.version(str(mv.id)), change, session.save_version, f"Staging {name}/{version}")
    if stage != "production":
        return StageChange(name, version, stage, ())

    point = functools.partial(_set_prop, key=PRODUCTION_KEY, value=str(mv.id))  # one write: the last promoter's stays
    _write(lambda: session.find_model(name), point, session.save_model, f"Promoting {name}/{version}")
    # Re-read what decides: a racing archive or demote wins. An archive this call's write undid is still
    # marked on the artifact: archive it again, for that caller.
    now, mark = session.version(str(mv.id)), _marked(registry, str(mv.id))
    if state_of(now) != "ARCHIVED" and mark:
        _set_state(registry, name, version, "ARCHIVED", mark)
        now = session.version(str(mv.id))
    if mark == "model":  # archive_model runs: this call's pointer write may have undone its archive of the model
        _archive_model_state(registry, name)
    if state_of(now) == "ARCHIVED" or (now.custom_properties or {}).get(STAGE_KEY) != "production":
        raise InvalidInput(
            "version", f"{name}/{version}", "a version nobody archives or demotes at the same moment: another "
            f"call did while this one promoted it, so it is not production (it is {state_of(now)}); "
            "restore_version() it if needed and promote it again, or promote another",
        )  # fmt: skip
    demoted = [v.name for v in versions if current and current != str(mv.id) and str(v.id) == current]
    for other in demoted if demote_to == "archived" else ():
        archive_version(registry, name, other)
    return StageChange(name, version, stage, tuple(demoted))


def production_version(registry: ModelRegistry, name: str) -> str | None:
    """The name of model ``name``'s production version, or None."""
    model, _ = _find(registry, name)
    versions = session_for(registry).versions(model.id)
    current = _production_id(model, versions)
    return next((v.name for v in versions if str(v.id) == current), None) if current else None


def archive_model(registry: ModelRegistry, name: str) -> list[str]:
    """Archive every live version of model ``name``, then the model (idempotent); returns the versions it archived."""
    model, _ = _find(registry, name)
    archived = [v.name for v in session_for(registry).versions(model.id) if state_of(v) != "ARCHIVED"]
    for version in archived:
        _set_state(registry, name, version, "ARCHIVED", "model")  # the mark tells a racing promoter (set_stage)
    _archive_model_state(registry, name)
    return archived


def _archive_model_state(registry: ModelRegistry, name: str) -> None:
    from model_registry.types import RegisteredModelState

    session = session_for(registry)
    change = functools.partial(_put_state, state=RegisteredModelState.ARCHIVED)
    _write(lambda: session.find_model(name), change, session.save_model, f"Archiving model {name}", REPAIRS)
