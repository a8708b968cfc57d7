#!/usr/bin/env bash
# Builds the Model Registry UI's React frontend from the pinned server's own Go module
# (clients/ui/frontend at MODEL_REGISTRY_SERVER_VERSION), once per pin, into
# .mrh/ui/<version>/dist. Minutes and about 1 GB of node_modules the first time (deleted after the
# build); nothing after.
# Needs Go (to fetch the module) and Node 20+ with npm.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../versions.env
source "$root/setup/versions.env"
version="$MODEL_REGISTRY_SERVER_VERSION"
work="$root/.mrh/ui/$version"
stamp="$work/.built"

if [[ -f "$stamp" && -f "$work/dist/index.html" ]]; then
  echo "Model Registry UI $version: already built ($work/dist)"
  exit 0
fi

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if (( node_major < 20 )); then
  echo "The Model Registry UI needs Node 20 or later (found: $(node --version 2>/dev/null || echo none))." >&2
  echo "Install it (Debian 12's own nodejs is 18: take Node 20+ from nodejs.org), then run 'make ui' again." >&2
  exit 1
fi

# The module's folder in Go's module cache (read-only): the pin lives in setup/registry-server/go.mod.
module_dir="$(cd "$root/setup/registry-server" && go mod download -json "github.com/kubeflow/model-registry@$version" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ ! -f "$module_dir/clients/ui/frontend/package-lock.json" ]]; then
  echo "No clients/ui/frontend in github.com/kubeflow/model-registry@$version (looked in '$module_dir')." >&2
  exit 1
fi

echo "Building the Model Registry UI $version into $work (npm ci ~4 min and ~1 GB, then webpack ~2 min; once per pin) ..."
rm -rf "$work"
mkdir -p "$work"
cp -r "$module_dir/clients/ui/frontend" "$work/frontend"
chmod -R u+w "$work/frontend"
cd "$work/frontend"
start=$SECONDS
CYPRESS_INSTALL_BINARY=0 npm ci --no-audit --no-fund --loglevel=error
echo "npm ci: $((SECONDS - start)) s"
start=$SECONDS
# DIST_DIR is read by the frontend's own webpack config (config/dotenv.js).
DIST_DIR="$work/dist" DEPLOYMENT_MODE=standalone STYLE_THEME=mui-theme npm run build:prod
echo "webpack: $((SECONDS - start)) s"
test -f "$work/dist/index.html"
# Only dist is served: drop the 1 GB of node_modules (npm's own cache keeps the downloads) and older pins.
rm -rf "$work/frontend"
find "$root/.mrh/ui" -mindepth 1 -maxdepth 1 -type d ! -name "$version" -exec rm -rf {} +
touch "$stamp"
echo "Model Registry UI $version built: $work/dist ($(du -sh "$work/dist" | cut -f1))"
