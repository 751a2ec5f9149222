"""Train the demo models: iris LogisticRegression (the README's demo and the baked image model),
iris RandomForest(100), an iris classifier with string labels, and a Pipeline with a
ColumnTransformer fed by named columns. Each lands in ``OUT/<name>/model.joblib``.

Usage: ``python images/train_demo_models.py --out DIR [--only iris]``
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _tabular_pipeline(x: np.ndarray, y: np.ndarray) -> object:
    """A pipeline over named columns, one of them categorical: records in, predictions out. The one
    demo model that needs pandas (the numeric install has none; ``--only iris`` works there)."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    tabular = pd.DataFrame(x, columns=FEATURES).copy()  # (the copy: the same memory layout, the same fit)
    tabular["size"] = np.where(tabular["petal_length"] > 4.0, "large", "small")
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), FEATURES),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["size"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    return pipeline.fit(tabular, y)


def build_models(only: Collection[str] | None = None) -> dict[str, object]:
    iris = load_iris()
    x, y = iris.data, iris.target
    names = np.array(iris.target_names)
    trainers = {
        "iris": lambda: LogisticRegression(max_iter=1000).fit(x, y),
        "iris-rf": lambda: RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y),
        "iris-labels": lambda: LogisticRegression(max_iter=1000).fit(x, names[y]),
        "iris-pipeline": lambda: _tabular_pipeline(x, y),
    }
    return {name: train() for name, train in trainers.items() if not only or name in only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--only", action="append", help="train just these models (repeatable)")
    args = parser.parse_args()
    for name, model in build_models(args.only).items():
        target = args.out / name
        target.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, target / "model.joblib")
        print(f"wrote {target / 'model.joblib'}")


if __name__ == "__main__":
    main()
