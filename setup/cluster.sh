#!/usr/bin/env bash
# The cluster backend: a kind cluster with Kubeflow Pipelines, the Model Registry and its UI,
# stood up with the versions in setup/versions.env.
#
#   setup/cluster.sh [--dry-run] up [--multi-user] [--with-kserve] [--rebuild]
#   setup/cluster.sh [--dry-run] down
#   setup/cluster.sh [--dry-run] port-forward start|stop|status
#   setup/cluster.sh preflight [--multi-user]
#
# --dry-run prints every command that would change something, and runs none of them.
# Re-running `up` is safe: what exists is kept, and what is missing is added. When the last `up` built
# the same mode (and KServe, if asked) and every port-forward answers (after starting them if needed),
# `up` reuses it in seconds; --rebuild runs every step again.
#
# Environment: MRH_CLUSTER_NAME (default mrhelpers), MRH_CLUSTER_STATE (default <repo>/.mrh/cluster,
# pid and log files of the port-forwards), MRH_WAIT_TIMEOUT (seconds per wait, default 900),
# MRH_RETRY_DELAY (seconds between retries, default 15), MRH_SKIP_PREFLIGHT=1 (not recommended),
# MRH_KFP_UI_PORT, MRH_KFP_API_PORT, MRH_REGISTRY_PORT, MRH_REGISTRY_UI_PORT (local forward ports).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
. "$here/versions.env"

CLUSTER_NAME=${MRH_CLUSTER_NAME:-mrhelpers}
STATE_DIR=${MRH_CLUSTER_STATE:-$repo/.mrh/cluster}
WAIT_TIMEOUT=${MRH_WAIT_TIMEOUT:-900}
RETRY_DELAY=${MRH_RETRY_DELAY:-15}
PROC=${MRH_PROC_DIR:-/proc}  # tests point this at a fake /proc
CONTEXT="kind-$CLUSTER_NAME"
# Local ports of the forwards; change one when it is taken (and tell mrhelpers: MRH_KFP_HOST, ...).
KFP_UI_LOCAL_PORT=${MRH_KFP_UI_PORT:-$KFP_UI_LOCAL_PORT}
KFP_API_LOCAL_PORT=${MRH_KFP_API_PORT:-$KFP_API_LOCAL_PORT}
REGISTRY_LOCAL_PORT=${MRH_REGISTRY_PORT:-$REGISTRY_LOCAL_PORT}
REGISTRY_UI_LOCAL_PORT=${MRH_REGISTRY_UI_PORT:-$REGISTRY_UI_LOCAL_PORT}
KFP_NS=kubeflow
DRY_RUN=0

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '       %s\n' "$line" >&2; done
  exit 1
}

# quoted ARG...: the arguments as a line you can paste into a shell (single quotes where needed).
quoted() {
  local arg out=()
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=("$arg"); else out+=("'${arg//\'/\'\\\'\'}'"); fi
  done
  printf '%s' "${out[*]}"
}

# run CMD...: print it, then run it (or only print it with --dry-run).
run() {
  printf '+ %s\n' "$(quoted "$@")"
  [ "$DRY_RUN" = 1 ] && return 0
  "$@"
}

# retry N CMD...: run CMD up to N times, RETRY_DELAY seconds apart. CRDs that a manifest defines
# are often not served yet when its custom resources arrive, so the first apply can fail.
retry() {
  local attempts=$1 i
  shift
  for ((i = 1; i <= attempts; i++)); do
    if run "$@"; then return 0; fi
    [ "$i" -lt "$attempts" ] && say "  attempt $i of $attempts failed; retrying in ${RETRY_DELAY}s ..." && sleep "$RETRY_DELAY"
  done
  die "'$*' failed $attempts times." "Run it by hand to see the error, then \`MRH_BACKEND=cluster make doctor\`" \
    "names common causes; re-running \`setup/cluster.sh up\` is safe."
}

kc() { kubectl --context "$CONTEXT" "$@"; }

# version_at_least HAVE WANT: true when HAVE >= WANT (both like v1.2.3 or 1.2.3).
version_at_least() {
  [ "$(printf '%s\n%s\n' "${2#v}" "${1#v}" | sort -V | head -n1)" = "${2#v}" ]
}

tool_version() {
  case $1 in
    kind) kind version 2>/dev/null | awk '{print $2}' ;;
    kubectl) kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1 ;;
    kustomize) kustomize version 2>/dev/null | sed 's/^{Version:kustomize\///; s/ .*//; s/^kustomize\///' | head -n1 ;;
  esac
}

