"""What runs inside the ``register_model`` component's process (no kfp import needed)."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path
from typing import Any

from mrhelpers.authoring.uris import serving_uri
from mrhelpers.core.registry import register_for_run

Outputs = namedtuple("RegistrationOutputs", ["model_id", "version_id", "version_name", "created", "run_id", "run_name"])


def run_register_component(output_model: Any, **args: Any) -> Outputs:
    """Register, then describe the registration in the output Model artifact.

    Args:
        output_model: The component's ``dsl.Output[dsl.Model]``.
        **args: The keyword arguments of :func:`mrhelpers.core.registry.register_for_run`.
    """
    result = register_for_run(**args)
    url = args["registry_url"].rstrip("/")
    output_model.metadata.update(
        {
            "model_name": result.model_name,
            "version_name": result.version_name,
            "registered_model_id": result.model_id,
            "model_version_id": result.version_id,
            "model_artifact_id": result.artifact_id,
            "model_uri": args["model_uri"],
            "registry_url": url,
            "created": result.created,
        }
    )
    path = Path(output_model.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output_model.metadata, indent=2, sort_keys=True))
    print(
        f"Registered {result.model_name} {result.version_name} (version id {result.version_id}, "
        f"{'created' if result.created else 'already there from this run'}) at {url}"
    )
    return Outputs(
        result.model_id, result.version_id, result.version_name, result.created, args["run_id"], args["run_name"]
    )


def register_trained(model: Any, metrics: Any, **args: Any) -> Any:
    """Register a model artifact a run wrote, with its metrics and parameters as metadata."""
    from collections import namedtuple

    where = serving_uri(model.uri, s3_endpoint=args.pop("s3_endpoint"))
    scores = {k: v for k, v in dict(metrics.metadata).items() if isinstance(v, (int, float))}
    metadata = {
        **scores, "dataset": args.pop("dataset"), "c": float(args.pop("c")), "max_iter": int(args.pop("max_iter")),
        "metrics": ", ".join(f"{k} {v:g}" for k, v in sorted(scores.items())),  # the UI (v0.2.22) shows only strings
        "code_version": dict(model.metadata).get("code_version", "unknown"),  # the training code's, from train_model
        **({"s3_endpoint": where["s3_endpoint"]} if "s3_endpoint" in where else {}),
    }  # fmt: skip
    result = register_for_run(
        model_uri=where["uri"], model_format_name="sklearn", model_format_version="1", metadata=metadata,
        on_conflict="bump", **args,
    )  # fmt: skip
    print(f"Registered {result.model_name} {result.version_name} (id {result.version_id}) from {where['uri']}")
    return namedtuple("Registered", ["version_name", "version_id"])(result.version_name, result.version_id)
