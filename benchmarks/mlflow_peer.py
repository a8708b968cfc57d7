"""MLflow's model registry, measured as benchmarks/run.py measures ours; runs in MLflow's own venv.

    python benchmarks/mlflow_peer.py --registrations 120 --versions 5000
    # with MLFLOW_TRACKING_URI (the server) and MLFLOW_BENCH_STORE_URI (its database) set

Prints one JSON object: the median milliseconds of one ``create_model_version`` through the server
(one version with a source URI and 3 tags, as register_version writes lineage and 2 metadata keys),
the seconds it took to seed ``--versions`` versions into one model straight into the server's
database (MLflow's own SQLAlchemy store, not measured; as our seeding skips register_version's
checks), and the median of 3 listings of them all through the server (``search_model_versions``,
pages of 1,000). Imports nothing of mrhelpers.
"""

import argparse
import json
import os
import statistics
import time
import uuid

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersionTag
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registrations", type=int, default=120)
    parser.add_argument("--versions", type=int, default=5000)
    args = parser.parse_args()
    client = MlflowClient()
    tag = uuid.uuid4().hex[:6]

    def register(name: str, i: int) -> None:
        client.create_model_version(
            name, f"s3://bench/{name}/{i}", tags={"run_id": f"run-{i}", "accuracy": 0.5, "epochs": 7},
            description=f"run run-{i}", await_creation_for=0,
        )  # fmt: skip

    one = f"reg-{tag}"
    client.create_registered_model(one)
    times = []
    for i in range(args.registrations):
        t = time.perf_counter()
        register(one, i)
        times.append(time.perf_counter() - t)

    many = f"many-{tag}"
    client.create_registered_model(many)
    store = SqlAlchemyStore(os.environ["MLFLOW_BENCH_STORE_URI"])
    t = time.perf_counter()
    for i in range(args.versions):
        tags = [ModelVersionTag(k, v) for k, v in (("run_id", f"run-{i}"), ("accuracy", "0.5"), ("epochs", "7"))]
        store.create_model_version(many, f"s3://bench/{many}/{i}", tags=tags, description=f"run run-{i}")
    seeded = time.perf_counter() - t

    listings = []
    for _ in range(3):
        t = time.perf_counter()
        found, token = [], None
        while True:
            page = client.search_model_versions(f"name='{many}'", max_results=1000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        listings.append(time.perf_counter() - t)
        assert len(found) == args.versions, len(found)
    print(
        json.dumps(
            {
                "register_ms": statistics.median(times) * 1000,
                "seed_s": seeded,
                "list_s": statistics.median(listings),
            }
        )
    )


if __name__ == "__main__":
    main()
