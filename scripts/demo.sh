#!/usr/bin/env bash
# Run churn_training once as a real Airflow DAG run on the embedded default (SQLite for
# Airflow's metadata and for MLflow, no servers), then say where to look.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/.venv/bin}
DEMO=${DEMO_HOME:-$ROOT/.demo}

export AIRFLOW_HOME=$DEMO/airflow
export CHURNOPS_HOME=${CHURNOPS_HOME:-$DEMO/churnops}
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$AIRFLOW_HOME/airflow.db
mkdir -p "$AIRFLOW_HOME" "$CHURNOPS_HOME"

echo "==> Airflow metadata DB: $AIRFLOW_HOME/airflow.db"
"$BIN/airflow" db migrate >"$DEMO/db-migrate.log" 2>&1 || { cat "$DEMO/db-migrate.log"; exit 1; }

echo "==> airflow dags test churn_training (a real DAG run; log: $DEMO/churn_training.log)"
if ! "$BIN/airflow" dags test churn_training >"$DEMO/churn_training.log" 2>&1; then
  tail -40 "$DEMO/churn_training.log"; echo "churn_training failed; full log: $DEMO/churn_training.log" >&2; exit 1
fi
summary=$(ls -t "$CHURNOPS_HOME"/runs/*/churn_training/*/summary.json | head -1)
"$BIN/python" - "$summary" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"==> {s['model_name']} version {s['model_version']} {['@' + a for a in s['aliases']]}: {s['best_model']}, "
      f"CV ROC-AUC {s['cv_roc_auc']:.4f}, holdout ROC-AUC {s['test_roc_auc']:.4f}, ECE {s['test_ece']:.4f}")
PY
if [ -n "${MLFLOW_TRACKING_URI:-}" ]; then
  echo "==> Runs and model are in your MLflow at $MLFLOW_TRACKING_URI"
else
  cat <<MSG
==> See the parent run, its nested step runs and the registered model in the MLflow UI:
      $BIN/mlflow ui --backend-store-uri sqlite:///$CHURNOPS_HOME/mlflow.db --host 127.0.0.1 --port 5000
    then open http://127.0.0.1:5000 (experiment "churnops-telco", model "churn-predictor").
==> Step outputs (snapshot, reports): $CHURNOPS_HOME/runs/telco/churn_training/
MSG
fi
