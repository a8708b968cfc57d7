"""Notebook 05: look at what the registry holds, as pandas DataFrames and a figure.

Listing is paged (1,000 entities a page) over the registry's one keep-alive
session (:mod:`mrhelpers.core.rest`). A version's artifact columns come from the
copy of its artifact's fields the version carries; only versions without one have
their artifact read, at most ``IN_FLIGHT`` requests at once. So a frame of
thousands of versions costs a few listings, not a request per version.

Every function here retries a registry that does not answer, then raises
:class:`~mrhelpers.core.errors.RegistryUnavailable`; a refused token raises
:class:`~mrhelpers.core.errors.AuthError`, as :func:`mrhelpers.connect` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mrhelpers.core.errors import InvalidInput, mask_credentials
from mrhelpers.core.lifecycle import stage_of
from mrhelpers.core.registry import RESERVED_PREFIX, SOURCE_ID_KEY, artifact_fields, copied_fields
from mrhelpers.core.rest import session_for
from mrhelpers.core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from model_registry import ModelRegistry


LINEAGE_COLUMNS = ["source_kind", "source_class", "source_group", "source_id", "source_name"]
VERSION_COLUMNS = [
    "model", "version", "version_id", "state", "stage", "author", "created", "uri",
    "format", "format_version", *LINEAGE_COLUMNS, "metadata",
]  # fmt: skip
MODEL_COLUMNS = ["model", "model_id", "state", "owner", "created", "updated", "versions", "description"]
ARTIFACT_COLUMNS = [
    "model", "version", "artifact_id", "artifact", "uri", "format", "format_version", "state", *LINEAGE_COLUMNS,
]  # fmt: skip


def _state(value: Any) -> Any:
    return getattr(value, "value", value)


def _version_row(model_name: str, v: Any, fields: dict[str, Any] | None, model_props: dict[str, Any] | None) -> dict:
    """One row of :func:`versions_frame`: the version, with its artifact's ``fields`` (None: no artifact)."""
    props = dict(v.custom_properties or {})
    fields = fields or artifact_fields(None)
    return {
        "model": model_name, "version": v.name, "version_id": v.id, "state": _state(v.state),
        "stage": stage_of(model_props, v), "author": v.author, "created": v.create_time_since_epoch,
        "uri": mask_credentials(fields["uri"]), "format": fields["format"], "format_version": fields["format_version"],
        "source_kind": fields["source_kind"], "source_class": fields["source_class"],
        "source_group": fields["source_group"], "source_id": fields["source_id"] or props.get(SOURCE_ID_KEY),
        "source_name": fields["source_name"],
        "metadata": {
            k: mask_credentials(val) for k, val in props.items() if not k.casefold().startswith(RESERVED_PREFIX)
        },
    }  # fmt: skip


