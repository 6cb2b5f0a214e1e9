# The image every Airflow service and the MLflow server of docker-compose.yaml run.
# The official Airflow image, plus churnops' pinned stack and the churnops package itself.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11

# The official image pins Airflow's own dependencies; ours must agree with it, so the
# same requirements.txt + constraints.txt that CI tests are installed here.
COPY --chown=airflow:0 requirements.txt constraints.txt pyproject.toml /opt/churnops/
COPY --chown=airflow:0 include /opt/churnops/include
RUN pip install --no-cache-dir -r /opt/churnops/requirements.txt -c /opt/churnops/constraints.txt \
 && pip install --no-cache-dir --no-deps -e /opt/churnops

# dags/, plugins/ and include/ are mounted over these at run time (docker-compose.yaml),
# so an edit on the host is seen without a rebuild.
ENV CHURNOPS_HOME=/opt/airflow/churnops
