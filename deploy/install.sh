#!/usr/bin/env bash
# Installs what linkwatch needs on a Debian machine, idempotently:
#   system packages (Java 17, Maven, ClickHouse server) with apt-get, only those missing;
#   the virtualenv .venv with linkwatch and its dev tools.
# With --test it also installs what only the test suite needs: R and its
# `surveillance` package (the reference the detectors are checked against) and
# Chromium (the dashboard's browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

log() { printf '\033[36m[install]\033[0m %s\n' "$*"; }

need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v clickhouse-server >/dev/null 2>&1 || [[ -x /usr/sbin/clickhouse-server ]] || need+=(clickhouse-server)
if (( want_test )); then
  if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'suppressMessages(library(surveillance)); library(jsonlite)' >/dev/null 2>&1; then
    need+=(r-base-core r-cran-surveillance r-cran-jsonlite)
  fi
  # The dashboard's browser tests drive Debian's Chromium (no browser download).
  [[ -x /usr/bin/chromium ]] || need+=(chromium)
fi

if (( ${#need[@]} )); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # --no-install-recommends: R alone would otherwise pull ~700 packages.
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "linkwatch needs Python 3.11 or newer; $("$python" --version 2>&1) found (set PYTHON=...)" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$python" -m venv .venv
fi

# Reinstall only when the dependency list changed: keeps `make up` and `make test` quick on reruns.
stamp=.venv/.linkwatch-installed
digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$digest" ]] || ! .venv/bin/python -c 'import linkwatch.streams.cli' 2>/dev/null; then
  log "pip install -e .[dev]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$digest" > "$stamp"
fi
log "ready: $(.venv/bin/linkwatch version | head -1)"
