"""A version's life after registration: archive, restore, and a stage.

A model has at most one version in stage ``production``, by construction: the
RegisteredModel holds a pointer to it (custom property ``mrh_production_version``,
the version's id), as an alias does in MLflow or Vertex AI. Promoting a version is
one write of that pointer, so concurrent promoters leave exactly one production
version: the last write wins. A version's stage is derived from three facts, each
written in one request: the pointer names it, its own ``mrh_stage`` says
``production``, and it is LIVE; then it is ``production``. Otherwise it is
``candidate`` when it was ever staged, else none.

So no lifecycle call checks one fact and then writes another: demoting writes only its
version, and neither demoting nor archiving touches the pointer that a racing promoter
may be writing. The server's PATCH has no condition and sets every field (one it is not
sent gets its default: a version sent without ``state`` becomes LIVE), so each write
sends the whole entity as read just before it, and what decides is re-read after it:
archiving marks the version's artifact (``mrh_archived``), writes the state, re-reads it
and writes again if a racing write undid it; a promoter writes the version's stage, then
the pointer, re-reads the version, archives it again when a racing archive was undone by
its own write (the mark says so), and raises. What each race ends in is in docs/guarantees.md.

Data written before the pointer existed (``mrh_stage="production"`` on the
versions, no pointer on the model) reads as it was stored; the next
:func:`set_stage` to ``production`` on that model writes the pointer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mrhelpers.core.errors import InvalidInput, MRHelpersError
from mrhelpers.core.registry import PRODUCTION_KEY, STAGE_KEY, all_versions
from mrhelpers.core.rest import session_for

if TYPE_CHECKING:
    from model_registry import ModelRegistry

STAGES = ("candidate", "production")
DEMOTE_TO = ("candidate", "archived")
ARCHIVED_MARK = "mrh_archived"
"""On a version's ModelArtifact: ``"1"`` while the version is archived (see :func:`_mark_archived`)."""
REPAIRS = 3
"""Most writes of one lifecycle change, when racing writes undo it (see :func:`_write`)."""


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
    """A version's stage, derived from its model's production pointer, its own stage and its state."""
    model_props = model_props or {}
    own = (version.custom_properties or {}).get(STAGE_KEY)
    live = _state_of(version) != "ARCHIVED"
    if PRODUCTION_KEY not in model_props:  # written before the pointer existed: as stored
        return own if live or own != "production" else "candidate"
    if str(model_props[PRODUCTION_KEY]) == str(version.id) and own == "production" and live:
        return "production"
    return "candidate" if own in STAGES else None


def _production_id(model: Any, versions: list[Any]) -> str:
    """The id of the model's production version, ``""`` for none (old data: the newest one staged so)."""
    props = model.custom_properties or {}
    staged = [v for v in versions if stage_of(props, v) == "production"]
    newest = max(staged, key=lambda v: int(v.last_update_time_since_epoch or 0), default=None)
    return str(newest.id) if newest is not None else ""


def _find(registry: ModelRegistry, name: str, version: str) -> tuple[Any, Any]:
    session = session_for(registry)
    model = session.find_model(name)
    if model is None or model.name != name:  # a database that ignores case may find another model
        raise InvalidInput("model", name, "the name of a registered model")
    mv = session.find_version(model.id, version)
    if mv is None or mv.name != version:
        raise InvalidInput("version", f"{name}/{version}", f"an existing version of {name!r}")
    return model, mv


def _write(
    read: Callable[[], Any], change: Callable[[Any], bool], save: Callable[[Any], Any], what: str, tries: int = 1
) -> Any:
    """Read the entity now and ``change`` it; when that changed it, save it. With ``tries`` above 1,
    read it back and repeat while it is not as wanted (``change`` changes it again).

    The server's PATCH has no condition and sets every field: one it is not sent gets its default
    (a version or model sent without ``state`` becomes LIVE), so each write sends the whole entity
    as read just before it. A write racing this one can still undo it with what it read earlier:
    reading back, and writing again onto what is stored then, repairs that. Only a state is repaired
    so: two callers wanting two stages would undo each other in turn, and the last one is meant to win.
    """
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


def _set_stage_of(v: Any, stage: str) -> bool:
    """Give version ``v`` its own stage ``stage``; False when it has it already."""
    if (v.custom_properties or {}).get(STAGE_KEY) == stage:
        return False
    v.custom_properties = {**(v.custom_properties or {}), STAGE_KEY: stage}
    return True


def _mark_archived(registry: ModelRegistry, version_id: str, archived: bool) -> bool:
    """Set (or clear) ``mrh_archived`` on the version's ModelArtifact; return whether it is set now.

    The mark is what a promoter racing an archive reads: its own write of the version, sent with the
    state it read before the archive, can undo the archive, but it never writes the artifact. A version
    without an artifact carries no mark.
    """
    session = session_for(registry)
    art = session.model_artifact(version_id)
    if art is None:
        return False
    if _is_marked(art) != archived:
        art.custom_properties = {**(art.custom_properties or {}), ARCHIVED_MARK: "1" if archived else ""}
        session.save_artifact(art)
    return archived


def _is_marked(art: Any) -> bool:
    return art is not None and (art.custom_properties or {}).get(ARCHIVED_MARK) == "1"