install_hint() {
  case $1 in
    kind) echo "curl -Lo ./kind https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-linux-amd64 && chmod +x kind && sudo mv kind /usr/local/bin/" ;;
    kubectl) echo "curl -LO https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/amd64/kubectl && sudo install kubectl /usr/local/bin/" ;;
    kustomize) echo "curl -L https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2F$KUSTOMIZE_VERSION/kustomize_${KUSTOMIZE_VERSION}_linux_amd64.tar.gz | tar xz && sudo mv kustomize /usr/local/bin/" ;;
  esac
}

# ----------------------------------------------------------------------------------------- preflight

preflight() {
  local multi=$1 problems=() tool want have
  # git: kubectl fetches the remote kustomize bases (KFP's pull Argo's) with it; jq edits the dashboard's links.
  command -v git >/dev/null 2>&1 || problems+=("git is not installed; kubectl needs it for remote kustomize bases (apt-get install git).")
  if [ "$multi" = 1 ] && ! command -v jq >/dev/null 2>&1; then
    problems+=("jq is not installed; --multi-user needs it (apt-get install jq).")
  fi
  if ! command -v docker >/dev/null 2>&1; then
    problems+=("docker is not installed. Install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop.")
  elif ! docker info >/dev/null 2>&1; then
    problems+=("Docker is installed but not running (or you may not use it). Start it (\`sudo systemctl start docker\`) and add yourself to the docker group, then log in again.")
  fi
  for tool in kind kubectl kustomize; do
    case $tool in kind) want=$KIND_VERSION ;; kubectl) want=$KUBECTL_MIN_VERSION ;; kustomize) want=$KUSTOMIZE_VERSION ;; esac
    if ! command -v "$tool" >/dev/null 2>&1; then
      problems+=("$tool is not installed. Install $want: $(install_hint "$tool")")
      continue
    fi
    have=$(tool_version "$tool")
    if [ -z "$have" ] || ! version_at_least "$have" "$want"; then
      problems+=("$tool is ${have:-of unknown version}; this project needs $want or later: $(install_hint "$tool")")
    fi
  done
  if [ "$(uname -s)" = Linux ] && [ -r "$PROC/sys/fs/inotify/max_user_instances" ]; then
    local instances watches
    instances=$(cat "$PROC/sys/fs/inotify/max_user_instances")
    watches=$(cat "$PROC/sys/fs/inotify/max_user_watches")
    if [ "$instances" -lt "$INOTIFY_MAX_USER_INSTANCES" ] || [ "$watches" -lt "$INOTIFY_MAX_USER_WATCHES" ]; then
      problems+=("inotify limits are low (max_user_instances=$instances, max_user_watches=$watches); pods fail with \"too many open files\". Raise them: sudo sysctl fs.inotify.max_user_instances=$INOTIFY_MAX_USER_INSTANCES fs.inotify.max_user_watches=$INOTIFY_MAX_USER_WATCHES")
    fi
  fi
  local need_mem need_disk
  if [ "$multi" = 1 ]; then need_mem=$MULTI_USER_MIN_MEMORY_GIB need_disk=$MULTI_USER_MIN_DISK_GIB; else need_mem=$STANDALONE_MIN_MEMORY_GIB need_disk=$STANDALONE_MIN_DISK_GIB; fi
  if [ -r "$PROC/meminfo" ]; then
    local avail_kib
    avail_kib=$(awk '/^MemAvailable:/ {print $2}' "$PROC/meminfo")
    if [ -n "$avail_kib" ] && [ $((avail_kib / 1048576)) -lt "$need_mem" ]; then
      problems+=("only $((avail_kib / 1048576)) GiB of memory is free; this install needs about $need_mem GiB. Close other programs or give Docker more memory.")
    fi
  fi
  local disk_path=${MRH_DOCKER_ROOT:-/var/lib/docker}
  [ -d "$disk_path" ] || disk_path=/
  local free_gib
  free_gib=$(df -Pk "$disk_path" | awk 'NR == 2 {print int($4 / 1048576)}')
  if [ -n "$free_gib" ] && [ "$free_gib" -lt "$need_disk" ]; then
    problems+=("only $free_gib GiB of disk is free under $disk_path; the images need about $need_disk GiB. Free some (\`docker system prune\`).")
  fi
  if [ ${#problems[@]} -gt 0 ]; then
    printf 'Preflight found %d problem(s):\n' "${#problems[@]}" >&2
    local p
    for p in "${problems[@]}"; do printf '  - %s\n' "$p" >&2; done
    if [ "$DRY_RUN" = 1 ]; then
      warn "dry run: continuing anyway so you can see the commands."
      return 0
    fi
    exit 1
  fi
  say "Preflight: ok (Docker answers; kind, kubectl, kustomize at the pinned versions or later; memory, disk, inotify)."
}

# ------------------------------------------------------------------------------------------- waits

# wait_deployments NAMESPACE [SELECTOR]: until every Deployment there is Available, with a progress line.
wait_deployments() {
  local ns=$1 selector=${2:-} waited=0 total ready line name avail want
  # "|" separates the fields: availableReplicas is absent (empty) until a replica is available.
  local args=(-n "$ns" get deployments -o 'jsonpath={range .items[*]}{.metadata.name}{"|"}{.status.availableReplicas}{"|"}{.spec.replicas}{"\n"}{end}')
  [ -n "$selector" ] && args+=(-l "$selector")
  printf '+ waiting for the Deployments in %s%s to become Available (timeout %ss)\n' "$ns" "${selector:+ ($selector)}" "$WAIT_TIMEOUT"
  [ "$DRY_RUN" = 1 ] && return 0
  while :; do
    total=0 ready=0
    while IFS='|' read -r name avail want; do
      [ -z "$name" ] && continue
      total=$((total + 1))
      [ "${avail:-0}" -ge "${want:-1}" ] 2>/dev/null && ready=$((ready + 1))
    done < <(kc "${args[@]}" 2>/dev/null || true)
    line="  $ns: $ready of $total Deployments available after ${waited}s"
    if [ "$total" -gt 0 ] && [ "$ready" -eq "$total" ]; then
      say "$line: done"
      return 0
    fi
    say "$line"
    if [ "$waited" -ge "$WAIT_TIMEOUT" ]; then
      die "the Deployments in $ns did not become Available within ${WAIT_TIMEOUT}s." \
        "See what is wrong: MRH_BACKEND=cluster make doctor, or" \
        "kubectl --context $CONTEXT -n $ns get pods; then run setup/cluster.sh up again (safe)."
    fi
    sleep "$RETRY_DELAY"
    waited=$((waited + RETRY_DELAY))
  done
}

# ------------------------------------------------------------------------------------------------ up

cluster_exists() {
  kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"
}

create_cluster() {
  if cluster_exists; then
    say "kind cluster '$CLUSTER_NAME' exists; keeping it."
  else
    run kind create cluster --name "$CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --config "$here/kind/cluster.yaml" --wait 180s
  fi
  run kubectl config use-context "$CONTEXT"
}

load_component_image() {
  run docker build -t "$COMPONENT_IMAGE" --build-arg "SKLEARN_VERSION=$SKLEARN_SERVING_VERSION" \
    --build-arg "NUMPY_VERSION=$NUMPY_SERVING_VERSION" --build-arg "JOBLIB_VERSION=$JOBLIB_SERVING_VERSION" \
    -f "$here/component-image/Dockerfile" "$repo"
  run kind load docker-image "$COMPONENT_IMAGE" --name "$CLUSTER_NAME"
}

install_kfp() {
  local base="github.com/kubeflow/pipelines/manifests/kustomize"
  say "Kubeflow Pipelines $KFP_BACKEND_VERSION (standalone, env/platform-agnostic) ..."
  retry 3 kubectl --context "$CONTEXT" apply -k "$base/cluster-scoped-resources?ref=$KFP_BACKEND_VERSION"
  retry 3 kubectl --context "$CONTEXT" wait --for condition=established --timeout=60s crd/applications.app.k8s.io
  retry 5 kubectl --context "$CONTEXT" apply -k "$base/env/platform-agnostic?ref=$KFP_BACKEND_VERSION"
}

install_model_registry() {
  # kubeflow/model-registry was renamed kubeflow/hub; its tags moved with it.
  local base="https://github.com/kubeflow/hub/manifests/kustomize"
  say "Model Registry $MODEL_REGISTRY_MANIFESTS_REF (overlays/db) and its UI (standalone) in $KFP_NS ..."
  # overlays/db sets no namespace; the UI overlay names kubeflow itself.
  retry 3 kubectl --context "$CONTEXT" apply -n "$KFP_NS" -k "$base/overlays/db?ref=$MODEL_REGISTRY_MANIFESTS_REF"
  retry 3 kubectl --context "$CONTEXT" apply -k "$base/$MODEL_REGISTRY_UI_OVERLAY?ref=$MODEL_REGISTRY_MANIFESTS_REF"
  # The standalone overlay's Service patch targets group apps and the wrong name, so it never applies:
  # the Service sends traffic to the UI's backend (8080), skipping the proxy on 8000 that adds the
  # kubeflow-userid header, and the UI answers 400. Point the Service at the proxy (idempotent).
  retry 3 kubectl --context "$CONTEXT" -n "$KFP_NS" patch service model-registry-ui-service --type=json \
    -p='[{"op":"replace","path":"/spec/ports/0/targetPort","value":8000}]'
}

# ensure_namespace NAMESPACE: create it unless it exists.
ensure_namespace() {
  printf '+ kubectl --context %s create namespace %s (if missing)\n' "$CONTEXT" "$1"
  [ "$DRY_RUN" = 1 ] && return 0
  if kc get namespace "$1" >/dev/null 2>&1; then
    say "  namespace $1 exists; keeping it."
  else
    kc create namespace "$1"
  fi
}

# wait_namespace NAMESPACE: until it exists. Kubeflow's profile controller creates the profile's
# namespace some time after the Profile is applied, so applying into it at once can fail.
wait_namespace() {
  local ns=$1 waited=0
  printf '+ waiting for namespace %s to exist (timeout %ss)\n' "$ns" "$WAIT_TIMEOUT"
  [ "$DRY_RUN" = 1 ] && return 0
  until kc get namespace "$ns" >/dev/null 2>&1; do
    if [ "$waited" -ge "$WAIT_TIMEOUT" ]; then
      die "namespace $ns does not exist after ${WAIT_TIMEOUT}s." \
        "Kubeflow's profile controller creates it from the Profile: kubectl --context $CONTEXT get profiles;" \
        "kubectl --context $CONTEXT -n kubeflow logs deploy/profiles-deployment. Then run setup/cluster.sh up again (safe)."
    fi
    say "  namespace $ns does not exist yet after ${waited}s"
    sleep "$RETRY_DELAY"
    waited=$((waited + RETRY_DELAY))
  done
  say "  namespace $ns exists"
}

install_kserve() {
  if [ "$1" = 1 ]; then
    # The community distribution brings its own KServe (in kubeflow) and a newer cert-manager; installing
    # the pinned release in kserve on top would run two controllers and downgrade cert-manager.
    say "KServe: the Kubeflow distribution installed its own (namespace kubeflow) and cert-manager; keeping those."
    [ "$DRY_RUN" = 1 ] || echo "distribution" >"$STATE_DIR/kserve"
    return 0
  fi
  say "KServe $KSERVE_VERSION (Standard mode, formerly RawDeployment: no Knative, no Istio) and cert-manager $CERT_MANAGER_VERSION ..."
  retry 3 kubectl --context "$CONTEXT" apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
  wait_deployments cert-manager
  # Since v0.17 kserve.yaml carries no Namespace object.
  ensure_namespace kserve
  # Server-side apply with --force-conflicts: on a re-run, kserve.yaml takes back the fields its release
  # sets (data.deploy of inferenceservice-config included, which the step below owns), and then
  # configure_kserve takes data.deploy back. Without it the re-run stops at a field-manager conflict.
  retry 5 kubectl --context "$CONTEXT" apply --server-side --force-conflicts -f "https://github.com/kserve/kserve/releases/download/$KSERVE_VERSION/kserve.yaml"
  wait_deployments kserve
  retry 5 kubectl --context "$CONTEXT" apply --server-side --force-conflicts -f "https://github.com/kserve/kserve/releases/download/$KSERVE_VERSION/kserve-cluster-resources.yaml"
  configure_kserve
  [ "$DRY_RUN" = 1 ] || echo "$KSERVE_VERSION" >"$STATE_DIR/kserve"
}

# configure_kserve: Standard deployment mode, the one field of inferenceservice-config this project owns.
configure_kserve() {
  retry 3 kubectl --context "$CONTEXT" apply --server-side --force-conflicts --field-manager=mrhelpers \
    -f "$here/kserve/inferenceservice-config.yaml"
}

install_multi_user() {
  local checkout="$STATE_DIR/manifests-$KUBEFLOW_MANIFESTS_VERSION" i
  say "Kubeflow $KUBEFLOW_MANIFESTS_VERSION (multi-user, the community distribution's 'example'), then the Model Registry in $PROFILE_NAMESPACE ..."
  if [ -d "$checkout/.git" ]; then
    say "The Kubeflow manifests $KUBEFLOW_MANIFESTS_VERSION are checked out in $checkout; keeping them."
  else
    run git clone --depth 1 --branch "$KUBEFLOW_MANIFESTS_VERSION" "$KUBEFLOW_MANIFESTS_REPO" "$checkout"
  fi
  # The upstream README's loop: CRDs arrive together with the resources that use them, so apply until it sticks.
  for ((i = 1; i <= 10; i++)); do
    printf '+ kustomize build %s/example | kubectl apply --server-side --force-conflicts -f -\n' "$checkout"
    [ "$DRY_RUN" = 1 ] && break
    if kustomize build "$checkout/example" | kc apply --server-side --force-conflicts -f -; then break; fi
    [ "$i" = 10 ] && die "the Kubeflow install did not apply after 10 attempts." "Check \`kubectl get pods -A\` and MRH_BACKEND=cluster make doctor."
    say "  attempt $i of 10 did not apply yet; retrying in ${RETRY_DELAY}s ..."
    sleep "$RETRY_DELAY"
  done
  wait_deployments kubeflow
  # The Model Registry in the profile namespace, and its UI behind Istio, linked from the central dashboard.
  wait_namespace "$PROFILE_NAMESPACE"
  local mr="$checkout/applications/model-registry/upstream"
  apply_built "$mr/overlays/db" "$PROFILE_NAMESPACE"
  apply_built "$mr/options/istio" "$PROFILE_NAMESPACE"
  apply_built "$mr/options/ui/overlays/istio" kubeflow
  link_dashboard
  wait_deployments "$PROFILE_NAMESPACE" "component=model-registry-server"
}

# apply_built DIR NAMESPACE: kustomize build DIR | kubectl apply -n NAMESPACE -f -, retried (CRDs and
# namespaces that the profile controller creates arrive a little after what uses them).
apply_built() {
  local i attempts=5
  printf '+ kustomize build %s | kubectl apply -n %s -f -\n' "$1" "$2"
  [ "$DRY_RUN" = 1 ] && return 0
  for ((i = 1; i <= attempts; i++)); do
    if kustomize build "$1" | kc apply -n "$2" -f -; then return 0; fi
    [ "$i" -lt "$attempts" ] && say "  attempt $i of $attempts failed; retrying in ${RETRY_DELAY}s ..." && sleep "$RETRY_DELAY"
  done
  die "applying $1 into $2 failed $attempts times." "Run \`kustomize build $1 | kubectl apply -n $2 -f -\` to see the error;" \
    "MRH_BACKEND=cluster make doctor names common causes; re-running setup/cluster.sh up is safe."
}

# Add "Model Registry" to the central dashboard's menu once (the ConfigMap holds the links as JSON).
link_dashboard() {
  local links
  printf '+ add the Model Registry link to configmap centraldashboard-config (if missing)\n'
  [ "$DRY_RUN" = 1 ] && return 0
  links=$(kc -n kubeflow get configmap centraldashboard-config -o jsonpath='{.data.links}')
  if printf '%s' "$links" | grep -q '"/model-registry/"'; then
    say "  the dashboard links to the Model Registry already."
    return 0
  fi
  links=$(printf '%s' "$links" | jq -c '.menuLinks += [{"type":"item","link":"/model-registry/","text":"Model Registry","icon":"assignment"}]')
  kc -n kubeflow patch configmap centraldashboard-config --type=merge -p "$(jq -n --arg l "$links" '{data: {links: $l}}')"
}

# built MULTI KSERVE: true when the last `up` recorded this mode (and KServe, if asked) and every
# port-forward answers, after starting the missing ones.
built() {
  local mode
  mode=$([ "$1" = 1 ] && echo multi-user || echo standalone)
  [ "$(cat "$STATE_DIR/mode" 2>/dev/null)" = "$mode" ] && { [ "$2" = 0 ] || [ -f "$STATE_DIR/kserve" ]; } || return 1
  port_forward status >/dev/null 2>&1 || port_forward start >/dev/null 2>&1
}

up() {
  local multi=0 kserve=0 rebuild=0
  while [ $# -gt 0 ]; do
    case $1 in
      --multi-user) multi=1 ;;
      --with-kserve) kserve=1 ;;
      --rebuild) rebuild=1 ;;
      *) die "unknown option for up: $1" "usage: setup/cluster.sh [--dry-run] up [--multi-user] [--with-kserve] [--rebuild]" ;;
    esac
    shift
  done
  if [ "$DRY_RUN" = 0 ] && [ "$rebuild" = 0 ] && built "$multi" "$kserve"; then
    say "The $(cat "$STATE_DIR/mode") cluster '$CLUSTER_NAME' that the last \`up\` built answers at every port-forward; reusing it (--rebuild runs every step again)."
    port_forward status
    return 0
  fi
  [ "${MRH_SKIP_PREFLIGHT:-0}" = 1 ] || preflight "$multi"
  mkdir -p "$STATE_DIR"
  [ "$DRY_RUN" = 1 ] || rm -f "$STATE_DIR/mode"  # written again once every step below succeeded
  create_cluster
  load_component_image
  if [ "$multi" = 1 ]; then
    install_multi_user
  else
    install_kfp
    install_model_registry
    wait_deployments "$KFP_NS"
  fi
  [ "$kserve" = 1 ] && install_kserve "$multi"
  [ "$DRY_RUN" = 1 ] || { [ "$multi" = 1 ] && echo multi-user || echo standalone; } >"$STATE_DIR/mode"
  say ""
  if [ "$DRY_RUN" = 1 ]; then
    say "Dry run: the commands above were printed, none was run. Without --dry-run, the cluster '$CLUSTER_NAME' comes up; then:"
  else
    say "The cluster '$CLUSTER_NAME' is up. Next:"
  fi
  say "  setup/cluster.sh port-forward start      # KFP UI/API and Model Registry API/UI on 127.0.0.1"
  if [ "$multi" = 1 ]; then
    say "  Kubeflow's dashboard: http://127.0.0.1:$KFP_UI_LOCAL_PORT (user@example.com / 12341234; change it before sharing)."
    say "  Run the notebooks from a Kubeflow Notebook in $PROFILE_NAMESPACE (\"Allow access to Kubeflow Pipelines\" ticked), with"
    say "  backend=\"cluster\" and MRH_REGISTRY_URL=http://model-registry-service.$PROFILE_NAMESPACE.svc.cluster.local:8080 (docs/cluster.md: multi-user)."
  else
    say "  then run the notebooks with backend=\"cluster\" (or MRH_BACKEND=cluster)."
  fi
}

