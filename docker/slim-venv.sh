#!/bin/sh
# Remove from the image's virtual environment what no component runs (build stage of every app image):
# - every package's `tests` folders (numpy, pandas, scipy, pyarrow, sympy, networkx, mpmath, psutil, ...);
# - C/C++ headers and typing stubs (nothing is compiled or type-checked in the images);
# - torch's C++ test binaries and protoc (torch_shm_manager stays: torch's shared-memory helper);
# - the Kubernetes client's asyncio copy `kubernetes.aio` (68 MiB; the project, KServe and kopf use the
#   synchronous `kubernetes.client` alone);
# - Arrow Flight (pyarrow.flight, 31 MiB: RPC transport; no other pyarrow library links it) and pyarrow's
#   C++ test module.
# The images' import checks and tests/containers run the result.
set -eu
site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cd "$site"
before="$(du -sm . | cut -f1)"
find . -type d -name tests -prune -exec rm -rf {} +
find . -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cuh' -o -name '*.pyi' \) -delete
rm -rf torch/test torch/include pyarrow/include kubernetes/aio
if [ -d torch/bin ]; then find torch/bin -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} +; fi
if [ -d pyarrow ]; then
  rm -f pyarrow/flight.py pyarrow/_flight.* pyarrow/libarrow_flight.so* pyarrow/libarrow_python_flight.so* \
    pyarrow/_pyarrow_cpp_tests.*
fi
echo "slim-venv: site-packages ${before} MB -> $(du -sm . | cut -f1) MB"