def _marked(registry: ModelRegistry, version_id: str) -> bool:
    return _is_marked(session_for(registry).model_artifact(version_id))


def _set_state(registry: ModelRegistry, name: str, version: str, state: str) -> str:
    """Write a version's state, and take back a ``production`` stage of its own: archiving or restoring
    a version never leaves (or makes) it production. Archiving marks the artifact first (see
    :func:`_mark_archived`); restoring clears that mark first."""
    from model_registry.types import ModelVersionState

    session = session_for(registry)
    _, mv = _find(registry, name, version)
    _mark_archived(registry, str(mv.id), state == "ARCHIVED")

    def change(v: Any) -> bool:
        wrong = _state_of(v) != state
        v.state = ModelVersionState(state)
        demote = (v.custom_properties or {}).get(STAGE_KEY) == "production" and _set_stage_of(v, "candidate")
        return wrong or demote

    what = f"{state} for {name}/{version}"
    return str(_state_of(_write(lambda: session.version(str(mv.id)), change, session.save_version, what, REPAIRS)))


def _state_of(mv: Any) -> str | None:
    state = getattr(mv, "state", None)
    return getattr(state, "value", state)


def archive_version(registry: ModelRegistry, name: str, version: str) -> str:
    """Archive a version (state ``ARCHIVED``); a production version also loses that stage.

    Returns:
        The new state, ``"ARCHIVED"``.

    Raises:
        InvalidInput: When the model or version does not exist.
    """
    return _set_state(registry, name, version, "ARCHIVED")


def restore_version(registry: ModelRegistry, name: str, version: str) -> str:
    """Bring an archived version back (state ``LIVE``, stage ``candidate`` if it had one).

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

    Promoting writes the version's own stage, then the model's production pointer in one
    request, so promoters racing on one model leave exactly one production version: the
    last write wins. Then it re-reads the version: archived or demoted meanwhile, it raises.

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
            promoting an archived version (restore it first), also when another call
            archived or demoted it while this one promoted it.
    """
    if stage not in STAGES:
        raise InvalidInput("stage", stage, " or ".join(repr(s) for s in STAGES))
    if demote_to not in DEMOTE_TO:
        raise InvalidInput("demote_to", demote_to, " or ".join(repr(s) for s in DEMOTE_TO))
    session = session_for(registry)
    model, mv = _find(registry, name, version)
    versions = all_versions(registry, model.id)
    current = _production_id(model, versions)
    archived = InvalidInput("version", f"{name}/{version}", "a LIVE version: restore_version() it first")
    if stage == "production" and _state_of(mv) == "ARCHIVED":
        raise archived
    if stage == "production" and _marked(registry, str(mv.id)):  # an archive runs, or another tool restored it
        raise InvalidInput(
            "version", f"{name}/{version}", f"a version not being archived: its artifact carries {ARCHIVED_MARK}, "
            "so an archive of it runs now, or a tool other than mrhelpers restored it; restore_version() it first",
        )  # fmt: skip

    def change(v: Any) -> bool:
        if stage == "production" and _state_of(v) == "ARCHIVED":
            raise archived
        return _set_stage_of(v, stage)

    _write(lambda: session.version(str(mv.id)), change, session.save_version, f"Staging {name}/{version}")
    demoted: list[str] = []
    if stage == "production":

        def point(m: Any) -> bool:  # one write of the model's pointer: the last promoter's stays
            if (m.custom_properties or {}).get(PRODUCTION_KEY) == str(mv.id):
                return False
            m.custom_properties = {**(m.custom_properties or {}), PRODUCTION_KEY: str(mv.id)}
            return True

        _write(lambda: session.find_model(name), point, session.save_model, f"Promoting {name}/{version}")
        # What decides, re-read: a racing archive or demote wins. An archive that this call's write of
        # the version undid is still marked on the artifact: archive it again, for that caller.
        now = session.version(str(mv.id))
        if _state_of(now) != "ARCHIVED" and _marked(registry, str(mv.id)):
            _set_state(registry, name, version, "ARCHIVED")
            now = session.version(str(mv.id))
        if _state_of(now) == "ARCHIVED" or (now.custom_properties or {}).get(STAGE_KEY) != "production":
            raise InvalidInput(
                "version", f"{name}/{version}", "a version nobody archives or demotes at the same moment: another "
                f"call did while this one promoted it, so it is not production (it is {_state_of(now)}); "
                "restore_version() it if needed and promote it again, or promote another",
            )  # fmt: skip
        if current and current != str(mv.id):
            demoted = [v.name for v in versions if str(v.id) == current]
            if demote_to == "archived":
                for other in demoted:
                    archive_version(registry, name, other)
    return StageChange(name, version, stage, tuple(demoted))


def production_version(registry: ModelRegistry, name: str) -> str | None:
    """The name of model ``name``'s production version, or None."""
    model = session_for(registry).find_model(name)
    if model is None or model.name != name:
        raise InvalidInput("model", name, "the name of a registered model")
    versions = all_versions(registry, model.id)
    current = _production_id(model, versions)
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

    def change(m: Any) -> bool:
        wrong = _state_of(m) != "ARCHIVED"
        m.state = RegisteredModelState.ARCHIVED
        return wrong

    _write(lambda: session.find_model(name), change, session.save_model, f"Archiving model {name}", REPAIRS)
    return archived
