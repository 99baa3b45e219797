# The code location's image for Kubernetes: the same package `pip install -e .` gives locally,
# with the k8s extra (dagster-k8s, dagster-postgres). Each run of the daily job (one day) starts
# a pod from this image (deploy/k8s/dagster.yaml); the code server serves the definitions.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/optimizely_assets

COPY pyproject.toml README.md ./
COPY optimizely_assets ./optimizely_assets
# A writable Dagster home for the non-root user: run pods write their instance files there.
ENV DAGSTER_HOME=/opt/dagster/dagster_home
RUN pip install ".[k8s]" && useradd --create-home --uid 10001 dagster \
    && mkdir -p "$DAGSTER_HOME" && chown -R dagster "$DAGSTER_HOME"
USER dagster

# gRPC code server for the Dagster webserver and daemon; in the pod, not on a workstation.
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "optimizely_assets.definitions"]
