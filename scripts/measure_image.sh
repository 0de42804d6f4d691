#!/usr/bin/env bash
# Measure the action's Docker image for real with podman: base image, build, size, cold start,
# file ownership and exit codes. Not run by the test suite (needs root, podman and minutes).
#
#   sudo scripts/measure_image.sh [STAGE...]     stages: base build size start owner exits
#                                                (default: all, in that order)
#
# Environment:
#   WORK=/tmp/quantzero-image      scratch folder (rootfs, build context, workspaces, logs)
#   VARIANT=registry|cpu-local|upstream
#       upstream   the committed Dockerfile as it is (CPU wheels from download.pytorch.org).
#       registry   a copy of the Dockerfile that takes torch/torchvision from the package
#                  registry (PyPI: CUDA builds, several GB) and only reports torch.version.cuda
#                  instead of failing on it. For machines that cannot reach the PyTorch index.
#       cpu-local  a copy that installs a local CPU torch wheel (CPU_WHEEL) and NO torchvision
#                  (dropped from the copied pyproject.toml): `torchvision:<name>` models fail.
#                  The Dockerfile's CPU-only check stays in and must pass.
#     Default: upstream when download.pytorch.org answers, else registry.
#   CPU_WHEEL=/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl  (cpu-local)
#   BASE_TAG=localhost/quantzero-base:bookworm-py311   IMAGE=localhost/quantzero-ci:$VARIANT
#   MIRROR=<the Debian mirror apt uses>   RUNS=3 (timed repetitions; the median is printed)
#   BASE_IMAGE=...   use this base instead of building one with debootstrap (e.g. python:3.11-slim
#                    where a registry is reachable); the base stage is then skipped.
#
# The base built here stands in for python:3.11-slim: Debian bookworm (minbase) with Debian's
# python3 (3.11), pip and python-is-python3, the host's CA certificates, no EXTERNALLY-MANAGED
# marker, apt lists and docs removed. Every figure is printed with the command that made it.
set -euo pipefail
shopt -s inherit_errexit

REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-/tmp/quantzero-image}"
RUNS="${RUNS:-3}"
BASE_TAG="${BASE_TAG:-localhost/quantzero-base:bookworm-py311}"
CPU_WHEEL="${CPU_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}"
if [[ -z "${VARIANT:-}" ]]; then
  if curl -fsS -o /dev/null --max-time 10 https://download.pytorch.org/whl/cpu/ 2>/dev/null; then
    VARIANT=upstream
  else
    VARIANT=registry
  fi
fi
IMAGE="${IMAGE:-localhost/quantzero-ci:$VARIANT}"
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
OWNER_UID=1001
mkdir -p "$WORK"
LOG="$WORK/measure-$VARIANT.log"

say() { printf '%s\n' "$*" | tee -a "$LOG"; }
now() { date +%s.%N; }
median() { sort -n | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.2f", m}'; }
# timed LABEL CMD...: run CMD RUNS times, print each wall time and the median.
timed() {
  local label="$1" t0 t1 times=() rc
  shift
  for _ in $(seq "$RUNS"); do
    t0=$(now); set +e; "$@" >/dev/null 2>&1; rc=$?; set -e; t1=$(now)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}')")
  done
  say "$label: runs ${times[*]} s, median $(printf '%s\n' "${times[@]}" | median) s (last rc $rc)"
  say "  \$ $*"
}