down() {
  port_forward stop
  if [ "$DRY_RUN" = 1 ] || cluster_exists; then
    run kind delete cluster --name "$CLUSTER_NAME"
    [ "$DRY_RUN" = 1 ] || rm -f "$STATE_DIR/mode" "$STATE_DIR/kserve"
  else
    say "No kind cluster named '$CLUSTER_NAME'; nothing to delete."
  fi
}

# -------------------------------------------------------------------------------------- port-forward

# The forwards the notebooks use, at the local ports that are Settings' cluster defaults:
# "name local-port namespace target remote-port". `up --multi-user` records its mode, and then
# the registry is in the profile namespace and KFP is reached through the Istio gateway (log in there).
forwards() {
  if [ "$(cat "$STATE_DIR/mode" 2>/dev/null)" = multi-user ]; then
    echo "kubeflow $KFP_UI_LOCAL_PORT istio-system svc/istio-ingressgateway 80"
    echo "registry $REGISTRY_LOCAL_PORT $PROFILE_NAMESPACE svc/model-registry-service 8080"
  else
    echo "kfp-ui $KFP_UI_LOCAL_PORT $KFP_NS svc/ml-pipeline-ui 80"
    echo "kfp-api $KFP_API_LOCAL_PORT $KFP_NS svc/ml-pipeline 8888"
    echo "registry $REGISTRY_LOCAL_PORT $KFP_NS svc/model-registry-service 8080"
    # The UI's own proxy port (8000): it adds the kubeflow-userid header the UI needs.
    echo "registry-ui $REGISTRY_UI_LOCAL_PORT $KFP_NS deploy/model-registry-ui 8000"
  fi
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

forward_pid() {
  local file="$STATE_DIR/port-forward-$1.pid" pid
  [ -r "$file" ] || return 1
  pid=$(cat "$file")
  # Only a process that is still our port-forward counts; a reused pid is left alone. -ww: the whole
  # command line, however long (ps cuts it at the terminal width or 80 columns otherwise).
  [ -n "$pid" ] && ps -ww -p "$pid" -o args= 2>/dev/null | grep -q "port-forward" || return 1
  printf '%s\n' "$pid"
}

port_forward() {
  local action=${1:-status} name port ns target remote pid rc=0 i
  mkdir -p "$STATE_DIR"
  while read -r name port ns target remote; do
    case $action in
      start)
        if pid=$(forward_pid "$name") && port_open "$port"; then
          say "  $name: already forwarded, 127.0.0.1:$port (pid $pid)"
          continue
        fi
        [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
        if [ "$DRY_RUN" != 1 ] && port_open "$port"; then
          say "  $name: 127.0.0.1:$port is taken by another program. Stop it (\`ss -ltnp 'sport = :$port'\` shows it), then run this again." >&2
          rc=1
          continue
        fi
        printf '+ kubectl --context %s -n %s port-forward --address 127.0.0.1 %s %s:%s &\n' "$CONTEXT" "$ns" "$target" "$port" "$remote"
        [ "$DRY_RUN" = 1 ] && continue
        nohup kubectl --context "$CONTEXT" -n "$ns" port-forward --address 127.0.0.1 "$target" "$port:$remote" \
          >"$STATE_DIR/port-forward-$name.log" 2>&1 &
        echo $! >"$STATE_DIR/port-forward-$name.pid"
        for ((i = 0; i < 50; i++)); do port_open "$port" && break; sleep 0.2; done
        if port_open "$port"; then
          say "  $name: http://127.0.0.1:$port -> $target:$remote (pid $(cat "$STATE_DIR/port-forward-$name.pid"))"
        else
          say "  $name: the forward to $target did not open 127.0.0.1:$port; its log, $STATE_DIR/port-forward-$name.log, says:" >&2
          tail -n 5 "$STATE_DIR/port-forward-$name.log" >&2 || true
          rc=1
        fi
        ;;
      stop)
        if pid=$(forward_pid "$name"); then
          run kill "$pid"
          # Return once it is gone (a zombie counts as gone), so the port is free for the next start.
          for ((i = 0; i < 50 && DRY_RUN == 0; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
            sleep 0.1
          done
        else
          say "  $name: not running"
        fi
        [ "$DRY_RUN" = 1 ] || rm -f "$STATE_DIR/port-forward-$name.pid"
        ;;
      status)
        if pid=$(forward_pid "$name"); then
          if port_open "$port"; then say "  $name: running (pid $pid), 127.0.0.1:$port answers"; else say "  $name: running (pid $pid), 127.0.0.1:$port does NOT answer"; rc=1; fi
        else
          say "  $name: stopped"
          rc=1
        fi
        ;;
      *) die "unknown port-forward action: $action" "usage: setup/cluster.sh port-forward start|stop|status" ;;
    esac
  done < <(forwards)
  return $rc
}

# ---------------------------------------------------------------------------------------------- main

main() {
  while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do
    case $1 in
      --dry-run) DRY_RUN=1 ;;
      -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
      *) die "unknown option: $1" "usage: setup/cluster.sh [--dry-run] up|down|port-forward|preflight" ;;
    esac
    shift
  done
  local command=${1:-}
  [ $# -gt 0 ] && shift
  case $command in
    up) up "$@" ;;
    down) down ;;
    port-forward) port_forward "$@" ;;
    preflight) preflight "$([ "${1:-}" = --multi-user ] && echo 1 || echo 0)" ;;
    *) die "unknown command: '${command}'" "usage: setup/cluster.sh [--dry-run] up [--multi-user] [--with-kserve] [--rebuild] | down | port-forward start|stop|status | preflight" ;;
  esac
}

# Run main unless sourced (the kube test tier sources this file to run single steps against a real API server).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
