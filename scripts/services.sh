#!/usr/bin/env bash
# The tests start their own throwaway PostgreSQL cluster and Redis server (tests/services.py) from
# Debian's binaries, read workbooks back with LibreOffice headless, and rely on no server of this
# machine: install the packages when missing (root for apt-get, or the packages already installed
# by someone who is).
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
# the employer workbooks' round trip through a real spreadsheet application (tests/pipelines)
command -v soffice >/dev/null || missing+=(libreoffice-calc-nogui)
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the tests need Debian's ${missing[*]}: run 'sudo apt-get install ${missing[*]}'" >&2
    exit 1
  fi
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  # initdb refuses root: as root the tests run the cluster as this user (the package makes it)
  echo "user postgres is missing: reinstall the postgresql package" >&2
  exit 1
fi
echo "PostgreSQL $(ls /usr/lib/postgresql | sort -n | tail -1) and $(redis-server --version | cut -d' ' -f3) ready for the tests"
