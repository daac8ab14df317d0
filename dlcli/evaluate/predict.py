"""``dlcli predict``: one row per input (the prediction, and each class's probability), as .csv or .parquet."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlcli.errors import DataError
from dlcli.evaluate.inputs import read_inputs
from dlcli.evaluate.reload import load_model, open_run
from dlcli.evaluate.score import class_probabilities
from dlcli.model.scoring import predict
from dlcli.runs import replacing

TABLE_SUFFIXES = (".csv", ".parquet")


@dataclass
class Predictions:
    output: Path
    rows: int
    columns: list[str]
    notes: list[str] = field(default_factory=list)


def predict_file(run_dir: Path, input_path: Path, output_path: Path, unsafe: bool = False,
                 backend: str | None = None) -> Predictions:
    """Predict every row of an input file and write the predictions as .csv or .parquet.

    Each output row holds ``prediction`` (the class name, or the value) and, for classification,
    ``prob_<class>`` for every class.

    Raises:
        RunError / DataError: a run that cannot be used, an input whose columns, types or shape do
            not match the training data, an output that is not .csv / .parquet.
    """
    import pandas as pd  # lazy: start-up speed

    output_path = Path(output_path)
    if output_path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"--output {output_path}: write .csv or .parquet")
    if output_path.resolve() == Path(input_path).resolve():
        raise DataError(f"--output {output_path}: is the input file; choose another name")
    if not output_path.parent.is_dir():
        raise DataError(f"--output {output_path}: the directory {output_path.parent} does not exist")
    run = open_run(run_dir, backend)
    inputs = read_inputs(input_path, run.prep, with_target=False)
    x = run.prep.transform(inputs.x)
    load_model(run, unsafe=unsafe)
    outputs = predict(run.model, x, run.cfg.fit.batch_size)
    if run.prep.task == "classification":
        names = list(run.prep.class_names or [])
        probs = class_probabilities(outputs, run.prep.encoding).astype(np.float32)
        frame = pd.DataFrame({"prediction": np.asarray(names, dtype=object)[probs.argmax(axis=1)]})
        for i, name in enumerate(names):
            frame[f"prob_{name}"] = probs[:, i]
    else:
        frame = pd.DataFrame({"prediction": np.asarray(outputs, dtype=np.float64).reshape(-1)})
    with replacing(output_path) as tmp:
        if output_path.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return Predictions(output=output_path, rows=len(frame), columns=list(frame.columns), notes=inputs.notes)