def _frame(rows: list[dict[str, Any]], columns: list[str], sort: list[str], times: tuple[str, ...] = ()) -> Any:
    """The rows as a frame; ``times`` columns hold epoch milliseconds, made UTC timestamps in one conversion each."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    for column in times:
        frame[column] = pd.to_datetime(pd.to_numeric(frame[column], errors="coerce"), unit="ms", utc=True)
    return frame.sort_values(sort, ignore_index=True)


def _models(registry: ModelRegistry) -> list[Any]:
    return session_for(registry).models()


def _artifact_fields_of(registry: ModelRegistry, versions: list[Any], read_all: bool) -> list[dict[str, Any] | None]:
    """Each version's artifact fields: from the copy it carries, else (or with ``read_all``) read from its artifact.

    The reads run at most ``IN_FLIGHT`` at once on the registry's one session.
    """
    session = session_for(registry)
    fields = [None if read_all else copied_fields(v) for v in versions]
    missing = [i for i, f in enumerate(fields) if f is None]
    read = session.map(lambda i: session.model_artifact(versions[i].id), missing)
    for i, art in zip(missing, read, strict=True):
        fields[i] = artifact_fields(art) if art is not None else None
    return fields


def _versions(registry: ModelRegistry, model_id: str | None, read_all: bool = False) -> list[tuple[Any, Any]]:
    """(version, artifact fields) pairs of one model, or of every model when ``model_id`` is None."""
    versions = session_for(registry).versions(model_id)
    return list(zip(versions, _artifact_fields_of(registry, versions, read_all), strict=True))


def models_frame(registry: ModelRegistry, *, count_versions: bool = False) -> pd.DataFrame:
    """One row per RegisteredModel, sorted by name, from the models' listing alone.

    Columns: ``model, model_id, state, owner, created, updated, description``, and ``versions``
    (how many versions each model has) when ``count_versions`` is True. The server (v0.2.22) gives
    no count, so counting lists every version of every model: about 0.2 s per 1,000 versions in
    the registry. Default False.
    """
    counts: dict[str, int] = {}
    if count_versions:
        for v in session_for(registry).versions():
            counts[v.registered_model_id] = counts.get(v.registered_model_id, 0) + 1
    rows = [
        {
            "model": m.name,
            "model_id": m.id,
            "state": _state(m.state),
            "owner": m.owner,
            "created": m.create_time_since_epoch,
            "updated": m.last_update_time_since_epoch,
            "versions": counts.get(m.id, 0),
            "description": m.description,
        }  # fmt: skip
        for m in _models(registry)
    ]
    columns = [c for c in MODEL_COLUMNS if count_versions or c != "versions"]
    return _frame(rows, columns, ["model"], times=("created", "updated"))


def versions_frame(registry: ModelRegistry, name: str, *, read_artifacts: bool = False) -> pd.DataFrame:
    """One row per version of model ``name``, oldest first.

    Columns: ``model, version, version_id, state, stage, author, created, uri,
    format, format_version, source_kind, source_class, source_group, source_id,
    source_name, metadata``: ``source_*`` is the lineage, ``stage`` the stage set
    by :func:`mrhelpers.core.lifecycle.set_stage`, ``metadata`` a dict of the user's
    properties, ``uri`` with any credentials in it masked (see :func:`mask_credentials`;
    ``registry.get_model_artifact(name, version).uri`` is the exact one). An unknown
    model gives an empty frame.

    One listing gives every version. The artifact columns come from the copy of its artifact's
    fields that :func:`mrhelpers.register_version` keeps on each version (``mrh_artifact``); a
    version without one (written by another tool, or before mrhelpers kept it) has its artifact
    read, a few requests at a time. An artifact changed afterwards by another tool (its URI
    re-pointed, say) is not seen in the copy: pass ``read_artifacts=True`` to read every artifact.
    """
    model = session_for(registry).find_model(name)
    if model is None or model.name != name:  # a database that ignores case may return another model
        return _frame([], VERSION_COLUMNS, ["created", "version_id"], times=("created",))
    rows = [_version_row(name, v, f, model.custom_properties) for v, f in _versions(registry, model.id, read_artifacts)]
    return _frame(rows, VERSION_COLUMNS, ["created", "version_id"], times=("created",))


def find_versions(registry: ModelRegistry, *, run_id: str, settings: Settings | None = None) -> pd.DataFrame:
    """The versions whose lineage names run ``run_id``: "what did run X register?".

    When the backend knows when the run started (a run :func:`mrhelpers.submit` made with ``settings``,
    found in its run history), only the versions written since then are read, newest first: the cost
    follows what was registered since the run, not the size of the registry. Otherwise every model's
    versions are listed (a few models at once): about 0.2 s per 1,000 versions in the registry
    (``docs/architecture.md``), as the server (v0.2.22) cannot filter a listing.

    The versions' listings decide: :func:`mrhelpers.core.registry.register_version` keeps the run id
    and its artifact's fields on the version (``mrh_source_id``, ``mrh_artifact``). Only versions that
    carry neither (written by another tool, or by hand) have their artifact read. A version whose
    copy names another run is not read further: an artifact that another tool re-pointed to
    ``run_id`` after registration is not found.

    Args:
        registry: A client from :func:`mrhelpers.connect`.
        run_id: The pipeline run's id.
        settings: Where to look the run up; default ``Settings.from_env()``.

    Returns:
        A frame with the columns of :func:`versions_frame`, sorted by model and version.
    """
    settings = settings or Settings.from_env()
    session = session_for(registry)
    since = settings.backend_impl().run_started(settings, run_id)
    if since is None:
        models = {m.id: m for m in _models(registry)}
        # Each model's listing, a few at once: the server spends its time per version listed, and the
        # models' listings can run side by side where one listing of all versions pages one by one.
        versions = [v for listed in session.map(session.versions, list(models)) for v in listed]
    else:
        versions = session.versions_since(since)

    def maybe(v: Any) -> bool:
        copied = copied_fields(v)
        if copied is not None:
            return (copied["source_id"] or (v.custom_properties or {}).get(SOURCE_ID_KEY)) == run_id
        return (v.custom_properties or {}).get(SOURCE_ID_KEY, run_id) == run_id

    candidates = [v for v in versions if maybe(v)]
    if since is not None:  # only the models the answer needs
        ids = list(dict.fromkeys(v.registered_model_id for v in candidates))
        models = {m.id: m for m in session.map(session.model, ids) if m is not None}
    rows = [
        _version_row(
            getattr(models.get(v.registered_model_id), "name", "?"),
            v,
            f,
            getattr(models.get(v.registered_model_id), "custom_properties", None),
        )
        for v, f in zip(candidates, _artifact_fields_of(registry, candidates, False), strict=True)
        if ((f or {}).get("source_id") or (v.custom_properties or {}).get(SOURCE_ID_KEY)) == run_id
    ]
    return _frame(rows, VERSION_COLUMNS, ["model", "version"], times=("created",))


def artifacts_frame(registry: ModelRegistry, name: str | None = None) -> pd.DataFrame:
    """One row per model artifact (of model ``name``, or of every model), sorted by model and version.

    Columns: ``model, version, artifact_id, artifact, uri, format, format_version,
    state`` and the lineage columns ``source_*``.
    """
    session = session_for(registry)
    model_id = None
    if name is None:
        names = {m.id: m.name for m in _models(registry)}
    else:
        model = session.find_model(name)
        if model is None or model.name != name:  # a database that ignores case may return another model
            return _frame([], ARTIFACT_COLUMNS, ["model", "version"])
        model_id, names = model.id, {model.id: name}
    versions = session.versions(model_id)
    artifacts = session.map(lambda v: session.model_artifact(v.id), versions)
    rows = [
        {
            "model": names.get(v.registered_model_id, "?"),
            "version": v.name,
            "artifact_id": a.id,
            "artifact": a.name,
            "uri": mask_credentials(a.uri),
            "format": a.model_format_name,
            "format_version": a.model_format_version,
            "state": _state(a.state),
            "source_kind": a.model_source_kind,
            "source_class": a.model_source_class,
            "source_group": a.model_source_group,
            "source_id": a.model_source_id,
            "source_name": a.model_source_name,
        }  # fmt: skip
        for v, a in zip(versions, artifacts, strict=True)
        if a is not None
    ]
    return _frame(rows, ARTIFACT_COLUMNS, ["model", "version"])


def lineage_of(registry: ModelRegistry, name: str, version: str, settings: Settings | None = None) -> dict[str, Any]:
    """Which run made version ``version`` of model ``name``, with a link to that run.

    Args:
        registry: A client from :func:`mrhelpers.connect`.
        name: The model's name.
        version: The version's name.
        settings: Used for the link: on a cluster the KFP UI (``kfp_ui_url``); locally
            the run folder that :func:`mrhelpers.submit` recorded. Default: ``Settings.from_env()``.

    Returns:
        A dict with ``model, version, version_id``, the lineage fields ``kind, class,
        group, run_id, run_name`` and ``link`` (None when unknown).

    Raises:
        InvalidInput: When the model or version does not exist.
    """

    frame = versions_frame(registry, name)
    match = frame[frame.version == version]
    if match.empty:
        known = ", ".join(frame.version) or "none"
        raise InvalidInput("version", f"{name}/{version}", f"an existing version of {name!r} (known: {known})")
    row = match.iloc[0]
    settings = settings or Settings.from_env()
    link = None
    if row.source_kind == "kfp" and row.source_id:
        link = settings.backend_impl().run_link(settings, row.source_id)
    return {
        "model": name, "version": version, "version_id": row.version_id, "kind": row.source_kind,
        "class": row.source_class, "group": row.source_group, "run_id": row.source_id,
        "run_name": row.source_name, "link": link,
    }  # fmt: skip


class InlineFigure:
    """A drawing that shows itself inline in any notebook kernel and saves like a matplotlib figure.

    Attributes:
        figure: The matplotlib ``Figure``, for any further styling.
    """

    def __init__(self, figure: Figure) -> None:
        self.figure = figure

    def savefig(self, path: Any, **kwargs: Any) -> None:
        """Save to ``path``; the format follows its suffix (``.png``, ``.svg``, ``.pdf``)."""
        self.figure.savefig(path, **kwargs)

    def _repr_png_(self) -> bytes:
        import io

        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def lineage_graph(registry: ModelRegistry, name: str, *, max_versions: int = 30) -> InlineFigure:
    """Draw model ``name`` -> its versions -> the runs that made them.

    The newest ``max_versions`` versions are drawn (default 30). The result
    renders inline in a notebook (as PNG); save it with ``.savefig("lineage.png")``
    or ``.svg``; its ``.figure`` is the matplotlib Figure.
    """
    from matplotlib.figure import Figure

    frame = versions_frame(registry, name).tail(max_versions)
    runs = list(dict.fromkeys(r or "(no lineage)" for r in frame.source_id))
    n = max(len(frame), len(runs), 1)
    fig = Figure(figsize=(10, 1.2 + 0.45 * n), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-0.45, 2.55)
    ax.set_ylim(-0.8, n - 0.2)

    def ypos(i: int, count: int) -> float:
        return (n - 1) / 2 + ((count - 1) / 2 - i) if count else 0

    box = {"boxstyle": "round,pad=0.35", "linewidth": 1}
    arrow = {"arrowstyle": "->", "color": "#777", "shrinkA": 2, "shrinkB": 2}
    model_box = ax.text(0, ypos(0, 1), name, ha="center", va="center", bbox={**box, "facecolor": "#dbe9f6"})
    names = dict(zip(frame.source_id, frame.source_name, strict=False))
    run_boxes = {}
    for i, r in enumerate(runs):
        label = f"run {r}\n{names.get(r) or ''}".strip() if r != "(no lineage)" else r
        run_boxes[r] = ax.text(
            2.1, ypos(i, len(runs)), label, ha="center", va="center", fontsize=8, bbox={**box, "facecolor": "#fdf0d5"}
        )
    for i, row in enumerate(frame.itertuples()):
        label = (
            row.version
            + (f"  [{row.stage}]" if row.stage else "")
            + ("  (archived)" if row.state == "ARCHIVED" else "")
        )
        color = "#c9ecc9" if row.stage == "production" else "#f3f3f3"
        version_box = ax.text(
            1.05, ypos(i, len(frame)), label, ha="center", va="center", fontsize=9, bbox={**box, "facecolor": color}
        )
        ax.annotate("", xy=(0, 0.5), xycoords=version_box, xytext=(1, 0.5), textcoords=model_box, arrowprops=arrow)
        ax.annotate(
            "",
            xy=(1, 0.5),
            xycoords=version_box,
            xytext=(0, 0.5),
            textcoords=run_boxes[row.source_id or "(no lineage)"],
            arrowprops=arrow,
        )
    ax.set_title(f"{name}: versions, and the pipeline runs that produced them", fontsize=11)
    return InlineFigure(fig)


def metric_figure(registry: ModelRegistry, name: str, metric: str = "accuracy") -> InlineFigure:
    """A bar chart of ``metric`` (from each version's metadata) per version; production in green.

    Raises:
        InvalidInput: When no version of ``name`` records ``metric``.
    """
    from matplotlib.figure import Figure

    frame = versions_frame(registry, name)
    frame = frame[[isinstance(m.get(metric), (int, float)) for m in frame.metadata]]
    if frame.empty:
        raise InvalidInput("metric", metric, f"a metadata key that versions of {name!r} record")
    values = [m[metric] for m in frame.metadata]
    fig = Figure(figsize=(max(5, 1.2 * len(frame)), 3), layout="constrained")
    ax = fig.add_subplot()
    colors = ["#2e7d32" if s == "production" else "#9e9e9e" for s in frame.stage]
    ax.bar(list(frame.version), values, color=colors)
    low, high = min(values), max(values)
    ax.set_ylim(low - max(0.02, (high - low) * 0.5), high + max(0.01, (high - low) * 0.2))
    ax.set_ylabel(metric)
    ax.set_title(f"{name}: {metric} per version (green: production)")
    return InlineFigure(fig)