mirror() {
  if [[ -n "${MIRROR:-}" ]]; then echo "$MIRROR"; return; fi
  local uri
  uri=$(grep -h -o -E '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [[ -z "$uri" ]] && uri=$(grep -h -o -E '^deb +\S+' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  echo "${uri:-http://deb.debian.org/debian}"
}

stage_base() {
  if [[ -n "${BASE_IMAGE:-}" ]]; then say "base: using BASE_IMAGE=$BASE_IMAGE"; return; fi
  local root="$WORK/rootfs" m
  m=$(mirror)
  rm -rf "$root"
  say "base: debootstrap bookworm from $m"
  debootstrap --variant=minbase --include=python3,python3-pip,python-is-python3,ca-certificates \
    bookworm "$root" "$m" >"$WORK/debootstrap.log" 2>&1
  cat >"$root/etc/apt/sources.list" <<EOF
deb $m bookworm main
deb $m bookworm-updates main
deb ${m%/debian}/debian-security bookworm-security main
EOF
  # the host's CA certificates (a TLS-intercepting proxy's included), kept by update-ca-certificates
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
  # apt/dpkg settings of Debian's official images (debuerreotype): no .deb or cache files left
  # in the layer of an `apt-get install`, no translations
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*
  podman rmi -f "$BASE_TAG" >/dev/null 2>&1 || true
  tar -C "$root" -c . | podman import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_TAG" >/dev/null
  say "base: $BASE_TAG, $(podman image inspect --format '{{.Size}}' "$BASE_TAG") bytes" \
    "($(podman run --rm "$BASE_TAG" python --version), $(podman run --rm "$BASE_TAG" pip --version | cut -d' ' -f1-2))"
}

# The build context: the files the committed .dockerignore lets through, as the worktree has them.
context() {
  local ctx="$WORK/context-$VARIANT"
  rm -rf "$ctx"; mkdir -p "$ctx"
  (cd "$REPO" && tar -c --exclude=__pycache__ --exclude='*.pyc' \
    constraints.txt pyproject.toml README.md entrypoint.py templates quantzero_ci) | tar -x -C "$ctx"
  cp "$REPO/Dockerfile" "$REPO/.dockerignore" "$ctx/"
  case "$VARIANT" in
    upstream) ;;
    registry | cpu-local)
      python3 - "$ctx" "$VARIANT" "$(basename "$CPU_WHEEL")" <<'PY'
import re, sys
from pathlib import Path
ctx, variant, wheel = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
text = (ctx / "Dockerfile").read_text()
# pip settings of this machine (local indexes/wheels mounted at the same paths), as build args
text = text.replace("FROM ${BASE_IMAGE}\n", "FROM ${BASE_IMAGE}\nARG PIP_EXTRA_INDEX_URL\nARG PIP_FIND_LINKS\n", 1)
torch = re.search(r"RUN pip install --no-cache-dir -c constraints.txt \\\n\s+--index-url https://download.pytorch.org/whl/cpu torch torchvision\n", text)
check = re.search(r"RUN python -c \"import torch, sys.*?\n(?:.*\\\n)*?.*fi\n", text)
assert torch and check, "the Dockerfile's torch or CUDA-check step changed: update measure_image.sh"
if variant == "registry":
    new_torch = "RUN pip install --no-cache-dir -c constraints.txt torch torchvision\n"
else:
    new_torch = f"RUN pip install --no-cache-dir /opt/wheels/{wheel}\n"
    (ctx / "constraints.txt").write_text(f"torch=={wheel.split('-')[1]}\n")
    py = (ctx / "pyproject.toml").read_text()
    (ctx / "pyproject.toml").write_text(py.replace('  "torchvision>=0.19",\n', "", 1))
report = "RUN python -c \"import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)\" && pip list --format=freeze | grep -i -E '^(nvidia-|triton|torch)' || true\n"
text = text.replace(torch.group(0), new_torch)
if variant == "registry":  # a CPU wheel keeps the Dockerfile's own check, which must then pass
    text = text.replace(check.group(0), report)
(ctx / "Dockerfile").write_text(text)
PY
      diff -u "$REPO/Dockerfile" "$ctx/Dockerfile" >"$WORK/Dockerfile-$VARIANT.diff" || true
      ;;
    *) echo "unknown VARIANT=$VARIANT" >&2; exit 2 ;;
  esac
  echo "$ctx"
}

stage_build() {
  local ctx args=() vols=() t0 t1
  ctx=$(context)
  [[ -f "$WORK/Dockerfile-$VARIANT.diff" ]] && say "build: Dockerfile changes for $VARIANT: $WORK/Dockerfile-$VARIANT.diff"
  args+=(--build-arg "BASE_IMAGE=${BASE_IMAGE:-$BASE_TAG}")
  if [[ "$VARIANT" != upstream ]]; then
    local extra="" links=""
    for d in /opt/pypi /opt/pypi-more; do
      [[ -d "$d/simple" ]] && { vols+=(-v "$d:$d:ro"); extra+="file://$d/simple "; }
    done
    [[ -d /opt/wheels ]] && { vols+=(-v /opt/wheels:/opt/wheels:ro); links=/opt/wheels; }
    args+=(--build-arg "PIP_EXTRA_INDEX_URL=${extra% }" --build-arg "PIP_FIND_LINKS=$links")
  fi
  podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
  t0=$(now)
  podman build --no-cache --network host "${ULIMITS[@]}" "${vols[@]}" "${args[@]}" \
    -t "$IMAGE" -f "$ctx/Dockerfile" "$ctx" 2>&1 |
    while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$line"; done >"$WORK/build-$VARIANT.log"
  t1=$(now)
  say "build ($VARIANT, --no-cache, base prebuilt): $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", b-a}') s"
  say "  \$ podman build --no-cache --network host ${ULIMITS[*]} ${vols[*]} ${args[*]} -t $IMAGE -f $ctx/Dockerfile $ctx"
  say "  torch in the image: $(podman run --rm --entrypoint python "$IMAGE" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)')"
}

