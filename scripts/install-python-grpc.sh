#!/usr/bin/env bash
# Makes sure Debian's python3-grpcio (grpc's C core) is there for the second-client test; installs it
# when it can. Where this machine cannot install packages (not root, no apt-get), says why in
# build/python/SKIPPED and that test is skipped; where it can and the install fails, make test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/python
rm -f build/python/SKIPPED
have() { /usr/bin/python3 -c 'import grpc' >/dev/null 2>&1; }
if ! have && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's python3-grpcio"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-grpcio) >build/python/apt.log 2>&1 ||
    { echo "apt-get could not install python3-grpcio; see build/python/apt.log"; cat build/python/apt.log; exit 1; }
fi
if have; then
  echo "python3-grpcio $(/usr/bin/python3 -c 'import grpc; print(grpc.__version__)')"
else
  echo "python3-grpcio cannot be installed here (needs root and apt-get)" | tee build/python/SKIPPED
fi
