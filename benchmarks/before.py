"""The frames as mrhelpers read them before issue 13, kept only as the benchmarks' baseline.

This is ``mrhelpers/core/inspection.py`` at commit 406473f, cut to ``versions_frame`` and the
per-version ``find_versions`` it had when the issue was filed: the client's generated async API
(reached through the client's private ``_api``, which mrhelpers itself no longer touches), one
aiohttp session per frame, a request per version for its artifact, 16 in flight, and a
``pd.to_datetime`` per row. ``tests/integration/core/test_before_after.py`` holds today's frames to
these, row for row.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mrhelpers.core.inspection import VERSION_COLUMNS, mask_credentials
from mrhelpers.core.lifecycle import stage_of
from mrhelpers.core.registry import RESERVED_PREFIX, SOURCE_ID_KEY

PAGE = 1000
IN_FLIGHT = 16


def _ts(ms: Any) -> Any:
    import pandas as pd

    return pd.to_datetime(int(ms), unit="ms", utc=True) if ms not in (None, "") else pd.NaT


def _state(value: Any) -> Any:
    return getattr(value, "value", value)


async def _pages(fetch: Any) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        page = await fetch(page_size=str(PAGE), next_page_token=token) if token else await fetch(page_size=str(PAGE))
        items.extend(page.items or [])
        token = page.next_page_token
        if not token or not page.items:
            return items


async def _artifacts_of(client: Any, version_ids: list[str]) -> dict[str, Any]:
    from model_registry.types import Artifact, ModelArtifact

    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(vid: str) -> tuple[str, Any]:
        async with gate:
            page = await client.get_model_version_artifacts(vid, page_size=str(PAGE))
        arts = [Artifact.validate_artifact(a) for a in page.items or []]
        models = [a for a in arts if isinstance(a, ModelArtifact)]
        return vid, (models[0] if models else None)

    return dict(await asyncio.gather(*(one(v) for v in version_ids)))


def _run(registry: Any, work: Any) -> Any:
    async def go() -> Any:
        async with registry._api.get_client() as client:
            return await work(client)

    return registry.async_runner(go())


def _typed(raw: Any) -> Any:
    from model_registry.types import ModelVersion

    version = ModelVersion.from_basemodel(raw)
    props = dict(version.custom_properties or {})
    for key, meta in (raw.custom_properties or {}).items():
        inner = getattr(meta, "actual_instance", meta)
        if getattr(inner, "metadata_type", None) == "MetadataDoubleValue" and key in props:
            props[key] = float(props[key])
    version.custom_properties = props or version.custom_properties
    return version


def _version_row(model_name: str, v: Any, art: Any, model_props: dict[str, Any] | None) -> dict[str, Any]:
    props = dict(v.custom_properties or {})
    return {
        "model": model_name, "version": v.name, "version_id": v.id, "state": _state(v.state),
        "stage": stage_of(model_props, v), "author": v.author, "created": _ts(v.create_time_since_epoch),
        "uri": mask_credentials(getattr(art, "uri", None)),
        "format": getattr(art, "model_format_name", None),
        "format_version": getattr(art, "model_format_version", None),
        "source_kind": getattr(art, "model_source_kind", None),
        "source_class": getattr(art, "model_source_class", None),
        "source_group": getattr(art, "model_source_group", None),
        "source_id": getattr(art, "model_source_id", None) or props.get(SOURCE_ID_KEY),
        "source_name": getattr(art, "model_source_name", None),
        "metadata": {k: val for k, val in props.items() if not k.casefold().startswith(RESERVED_PREFIX)},
    }  # fmt: skip


def _frame(rows: list[dict[str, Any]], sort: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=VERSION_COLUMNS).sort_values(sort, ignore_index=True)


def _versions(registry: Any, model_id: str | None) -> list[tuple[Any, Any]]:
    async def work(client: Any) -> list[tuple[Any, Any]]:
        if model_id is None:
            raw = await _pages(client.get_model_versions)
        else:
            raw = await _pages(lambda **kw: client.get_registered_model_versions(model_id, **kw))
        versions = [_typed(v) for v in raw]
        arts = await _artifacts_of(client, [v.id for v in versions])
        return [(v, arts[v.id]) for v in versions]

    return _run(registry, work)


def versions_frame(registry: Any, name: str) -> Any:
    """The frame of model ``name``'s versions, read as before issue 13."""
    model = registry.async_runner(registry._api.get_registered_model_by_params(name))
    if model is None or model.name != name:
        return _frame([], ["created", "version_id"])
    rows = [_version_row(name, v, a, model.custom_properties) for v, a in _versions(registry, model.id)]
    return _frame(rows, ["created", "version_id"])


def find_versions(registry: Any, *, run_id: str) -> Any:
    """The versions of run ``run_id``, read as when issue 13 was filed: every version's artifact, then the filter."""
    models = {m.id: m for m in registry.get_registered_models().page_size(1000)}
    rows = [
        _version_row(
            getattr(models.get(v.registered_model_id), "name", "?"),
            v,
            a,
            getattr(models.get(v.registered_model_id), "custom_properties", None),
        )
        for v, a in _versions(registry, None)
        if (getattr(a, "model_source_id", None) or (v.custom_properties or {}).get(SOURCE_ID_KEY)) == run_id
    ]
    return _frame(rows, ["model", "version"])
