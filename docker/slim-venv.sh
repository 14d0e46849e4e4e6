#!/bin/sh
# Remove from the image's virtual environment what no component runs (build stage of every app image):
# the test suites of numpy, pandas, scipy and pyarrow, C/C++ headers (nothing is compiled in the
# images), torch's C++ test binaries and protoc. torch_shm_manager stays (torch's shared-memory helper).
# The images' import checks and tests/containers run the result.
set -eu
site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cd "$site"
before="$(du -sm . | cut -f1)"
for pkg in numpy pandas scipy pyarrow; do
  if [ -d "$pkg" ]; then find "$pkg" -depth -type d -name tests -exec rm -rf {} +; fi
done
rm -rf torch/test torch/include pyarrow/include
if [ -d torch/bin ]; then find torch/bin -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} +; fi
echo "slim-venv: site-packages ${before} MB -> $(du -sm . | cut -f1) MB"
