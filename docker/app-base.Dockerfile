# The shared base of the predictor, facade, callback and operator images: one Python distribution
# (pyproject.toml) with CPU-only torch, run as a non-root user. Dependencies live in the venv
# /opt/venv, the project itself in /opt/app: a change to the sources rebuilds a small layer only.
# Build context: the repository root. scripts/images.sh prepares .build/ and builds it first:
#   scripts/images.sh            # or: docker build -f docker/app-base.Dockerfile -t btc-forecast/app-base:0.1.0 .
# Build arguments:
#   PYTHON_IMAGE     the Python base (pinned below; scripts/base-image.sh makes one with debootstrap)
#   TORCH_VERSION    CPU torch release
#   TORCH_INDEX_URL  index that serves CPU torch, used when .build/wheels holds no torch wheel
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Build-time pip settings (CA bundle, index) written by scripts/images.sh: this stage only, never the final image.
COPY .build/pip/ /etc/btcf-pip/
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CONFIG_FILE=/etc/btcf-pip/pip.conf
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt ./
# CPU-only torch first (the default index would pull a multi-GB CUDA build): a local wheel when
# scripts/images.sh put one in .build/wheels (TORCH_WHEELS, LOCAL_BUILD), else PyTorch's CPU index.
COPY .build/wheels/ /wheels/
RUN set -e; \
    if ls /wheels/torch-${TORCH_VERSION}+cpu*.whl >/dev/null 2>&1; then \
      pip install -c constraints.txt /wheels/torch-${TORCH_VERSION}+cpu*.whl; \
    else \
      pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"; \
    fi
# The project's dependencies (pyproject's [project] dependencies, which scripts/images.sh writes to
# .build/requirements.txt), pinned by constraints.txt; then the project alone, without dependencies.
COPY .build/requirements.txt ./
RUN pip install -c constraints.txt -r requirements.txt \
    && echo /opt/app >"$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/btcf-app.pth"
COPY pyproject.toml ./
COPY btcforecast ./btcforecast
COPY predictor ./predictor
COPY facade ./facade
COPY callback ./callback
COPY operator ./operator
RUN pip install --no-deps --no-compile --target /opt/app . && pip check

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /tmp app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/app /opt/app
ENV PATH=/opt/app/bin:/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp STATE_DIR=/state
USER 10001:10001
