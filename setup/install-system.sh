#!/usr/bin/env bash
# Installs what the local backend and the tests need from the system: MariaDB, Chromium, etcd (Debian's packages)
# and checks for Go and Python 3.11+. Safe to run again: it installs only what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
. "$here/versions.env"

need_apt=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_apt+=("$MARIADB_DEBIAN_PACKAGE")
command -v mariadb >/dev/null 2>&1 || need_apt+=(mariadb-client)
# Chromium and its driver: only for the test that opens the report site in a real browser.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# etcd: only for the kube test tier (a real kube-apiserver on loopback stores its objects there).
command -v etcd >/dev/null 2>&1 || need_apt+=("$ETCD_DEBIAN_PACKAGE")

if [ ${#need_apt[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${need_apt[*]} and this system has no apt-get." >&2
    echo "       Install MariaDB 10.11+ with your package manager so that mariadbd and mariadb are on PATH." >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: run as root, or install sudo, to apt-get install ${need_apt[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "Installing ${need_apt[*]} from Debian's packages ..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "error: Go is not installed; the Model Registry server is built with 'go install'." >&2
  echo "       Install Go 1.26 or later (https://go.dev/doc/install; the kube test tier's Kubernetes v1.36 needs 1.26) and put it on PATH." >&2
  exit 1
fi

py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: $py is not Python 3.11 or later; set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi
echo "System packages: ok (mariadbd $(mariadbd --version 2>/dev/null | awk '{print $3}' || echo '?'), $(go version 2>/dev/null || /usr/local/go/bin/go version))"
