# The four app images (predictor, facade, callback, operator) from one Dockerfile: each installs the core
# plus its own component's extra from pyproject.toml (docs/images.md). Build context: the repository root;
# scripts/images.sh prepares .build/ (pip settings, requirements, the torch wheel) and builds each with
# its own build arguments and target, e.g.
#   docker build -f docker/component.Dockerfile --target facade --build-arg COMPONENT=facade \
#     --build-arg APP=facade --build-arg IMPORTS="facade.main facade.__main__" -t btc-forecast/facade:0.1.0 .
# Build arguments:
#   PYTHON_IMAGE     the Python base (scripts/base-image.sh makes one with debootstrap)
#   COMPONENT        the extra; .build/requirements/<COMPONENT>.txt holds the core plus that extra
#   APP              the project's packages the image keeps in /opt/app besides btcforecast
#                    (of predictor facade callback btcf_operator, and bin for the `btcf` console script)
#   IMPORTS          modules the build imports: the build fails when the extra lacks what they import
#   TORCH_VERSION    CPU torch release, installed first when set (the extra pins the same), else no torch
#   TORCH_INDEX_URL  index for CPU torch when .build/wheels/<WHEELS>/ holds no wheel
#   WHEELS           folder under .build/wheels/ copied to /wheels (torch: the local torch wheel)
# The target (the last stages) names the component: its port and command.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Build-time pip settings (CA bundle, index) written by scripts/images.sh: this stage only, never the final image.
COPY .build/pip/ /etc/btcf-pip/
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CONFIG_FILE=/etc/btcf-pip/pip.conf
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt docker/slim-venv.sh ./
# CPU-only torch first, in its own layer (the default index would pull a multi-GB CUDA build): a local
# wheel when scripts/images.sh put one in .build/wheels/torch (TORCH_WHEELS, LOCAL_BUILD), else the index.
ARG TORCH_VERSION=""
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG WHEELS=none
COPY .build/wheels/${WHEELS}/ /wheels/
RUN set -e; \
    if [ -z "${TORCH_VERSION}" ]; then exit 0; fi; \
    if ls /wheels/torch-${TORCH_VERSION}+cpu*.whl >/dev/null 2>&1; then \
      pip install -c constraints.txt /wheels/torch-${TORCH_VERSION}+cpu*.whl; \
    else \
      pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"; \
    fi
# The core and the component's extra, pinned by constraints.txt; then docker/slim-venv.sh drops what no
# component runs (test suites, headers, stubs, the Kubernetes asyncio client, Arrow Flight).
ARG COMPONENT
COPY .build/requirements/${COMPONENT}.txt ./requirements.txt
RUN pip install -c constraints.txt -r requirements.txt && ./slim-venv.sh \
    && echo /opt/app >"$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/btcf-app.pth"
COPY pyproject.toml ./
COPY btcforecast ./btcforecast
COPY predictor ./predictor
COPY facade ./facade
COPY callback ./callback
COPY operator ./operator
# The project without dependencies, then only the packages this component runs; the build fails here
# when an entry module imports something the extra does not install (tests/test_extras.py, in the venv).
# pip itself is not needed at run time: it leaves with the last step.
ARG APP
ARG IMPORTS
RUN pip install --no-deps --no-compile --target /opt/app . && pip check \
    && cd /opt/app && for p in predictor facade callback btcf_operator bin; do \
         case " ${APP} " in *" $p "*) ;; *) rm -rf "$p" ;; esac; done \
    && cd / && python -c 'import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]' ${IMPORTS} \
    && python -m pip uninstall -q -y pip

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /tmp app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/app /opt/app
ENV PATH=/opt/app/bin:/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp STATE_DIR=/state
USER 10001:10001

# Predictor: KServe ModelServer + the LSTM on CPU torch; the same image runs the seed Job (`btcf seed`)
# and the bucket Job.
FROM runtime AS predictor
EXPOSE 8080
CMD ["python", "-m", "predictor", "--model_name", "btc-lstm", "--http_port", "8080"]

# REST facade (FastAPI): asks the predictor for forecasts, never runs the network.
FROM runtime AS facade
EXPOSE 8000
CMD ["python", "-m", "facade", "--host", "0.0.0.0", "--port", "8000"]

# Callback receiver (FastAPI + sqlite).
FROM runtime AS callback
EXPOSE 9001
CMD ["python", "-m", "callback", "--host", "0.0.0.0", "--port", "9001"]

# kopf operator for ModelAlias.
FROM runtime AS operator
EXPOSE 8080
CMD ["kopf", "run", "--standalone", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz", "-m", "btcf_operator.main"]
