"""What the registry holds, as pandas DataFrames and figures (docs/architecture.md: what each call reads)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from mrhelpers.core.errors import InvalidInput, mask_credentials
from mrhelpers.core.lifecycle import stage_of, state_of
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


def _frame(rows: list[dict[str, Any]], columns: list[str], sort: list[str], times: tuple[str, ...] = ()) -> Any:
    """The rows as a frame sorted by ``sort``; ``times`` columns (epoch ms) become UTC timestamps."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    for column in times:
        frame[column] = pd.to_datetime(pd.to_numeric(frame[column], errors="coerce"), unit="ms", utc=True)
    return frame.sort_values(sort, ignore_index=True)


def _version_rows(registry: ModelRegistry, versions: list[Any], models: dict[str, Any], read_all: bool = False) -> list:
    """The rows of :func:`versions_frame`; versions without a trusted copy (all: ``read_all``) read their artifact."""
    session = session_for(registry)
    fields = [None if read_all else copied_fields(v) for v in versions]
    missing = [i for i, f in enumerate(fields) if f is None]
    for i, art in zip(missing, session.map(lambda i: session.model_artifact(versions[i].id), missing), strict=True):
        fields[i] = artifact_fields(art)
    rows = []
    for v, f in zip(versions, fields, strict=True):
        props, model = v.custom_properties or {}, models.get(v.registered_model_id)
        metadata = {k: mask_credentials(x) for k, x in props.items() if not k.casefold().startswith(RESERVED_PREFIX)}
        rows.append({
            **f, "model": getattr(model, "name", "?"), "version": v.name, "version_id": v.id,
            "state": state_of(v), "stage": stage_of(getattr(model, "custom_properties", None), v),
            "author": v.author, "created": v.create_time_since_epoch, "uri": mask_credentials(f["uri"]),
            "source_id": f["source_id"] or props.get(SOURCE_ID_KEY), "metadata": metadata,
        })  # fmt: skip
    return rows


def models_frame(registry: ModelRegistry, *, count_versions: bool = False) -> pd.DataFrame:
    """One row per RegisteredModel, sorted by name; ``count_versions=True`` lists every version to count them."""
    counts = Counter(v.registered_model_id for v in session_for(registry).versions()) if count_versions else {}
    rows = [
        {"model": m.name, "model_id": m.id, "state": state_of(m), "owner": m.owner, "versions": counts.get(m.id, 0),
         "created": m.create_time_since_epoch, "updated": m.last_update_time_since_epoch, "description": m.description}
        for m in session_for(registry).models()
    ]  # fmt: skip
    columns = [c for c in MODEL_COLUMNS if count_versions or c != "versions"]
    return _frame(rows, columns, ["model"], times=("created", "updated"))


def versions_frame(registry: ModelRegistry, name: str, *, read_artifacts: bool = False) -> pd.DataFrame:
    """One row per version of model ``name`` (``VERSION_COLUMNS``), oldest first; ``read_artifacts=True`` reads every
    artifact instead of the copy each version carries."""
    session = session_for(registry)
    model = session.find_model(name)
    rows = []
    if model is not None and model.name == name:  # a database that ignores case may return another model
        rows = _version_rows(registry, session.versions(model.id), {model.id: model}, read_artifacts)
    return _frame(rows, VERSION_COLUMNS, ["created", "version_id"], times=("created",))


def find_versions(registry: ModelRegistry, *, run_id: str, settings: Settings | None = None) -> pd.DataFrame:
    """The versions whose lineage names run ``run_id`` (columns of :func:`versions_frame`): those written since the
    run started when ``settings``' backend can date it, else every model's (docs/architecture.md: how it dates one)."""
    if not isinstance(run_id, str) or not run_id:
        raise InvalidInput("run_id", run_id, "a run id as a non-empty string (kfp.local's are digits: '78263601')")
    settings = settings or Settings.from_env()
    session, backend = session_for(registry), settings.backend_impl()

    def maybe(v: Any) -> bool:
        copied, props = copied_fields(v), v.custom_properties or {}
        return (copied and copied["source_id"] or props.get(SOURCE_ID_KEY, None if copied else run_id)) == run_id

    since = backend.run_started(settings, run_id)
    if since is None:  # not in the run history: the newest version naming the run (if recent) may date it by name
        rows = _version_rows(registry, [v for v in session.versions_since(None) if maybe(v)], {})
        named = next((r for r in rows if r["source_id"] == run_id), None)
        started = backend.run_started(settings, run_id, named["source_name"]) if named else None
        if started is not None and started <= int(named["created"] or 0):  # a start precedes its versions
            since = started
    if since is None:
        models = {m.id: m for m in session.models()}
        # A listing per model, a few at once: they run side by side where one listing pages one by one.
        versions = [v for listed in session.map(session.versions, list(models)) for v in listed]
    else:
        versions = session.versions_since(since)

    candidates = [v for v in versions if maybe(v)]
    if since is not None:  # only the models the answer needs
        ids = list(dict.fromkeys(v.registered_model_id for v in candidates))
        models = {m.id: m for m in session.map(session.model, ids) if m is not None}
    rows = [r for r in _version_rows(registry, candidates, models) if r["source_id"] == run_id]
    return _frame(rows, VERSION_COLUMNS, ["model", "version"], times=("created",))


