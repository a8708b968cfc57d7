"""MLflow's model registry, driven step by step by benchmarks/run.py; runs in MLflow's own venv.

    python benchmarks/mlflow_peer.py   # with MLFLOW_TRACKING_URI (the server) and MLFLOW_BENCH_STORE_URI (its database)

Reads one command a line on stdin and answers each with one JSON line ``{"s": seconds}``, so the
caller can interleave MLflow's steps with its own under the same load:

- ``register``: one ``create_model_version`` through the server (a source URI and 3 tags, as
  register_version writes lineage and 2 metadata keys);
- ``seed N``: N versions of a second model, straight into the server's database (MLflow's own
  SQLAlchemy store; as our seeding skips register_version's checks);
- ``list``: every version of that second model through the server (``search_model_versions``, pages
  of 1,000).

Imports nothing of mrhelpers.
"""

import json
import os
import sys
import time
import uuid

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersionTag
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore


def tags(i: int) -> dict[str, str]:
    return {"run_id": f"run-{i}", "accuracy": "0.5", "epochs": "7"}


def main() -> None:
    client = MlflowClient()
    tag = uuid.uuid4().hex[:6]
    one, many = f"reg-{tag}", f"many-{tag}"
    client.create_registered_model(one)
    client.create_registered_model(many)
    registered = seeded = 0
    for line in sys.stdin:
        command, *args = line.split()
        t = time.perf_counter()
        if command == "register":
            client.create_model_version(one, f"s3://bench/{one}/{registered}", tags=tags(registered),
                                        description=f"run run-{registered}", await_creation_for=0)  # fmt: skip
            registered += 1
        elif command == "seed":
            store = SqlAlchemyStore(os.environ["MLFLOW_BENCH_STORE_URI"])
            for i in range(seeded, seeded + int(args[0])):
                mv_tags = [ModelVersionTag(k, v) for k, v in tags(i).items()]
                store.create_model_version(many, f"s3://bench/{many}/{i}", tags=mv_tags, description=f"run run-{i}")
            seeded += int(args[0])
        elif command == "list":
            found, token = [], None
            while True:
                page = client.search_model_versions(f"name='{many}'", max_results=1000, page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    break
            assert len(found) == seeded, (len(found), seeded)
        else:
            raise SystemExit(f"unknown command {command!r}: register, seed N or list")
        print(json.dumps({"s": time.perf_counter() - t}), flush=True)


if __name__ == "__main__":
    main()
