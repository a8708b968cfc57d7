"""Notebook 05: look at what the registry holds, as pandas DataFrames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mrhelpers.registry import _all_versions, _caller

if TYPE_CHECKING:
    import pandas as pd
    from model_registry import ModelRegistry

LINEAGE_COLUMNS = ["source_kind", "source_class", "source_group", "source_id", "source_name"]
VERSION_COLUMNS = [
    "model",
    "version",
    "version_id",
    "state",
    "author",
    "created",
    "uri",
    "format",
    "format_version",
    *LINEAGE_COLUMNS,
    "metadata",
]
MODEL_COLUMNS = ["model", "model_id", "state", "owner", "created", "updated", "description"]


def _ts(ms: Any) -> Any:
    import pandas as pd

    return pd.to_datetime(int(ms), unit="ms", utc=True) if ms not in (None, "") else pd.NaT


def _all_models(registry: ModelRegistry) -> list[Any]:
    from model_registry.types import ListOptions

    call = _caller(registry)
    out: list[Any] = []
    options = ListOptions(limit=100)
    while True:
        page = call(lambda: registry._api.get_registered_models(options))
        out.extend(page)
        if not options.next_page_token or not page:
            return out


def models_frame(registry: ModelRegistry) -> pd.DataFrame:
    """One row per RegisteredModel, sorted by name.

    Columns: ``model, model_id, state, owner, created, updated, description``.
    """
    import pandas as pd

    rows = [
        {
            "model": m.name,
            "model_id": m.id,
            "state": getattr(m.state, "value", m.state),
            "owner": m.owner,
            "created": _ts(m.create_time_since_epoch),
            "updated": _ts(m.last_update_time_since_epoch),
            "description": m.description,
        }
        for m in _all_models(registry)
    ]
    return pd.DataFrame(rows, columns=MODEL_COLUMNS).sort_values("model", ignore_index=True)


def _version_rows(registry: ModelRegistry, model: Any) -> list[dict[str, Any]]:
    call = _caller(registry)
    rows = []
    for v in _all_versions(registry, model.id):
        arts = call(lambda v=v: registry._api.get_model_artifacts(v.id))
        a = arts[0] if arts else None
        rows.append(
            {
                "model": model.name,
                "version": v.name,
                "version_id": v.id,
                "state": getattr(v.state, "value", v.state),
                "author": v.author,
                "created": _ts(v.create_time_since_epoch),
                "uri": getattr(a, "uri", None),
                "format": getattr(a, "model_format_name", None),
                "format_version": getattr(a, "model_format_version", None),
                "source_kind": getattr(a, "model_source_kind", None),
                "source_class": getattr(a, "model_source_class", None),
                "source_group": getattr(a, "model_source_group", None),
                "source_id": getattr(a, "model_source_id", None),
                "source_name": getattr(a, "model_source_name", None),
                "metadata": dict(v.custom_properties or {}),
            }
        )
    return rows


def versions_frame(registry: ModelRegistry, name: str) -> pd.DataFrame:
    """One row per version of model ``name``, oldest first.

    Columns: ``model, version, version_id, state, author, created, uri, format,
    format_version, source_kind, source_class, source_group, source_id,
    source_name, metadata`` (``source_*`` is the lineage; ``metadata`` a dict).
    An unknown model gives an empty frame.
    """
    import pandas as pd

    model = _caller(registry)(lambda: registry._api.get_registered_model_by_params(name))
    rows = _version_rows(registry, model) if model is not None else []
    frame = pd.DataFrame(rows, columns=VERSION_COLUMNS)
    return frame.sort_values(["created", "version_id"], ignore_index=True)


def find_versions(registry: ModelRegistry, *, run_id: str) -> pd.DataFrame:
    """The versions whose lineage names run ``run_id``: "what did run X register?".

    Returns:
        A frame with the columns of :func:`versions_frame`, sorted by model and version.
    """
    import pandas as pd

    rows = [
        row for model in _all_models(registry) for row in _version_rows(registry, model) if row["source_id"] == run_id
    ]
    frame = pd.DataFrame(rows, columns=VERSION_COLUMNS)
    return frame.sort_values(["model", "version"], ignore_index=True)
