# The image every Airflow service and the MLflow server of docker-compose.yaml run.
# The official Airflow image, plus churnops' pinned runtime stack and the churnops package itself.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11

# The mount points of docker-compose.yaml's named volumes. Docker gives a new named volume the
# owner and mode of the folder it is mounted on, and creates a missing folder as root: so each
# must exist here, owned by airflow and group 0 and writable by the group, for the services
# (user "${AIRFLOW_UID}:0", any uid) to write them. airflow-init re-owns existing volumes.
# setpriv is how airflow-init drops from root to that user.
USER root
RUN mkdir -p /opt/airflow/logs /opt/airflow/churnops /mlflow/artifacts /mlflow/auth \
 && chown -R airflow:0 /opt/airflow/logs /opt/airflow/churnops /mlflow \
 && chmod -R g+rwX /opt/airflow/logs /opt/airflow/churnops /mlflow \
 && setpriv --version
USER airflow

# The official image pins Airflow's own dependencies; ours must agree with it, so the same
# requirements.txt + constraints.txt that CI tests are installed here: the runtime set only,
# no test or lint tooling (that is requirements-dev.txt).
COPY --chown=airflow:0 requirements.txt constraints.txt pyproject.toml /opt/churnops/
COPY --chown=airflow:0 include /opt/churnops/include
RUN pip install --no-cache-dir -r /opt/churnops/requirements.txt -c /opt/churnops/constraints.txt \
 && pip install --no-cache-dir --no-deps -e /opt/churnops

# dags/, plugins/ and include/ are mounted over these at run time (docker-compose.yaml),
# so an edit on the host is seen without a rebuild.
ENV CHURNOPS_HOME=/opt/airflow/churnops
