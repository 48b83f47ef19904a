#!/usr/bin/env bash
# Run the suite (all but the browser and slow tests) against another set of dependency versions:
#   lowest - the lowest version of every direct requirement that its range allows
#            (uv --resolution lowest-direct): proves the lower bounds are honest;
#   latest - the newest versions released today: warns of breakage before users meet it.
# Each set lives in its own venv (.venv-lowest / .venv-latest); the versions used are written to
# test-artifacts/versions-<set>.txt. Called by `make test-lowest` / `make test-latest` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:?usage: scripts/test_versions.sh lowest|latest}"
case "$mode" in
  lowest) resolution=(--resolution lowest-direct) ;;
  latest) resolution=(--upgrade) ;;
  *) echo "unknown version set '$mode' (use lowest or latest)" >&2; exit 2 ;;
esac
venv=".venv-$mode"
uv=".venv/bin/uv"
mkdir -p test-artifacts

# The newest versions are often exactly the locked set that `make test` has just tested (the lock
# is refreshed with `make lock`); running the same suite on the same versions again would only
# cost CI minutes. Resolve first, and run only when some version differs from the lock.
pins() { grep -oE '^[A-Za-z0-9_.-]+==[^ ;\\]+' "$1" | tr 'A-Z_' 'a-z-' | sort; }
if [ "$mode" = latest ]; then
  "$uv" pip compile --quiet --upgrade --python "$(command -v python3)" requirements-dev.txt \
    -o "test-artifacts/resolved-latest.txt"
  changed=$(comm -23 <(pins test-artifacts/resolved-latest.txt) <(pins requirements.lock) | tr '\n' ' ')
  if [ -z "$changed" ]; then
    echo "== latest dependency set: every package resolves to the version in requirements.lock," \
      "which \`make test\` has just tested; not run again."
    exit 0
  fi
  echo "== latest dependency set differs from requirements.lock in: $changed"
fi

python3 -m venv --clear "$venv"
"$uv" pip install --quiet --python "$venv/bin/python" "${resolution[@]}" -r requirements-dev.txt
"$uv" pip freeze --python "$venv/bin/python" > "test-artifacts/versions-$mode.txt"
echo "== $mode dependency set: $(grep -icE '^(streamlit|pandas|numpy|scipy|plotly|statsmodels|lifelines|pyarrow)==' "test-artifacts/versions-$mode.txt") core packages; see test-artifacts/versions-$mode.txt"
grep -iE '^(streamlit|pandas|numpy|scipy|plotly|statsmodels|lifelines|pyarrow|openpyxl|xlrd)==' "test-artifacts/versions-$mode.txt" | tr '\n' ' '; echo
# R's output is read from tests/golden (HER2ER_R_STORED=1): `make test` has just checked it live.
# The browser tests and the 16 `slow` ones (servers, wheel builds, 1M rows: they test this
# machine's processes more than the libraries' versions) run once, in `make test`; keeping them
# here too would take CI past 20 minutes. SET_MARKERS="not browser" runs those here as well.
HER2ER_R_STORED=1 PATH="$PWD/$venv/bin:$PATH" bash scripts/test.sh \
  -m "${SET_MARKERS:-not browser and not slow}" -q -p no:cacheprovider
