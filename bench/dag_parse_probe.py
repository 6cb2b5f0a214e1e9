"""Parse one DAG file the way Airflow's DAG processor does and print what it cost, as JSON.

    python bench/dag_parse_probe.py dags/churn_monitoring.py

Run it in a fresh interpreter (a subprocess) so nothing imported earlier hides a heavy import.
Like the DAG processor, it has Airflow's own models loaded before the file is parsed, so the
time is the file's (its DAG objects and the provider modules it imports), measured by Airflow
itself (``DagBag.dagbag_stats``, what ``airflow dags report`` shows). ``heavy`` lists the data
and ML libraries the file pulled in: it must be empty (they belong inside tasks).
"""

from __future__ import annotations

import json
import sys

HEAVY = ("pandas", "numpy", "sklearn", "mlflow", "evidently", "xgboost", "lightgbm", "scipy", "matplotlib")


def main(dag_file: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dag_file)
    (stats,) = bag.dagbag_stats
    print(
        json.dumps(
            {
                "file": dag_file,
                "seconds": stats.duration.total_seconds(),
                "dags": sorted(bag.dag_ids),
                "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                "heavy": sorted(m for m in HEAVY if m in sys.modules),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
