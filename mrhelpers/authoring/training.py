"""What the training components run on a dataset scikit-learn ships: fit, score, read production's score.
``seed`` fixes the split, so evaluation scores exactly the rows training held out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrhelpers.authoring.in_task import connect_in_task
from mrhelpers.core.errors import InvalidInput
from mrhelpers.core.lifecycle import production_version

DATASETS = ("breast_cancer", "iris", "wine")
TEST_SIZE = 0.25


def load_split(dataset: str, seed: int) -> tuple[Any, Any, Any, Any]:
    """``(X_train, X_test, y_train, y_test)`` of a dataset scikit-learn ships; :class:`InvalidInput` for another."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if dataset not in DATASETS:
        raise InvalidInput("dataset", dataset, f"one of {', '.join(DATASETS)}")
    x, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    return train_test_split(x, y, test_size=TEST_SIZE, random_state=seed, stratify=y)


MODEL_FILE = "model.joblib"


def model_file(path: str | Path) -> Path:
    """The joblib file of a model saved by :func:`train_to`: ``path/model.joblib``, or ``path`` itself."""
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def train_to(path: str, *, dataset: str, c: float, max_iter: int, seed: int) -> dict[str, Any]:
    """Fit a scaled logistic regression on the training split; save it as ``path/model.joblib`` (KServe's
    sklearn runtime serves a folder with one ``.joblib`` file)."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not c > 0:
        raise InvalidInput("c", c, "a positive float (inverse regularisation strength)")
    x_train, _, y_train, _ = load_split(dataset, seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    model.fit(x_train, y_train)
    Path(path).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, Path(path) / MODEL_FILE)
    return {"rows": len(x_train), "features": x_train.shape[1], "code_version": code_version()}


def code_version() -> str:
    """This module's content hash, ``training.py@<12 hex>``: it changes exactly when the training code does."""
    import hashlib

    return f"training.py@{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]}"


def evaluate(model: Any, dataset: str, seed: int) -> dict[str, float]:
    """Accuracy and macro F1 of ``model`` on the held-out split."""
    from sklearn.metrics import accuracy_score, f1_score

    _, x_test, _, y_test = load_split(dataset, seed)
    predicted = model.predict(x_test)
    accuracy, f1 = accuracy_score(y_test, predicted), f1_score(y_test, predicted, average="macro")
    return {"accuracy": round(float(accuracy), 6), "f1_macro": round(float(f1), 6), "test_rows": int(len(y_test))}


def evaluate_file(path: str, dataset: str, seed: int) -> dict[str, float]:
    """:func:`evaluate` for a model saved by :func:`train_to`."""
    import joblib

    return evaluate(joblib.load(model_file(path)), dataset, seed)


def production_metric(registry_url: str, model_name: str, metric: str, author: str) -> float:
    """The ``metric`` recorded on model ``model_name``'s production version; -1.0 when there is none."""
    registry = connect_in_task(registry_url, author)
    version = production_version(registry, model_name) if registry.get_registered_model(model_name) else None
    value = (registry.get_model_version(model_name, version).custom_properties or {}).get(metric) if version else None
    return float(value) if isinstance(value, (int, float)) else -1.0