def artifacts_frame(registry: ModelRegistry, name: str | None = None) -> pd.DataFrame:
    """One row per model artifact (of model ``name``, or of every model), sorted by model and version."""
    session = session_for(registry)
    model_id = None
    if name is None:
        names = {m.id: m.name for m in session.models()}
    else:
        model = session.find_model(name)
        if model is None or model.name != name:  # a database that ignores case may return another model
            return _frame([], ARTIFACT_COLUMNS, ["model", "version"])
        model_id, names = model.id, {model.id: name}
    versions = session.versions(model_id)
    rows = [
        {**artifact_fields(a), "model": names.get(v.registered_model_id, "?"), "version": v.name, "artifact_id": a.id,
         "artifact": a.name, "uri": mask_credentials(a.uri), "state": state_of(a)}
        for v, a in zip(versions, session.map(lambda v: session.model_artifact(v.id), versions), strict=True)
        if a is not None
    ]  # fmt: skip
    return _frame(rows, ARTIFACT_COLUMNS, ["model", "version"])


def lineage_of(registry: ModelRegistry, name: str, version: str, settings: Settings | None = None) -> dict[str, Any]:
    """Which run made version ``version`` of model ``name``: its lineage and ``link`` to the run (None if unknown)."""
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
    """A figure that shows itself inline in any notebook kernel (as PNG); ``.figure`` is the matplotlib Figure."""

    def __init__(self, figure: Figure) -> None:
        self.figure = figure

    def savefig(self, path: Any, **kwargs: Any) -> None:
        self.figure.savefig(path, **kwargs)

    def _repr_png_(self) -> bytes:
        import io

        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def lineage_graph(registry: ModelRegistry, name: str, *, max_versions: int = 30) -> InlineFigure:
    """Model ``name`` -> its newest ``max_versions`` versions -> the runs that made them, as a figure."""
    from matplotlib.figure import Figure

    frame = versions_frame(registry, name).tail(max_versions)
    sources = zip(frame.source_id, frame.source_name, strict=True)
    runs = {r or "": f"run {r}\n{run_name or ''}".strip() if r else "(no lineage)" for r, run_name in sources}
    n = max(len(frame), len(runs), 1)
    fig = Figure(figsize=(10, 1.2 + 0.45 * n), layout="constrained")
    ax = fig.add_subplot(xlim=(-0.45, 2.55), ylim=(-0.8, n - 0.2))
    ax.set_axis_off()
    ax.set_title(f"{name}: versions, and the pipeline runs that produced them", fontsize=11)
    arrow = {"arrowstyle": "->", "color": "#777", "shrinkA": 2, "shrinkB": 2}

    def box(x: float, i: int, count: int, label: str, color: str, size: int = 10) -> Any:
        bbox = {"boxstyle": "round,pad=0.35", "linewidth": 1, "facecolor": color}
        return ax.text(x, (n + count) / 2 - 1 - i, label, ha="center", va="center", fontsize=size, bbox=bbox)

    model_box = box(0, 0, 1, name, "#dbe9f6")
    run_boxes = {r: box(2.1, i, len(runs), label, "#fdf0d5", 8) for i, (r, label) in enumerate(runs.items())}
    for i, row in enumerate(frame.itertuples()):
        stage = f"  [{row.stage}]" if row.stage else ""
        label = row.version + stage + ("  (archived)" if row.state == "ARCHIVED" else "")
        version_box = box(1.05, i, len(frame), label, "#c9ecc9" if row.stage == "production" else "#f3f3f3", 9)
        ax.annotate("", xy=(0, 0.5), xycoords=version_box, xytext=(1, 0.5), textcoords=model_box, arrowprops=arrow)
        run_box = run_boxes[row.source_id or ""]
        ax.annotate("", xy=(1, 0.5), xycoords=version_box, xytext=(0, 0.5), textcoords=run_box, arrowprops=arrow)
    return InlineFigure(fig)