stage_size() {
  local dir="$WORK/push-$VARIANT" bytes
  say "size: podman image inspect --format '{{.Size}}' $IMAGE: $(podman image inspect --format '{{.Size}}' "$IMAGE") bytes"
  podman images "$IMAGE" | tee -a "$LOG"
  say "layers: podman history --format '{{.Size}} {{.CreatedBy}}' $IMAGE"
  podman history --no-trunc --format '{{.Size}}	{{.CreatedBy}}' "$IMAGE" |
    sed -E 's#^([^\t]*)\t\|[0-9]+ .*/bin/sh -c #\1\tRUN #' | cut -c1-150 | tee -a "$LOG"
  for fmt in gzip zstd; do
    rm -rf "$dir"
    if podman push --compression-format "$fmt" "$IMAGE" "oci:$dir" >/dev/null 2>&1; then
      bytes=$(du -sb --apparent-size "$dir/blobs" | cut -f1)
      say "compressed ($fmt, layers as a registry stores them): $bytes bytes; layers, base first:" \
        "$(python3 -c 'import json, sys; d = sys.argv[1]; blob = lambda x: json.load(open(f"{d}/blobs/sha256/" + x["digest"].split(":")[1]))
m = blob(json.load(open(d + "/index.json"))["manifests"][0]); print(" ".join(str(x["size"]) for x in m["layers"]))' "$dir")"
      say "  \$ podman push --compression-format $fmt $IMAGE oci:$dir && du -sb --apparent-size $dir/blobs"
    else
      say "compressed ($fmt): podman push failed"
    fi
  done
  rm -rf "$dir"
}

# An action workspace: a git repo with the example at examples/digits, owned by OWNER_UID, plus
# the runner's side folders (file_commands, workflow/event.json, home) as the runner mounts them.
workspace() {
  local top="$WORK/runner-$1" ws
  rm -rf "$top"; mkdir -p "$top"/{ws,file_commands,workflow,home}
  ws="$top/ws"
  mkdir -p "$ws/examples/digits"
  (cd "$REPO/examples/digits" && cp .quantzero.yml model.py model.pt calibration.pt evaluation.pt "$ws/examples/digits/")
  git -C "$ws" init -q -b main
  git -C "$ws" -c user.name=ci -c user.email=ci@example.invalid add -A
  git -C "$ws" -c user.name=ci -c user.email=ci@example.invalid commit -q -m example
  local sha; sha=$(git -C "$ws" rev-parse HEAD)
  printf '{"number": 7, "pull_request": {"number": 7, "base": {"sha": "%s", "ref": "main"}, "head": {"sha": "%s", "ref": "feature"}}, "repository": {"full_name": "octo/models"}}\n' \
    "$sha" "$sha" >"$top/workflow/event.json"
  : >"$top/file_commands/set_output"; : >"$top/file_commands/step_summary"
  chmod 755 "$top"; chown -R "$OWNER_UID:$OWNER_UID" "$top"
  echo "$top"
}

