# The shared base of the predictor, facade, callback and operator images: one Python distribution
# (pyproject.toml) with CPU-only torch, installed in a venv and run as a non-root user.
# Build context: the repository root. scripts/images.sh builds it first:
#   docker build -f docker/app-base.Dockerfile -t btc-forecast/app-base:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt ./
# CPU-only torch first, from PyTorch's CPU index: the default index would pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml ./
COPY btcforecast ./btcforecast
COPY predictor ./predictor
COPY facade ./facade
COPY callback ./callback
COPY operator ./operator
RUN pip install -c constraints.txt .

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /tmp app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp STATE_DIR=/state
USER 10001:10001
