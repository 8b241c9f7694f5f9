#!/bin/sh
# run.sh CHECKER - the manifest schema test (tests/integration/manifest_schema.cmake):
# installs ajv and yaml from the committed package-lock.json when they are
# missing, then runs check.js. Exit 77 (ctest: skipped) without Node.js.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
checker=$1
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node/npm not installed (tools/install-deps installs them): skipped"
  exit 77
fi
if [ ! -f "$here/node_modules/ajv/package.json" ] || [ ! -f "$here/node_modules/yaml/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node "$here/check.js" --root "$here/../.." --checker "$checker"