# action TOP EVENT(push|pull_request) [-e NAME=VALUE...]: the container as the runner starts it.
action() {
  local top="$1" event="$2"; shift 2
  local envs=()
  while IFS= read -r line; do envs+=(-e "$line"); done < <(
    podman run --rm --entrypoint python "$IMAGE" -c "$(cat <<'PY'
import yaml, sys
action = yaml.safe_load(open("/dev/stdin"))
for name, spec in action["inputs"].items():
    print(f"INPUT_{name.upper()}={spec.get('default', '')}")
PY
)" <"$REPO/action.yml" | grep -v '^INPUT_GITHUB-TOKEN=')
  podman run --rm "${ULIMITS[@]}" --workdir /github/workspace \
    -v "$top/ws:/github/workspace" -v "$top/file_commands:/github/file_commands" \
    -v "$top/workflow:/github/workflow" -v "$top/home:/github/home" \
    "${envs[@]}" -e INPUT_GITHUB-TOKEN=not-used -e INPUT_COMMENT=false \
    -e INPUT_CONFIG=examples/digits/.quantzero.yml -e INPUT_OUTPUT-DIR=quantzero-out \
    -e HOME=/github/home -e CI=true -e GITHUB_ACTIONS=true -e GITHUB_WORKSPACE=/github/workspace \
    -e GITHUB_OUTPUT=/github/file_commands/set_output -e GITHUB_STEP_SUMMARY=/github/file_commands/step_summary \
    -e GITHUB_EVENT_NAME="$event" -e GITHUB_EVENT_PATH=/github/workflow/event.json \
    -e GITHUB_REPOSITORY=octo/models -e GITHUB_WORKFLOW="QuantZero gate" -e GITHUB_API_URL=http://127.0.0.1:9 \
    "$@" "$IMAGE"
}

stage_start() {
  local top; top=$(workspace start)
  timed "container only (podman run --rm --entrypoint true)" podman run --rm --entrypoint true "$IMAGE"
  timed "import quantzero_ci.cli" podman run --rm --entrypoint python "$IMAGE" -c 'import quantzero_ci.cli'
  timed "import quantzero_ci.gate + torch" podman run --rm --entrypoint python "$IMAGE" -c 'import quantzero_ci.gate, torch'
  timed "entrypoint to its first check (no GITHUB_* env: exit 2)" podman run --rm "$IMAGE"
  timed "gate on examples/digits (push event)" action "$top" push
  say "python -X importtime -c 'import quantzero_ci.gate, torch' top 10 (cumulative us):"
  podman run --rm --entrypoint python "$IMAGE" -X importtime -c 'import quantzero_ci.gate, torch' 2>&1 |
    grep '^import time:' | sed 1d | sort -t'|' -k2 -n -r | head -10 | tee -a "$LOG" || true
  say "stage timings of one gate run (summary footer):"
  action "$top" push >"$WORK/gate-start.log" 2>&1 || true
  grep -o '⏱[^<]*' "$top/ws/quantzero-out/comment.md" | cut -c1-300 | tee -a "$LOG" || true
}

stage_owner() {
  local top rc bad
  top=$(workspace owner)
  set +e; action "$top" pull_request >"$WORK/owner-run.log" 2>&1; rc=$?; set -e
  say "ownership: pull_request event, baseline auto (git in the container), run as root: exit $rc"
  grep -E 'Base figure|Base-branch|::warning|::error' "$WORK/owner-run.log" | cut -c1-200 | tee -a "$LOG" || true
  bad=$(find "$top/ws" ! -uid "$OWNER_UID" -printf '%u:%g %p\n' | head -20)
  say "entries under the workspace not owned by uid $OWNER_UID: ${bad:-none}"
  find "$top/ws/quantzero-out" -printf '%U:%G %m %P\n' | sort -k3 | tee -a "$LOG"
  if setpriv --reuid "$OWNER_UID" --regid "$OWNER_UID" --clear-groups rm -rf "$top/ws/quantzero-out" "$top/ws"; then
    say "as uid $OWNER_UID: rm -rf quantzero-out and the whole workspace: ok"
  else
    say "as uid $OWNER_UID: rm -rf FAILED"
  fi
}

stage_exits() {
  local top rc
  top=$(workspace exits)
  for args in "" "-e INPUT_MIN-CARBON-REDUCTION=99" "-e INPUT_CONFIG=missing.yml" "-e INPUT_HARDWARE=no-such-hardware" "-e INPUT_MIN-PCS=abc"; do
    # shellcheck disable=SC2086
    set +e; action "$top" push $args >"$WORK/exit.log" 2>&1; rc=$?; set -e
    say "exit code with ${args:-no override (the example config thresholds)}: $rc  $(grep -o -E '^::error[^:]*::.{0,120}' "$WORK/exit.log" | head -1)"
  done
}

say "== measure_image.sh $(date -u +%FT%TZ) VARIANT=$VARIANT IMAGE=$IMAGE ($(podman --version), $(nproc) cores)"
stages=("$@"); [[ ${#stages[@]} -eq 0 ]] && stages=(base build size start owner exits)
for s in "${stages[@]}"; do "stage_$s"; done
say "log: $LOG"
