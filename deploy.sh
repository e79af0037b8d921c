#!/usr/bin/env bash
# One command from checkout to a live, authenticated Cloud Function (2nd gen) serving the
# TFLite model (or a model repository), with an optional Cloud Scheduler warm-up.
# `./deploy.sh --help` lists every setting; `./deploy.sh --dry-run` says what would go live and
# prints the commands without running any. The manual: docs/deploy.md.
set -euo pipefail

readonly PROG="deploy.sh"
# The function source is this script's directory (main.py, serving/, model/, requirements.txt);
# .gcloudignore there keeps tests, tools and virtual environments out of the upload.
SOURCE_DIR="$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly SOURCE_DIR
readonly BUNDLED_MODEL="${SOURCE_DIR}/model/quantized_model.tflite"
readonly READY_ROUTE="/v2/health/ready"
# Stand-in for the deployed URL in --dry-run output (known only after the deploy).
# shellcheck disable=SC2016  # a literal variable reference, expanded by whoever pastes it
readonly URL_VAR='${FUNCTION_URL}'
# Stand-in for the staged source folder of a local --model FILE (made by mktemp when run).
# shellcheck disable=SC2016  # as above
readonly STAGE_VAR='${STAGED_SOURCE}'

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [options]

Deploys this checkout as an HTTP Cloud Function (2nd gen, entry point `predict`), private by
default: callers need roles/run.invoker and an identity token. Each option falls back to the
environment variable shown, then to the default.

Function
  --name NAME                 DEPLOY_FUNCTION_NAME      default: tflite-predict
  --project PROJECT           DEPLOY_PROJECT, then GOOGLE_CLOUD_PROJECT, then
                              `gcloud config get-value project`
  --region REGION             DEPLOY_REGION             default: us-central1
  --runtime RUNTIME           DEPLOY_RUNTIME            default: python313  (python310 or later;
                              the tests run on 3.11, 3.12 and 3.13)
  --service-account EMAIL     DEPLOY_SERVICE_ACCOUNT    default: the project's default
                              compute service account (runtime identity; it needs
                              storage.objects.get on a gs:// model)

Resources and scaling
  --memory SIZE               DEPLOY_MEMORY             default: 1Gi  (k, M, G, Ki, Mi, Gi). Checked
                              first: a size that cannot hold the model (the bundled, local
                              or --upload file; a repository's largest version) plus one
                              JSON request at the body limit is refused with the estimate
                              and a size that fits; --dry-run prints the estimate
                              (python3 -m serving.estimate)
  --cpu N                     DEPLOY_CPU                default: 1    (e.g. 0.5, 1, 2, 2000m)
  --concurrency N             DEPLOY_CONCURRENCY        default: the pool size
                              (requests per instance; above 1 needs --cpu of at least 1)
  --min-instances N           DEPLOY_MIN_INSTANCES      default: 0    (>0: always warm, billed idle)
  --max-instances N           DEPLOY_MAX_INSTANCES      default: 10   (caps cost)
  --timeout DURATION          DEPLOY_TIMEOUT            default: 60s  (1s..3600s; "90", "90s", "5m")
  --cpu-boost                 DEPLOY_CPU_BOOST=1        default: on. Cloud Run's startup CPU boost:
                              more CPU while an instance starts, since a cold start is CPU-bound
                              (set on the function's Cloud Run service after the deploy)
  --no-cpu-boost              DEPLOY_CPU_BOOST=0        turn it off (on the service, too)

Model and serving (passed to the function as environment variables)
  --model FILE|gs://BUCKET/OBJECT
                              DEPLOY_MODEL              default: the bundled
                              model/quantized_model.tflite, shipped in the source upload.
                              A local .tflite FILE is shipped in the upload instead (from a
                              temporary copy of the source; the bundled file is left alone);
                              a gs:// object is downloaded by the function when it starts
  --upload [FILE|gs://BUCKET/OBJECT]
                              DEPLOY_UPLOAD             copy a local model to Cloud Storage
                              first and serve it from there: --model gs://... --upload FILE
                              (FILE default: the bundled model), or --model FILE --upload
                              gs://... (the same copy, named the other way round)
  --model-name NAME           DEPLOY_MODEL_NAME         default: model  (URL path segment)
  --model-version VERSION     DEPLOY_MODEL_VERSION      default: 1
  --repository gs://BUCKET/PREFIX
                              DEPLOY_REPOSITORY         serve a model repository instead of
                              one model (MODEL_REPOSITORY): PREFIX/<name>/<version>/model.tflite
                              and an optional PREFIX/models.json (docs/repository.md). Not
                              with --model, --upload, --model-name or --model-version. The
                              memory check counts its largest version (listed with
                              gcloud storage ls -l; not in a dry run)
  --upload-repository DIR     DEPLOY_UPLOAD_REPOSITORY  check the local repository DIR as the
                              function lists it (python3), then copy it to --repository
                              first (gcloud storage rsync: adds and replaces, deletes nothing)
  --pool-size N               DEPLOY_POOL_SIZE          default: 4  (INTERPRETER_POOL_SIZE: the
                              interpreter engine's pool, for models under 1 MiB; each
                              interpreter packs its own copy of the weights. Models of
                              1 MiB and more run on the compiled engine: one per worker,
                              weights packed once per instance and shared)
  --threads N                 DEPLOY_THREADS            default: 1  (INTERPRETER_THREADS)
  --workers N                 DEPLOY_WORKERS            default: whole vCPUs, at least 1
                              (gunicorn processes; concurrency and pool are split among
                              them. The compiled engine and JSON decoding hold Python's
                              GIL, so parallelism comes from workers: measured fastest at
                              one per vCPU, bench/weights.md)
  --env KEY=VALUE             DEPLOY_ENV="K=V K2=V2"    more function settings, repeatable
                              (e.g. SERVING_BACKEND, MAX_REQUEST_BYTES, GCS_TIMEOUT_SECONDS)

Warm-up (Cloud Scheduler calls GET /v2/health/ready with an OIDC token)
  --warmup "CRON"             DEPLOY_WARMUP             default: off  (e.g. "*/10 * * * *", UTC)
  --warmup-service-account EMAIL
                              DEPLOY_WARMUP_SERVICE_ACCOUNT  required with --warmup; granted
                              roles/run.invoker on the function
  --warmup-job NAME           DEPLOY_WARMUP_JOB         default: <name>-warmup
  --warmup-location REGION    DEPLOY_WARMUP_LOCATION    default: the function's region

Access and mode
  --allow-unauthenticated     make the function public (flag only, no environment fallback:
                              public access must be asked for explicitly)
  --dry-run                   DEPLOY_DRY_RUN=1          run nothing: say what would go live (the
                              model with its size and sha256, the upload, the memory
                              estimate, what bills while idle) and print the commands,
                              quoted for pasting
  -h, --help                  this help

Exit status: 0 on success, 2 when a check fails (the message names the setting), otherwise
the failing gcloud command's status.
EOF
}

die() {
  printf '%s: %s\n' "$PROG" "$1" >&2
  exit 2
}

# One word quoted for the shell: as-is when safe, else in single quotes. The dry-run
# stand-ins (the function URL, the staged source) stay live, double-quoted references.
quote_word() {
  local word="$1" live
  for live in "$URL_VAR" "$STAGE_VAR"; do
    if [[ "$word" == *"$live"* ]]; then
      local before="${word%%"$live"*}" after="${word#*"$live"}"
      [[ -z "$before" ]] || quote_word "$before"
      printf '"%s"' "$live"
      [[ -z "$after" ]] || quote_word "$after"
      return
    fi
  done
  if [[ "$word" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$word"
  else
    local quote="'" escaped="'\\''"
    printf "'%s'" "${word//"$quote"/"$escaped"}"
  fi
}

# A command line, each argument quoted so that the line can be pasted into a shell.
quote_command() {
  local arg sep=""
  for arg in "$@"; do
    printf '%s' "$sep"
    quote_word "$arg"
    sep=" "
  done
  printf '\n'
}

# Runs a gcloud command, or only prints it under --dry-run.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    quote_command "$@"
  else
    printf '+ %s' "$(quote_command "$@")" >&2
    printf '\n' >&2
    "$@"
  fi
}

# --- settings: flag, then environment, then default ------------------------------------------
NAME="${DEPLOY_FUNCTION_NAME:-tflite-predict}"
PROJECT="${DEPLOY_PROJECT:-${GOOGLE_CLOUD_PROJECT:-}}"
REGION="${DEPLOY_REGION:-us-central1}"
RUNTIME="${DEPLOY_RUNTIME:-python313}"
SERVICE_ACCOUNT="${DEPLOY_SERVICE_ACCOUNT:-}"
MEMORY="${DEPLOY_MEMORY:-1Gi}"
CPU="${DEPLOY_CPU:-1}"
CONCURRENCY="${DEPLOY_CONCURRENCY:-}"
MIN_INSTANCES="${DEPLOY_MIN_INSTANCES:-0}"
MAX_INSTANCES="${DEPLOY_MAX_INSTANCES:-10}"
TIMEOUT="${DEPLOY_TIMEOUT:-60s}"
CPU_BOOST="${DEPLOY_CPU_BOOST:-1}"
MODEL="${DEPLOY_MODEL:-}"
UPLOAD="${DEPLOY_UPLOAD:-}"
# Empty until the end of parsing: a repository refuses them, one model defaults them.
MODEL_NAME="${DEPLOY_MODEL_NAME:-}"
MODEL_VERSION="${DEPLOY_MODEL_VERSION:-}"
REPOSITORY="${DEPLOY_REPOSITORY:-}"
UPLOAD_REPOSITORY="${DEPLOY_UPLOAD_REPOSITORY:-}"
POOL_SIZE="${DEPLOY_POOL_SIZE:-4}"
THREADS="${DEPLOY_THREADS:-1}"
WORKERS="${DEPLOY_WORKERS:-}"
EXTRA_ENV=()
if [[ -n "${DEPLOY_ENV:-}" ]]; then
  read -r -a EXTRA_ENV <<<"$DEPLOY_ENV"
fi
WARMUP="${DEPLOY_WARMUP:-}"
WARMUP_SA="${DEPLOY_WARMUP_SERVICE_ACCOUNT:-}"
WARMUP_JOB="${DEPLOY_WARMUP_JOB:-}"
WARMUP_LOCATION="${DEPLOY_WARMUP_LOCATION:-}"
ALLOW_UNAUTHENTICATED=0
DRY_RUN="${DEPLOY_DRY_RUN:-0}"

# The value of option $1 given as $2 (missing values are an error, not the next option).
need_value() {
  [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
  opt="$1"
  case "$opt" in
    --*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
    -h | --help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1; shift; continue ;;
    --allow-unauthenticated) ALLOW_UNAUTHENTICATED=1; shift; continue ;;
    --cpu-boost) CPU_BOOST=1; shift; continue ;;
    --no-cpu-boost) CPU_BOOST=0; shift; continue ;;
    --upload)
      # Optional value: a following argument that is not an option names the file.
      if [[ $# -ge 2 && "$2" != --* ]]; then UPLOAD="$2"; shift 2; else UPLOAD="$BUNDLED_MODEL"; shift; fi
      continue ;;
  esac
  # Options that take a value: the variable it sets (an unknown option is not asked for one).
  case "$opt" in
    --name) var=NAME ;;
    --project) var=PROJECT ;;
    --region) var=REGION ;;
    --runtime) var=RUNTIME ;;
    --service-account) var=SERVICE_ACCOUNT ;;
    --memory) var=MEMORY ;;
    --cpu) var=CPU ;;
    --concurrency) var=CONCURRENCY ;;
    --min-instances) var=MIN_INSTANCES ;;
    --max-instances) var=MAX_INSTANCES ;;
    --timeout) var=TIMEOUT ;;
    --model) var=MODEL ;;
    --model-name) var=MODEL_NAME ;;
    --model-version) var=MODEL_VERSION ;;
    --repository) var=REPOSITORY ;;
    --upload-repository) var=UPLOAD_REPOSITORY ;;
    --pool-size) var=POOL_SIZE ;;
    --threads) var=THREADS ;;
    --workers) var=WORKERS ;;
    --env) var=EXTRA_ENV ;;
    --warmup) var=WARMUP ;;
    --warmup-service-account) var=WARMUP_SA ;;
    --warmup-job) var=WARMUP_JOB ;;
    --warmup-location) var=WARMUP_LOCATION ;;
    *) die "unknown option: $opt (see --help)" ;;
  esac
  need_value "$@"
  if [[ "$var" == EXTRA_ENV ]]; then EXTRA_ENV+=("$2"); else printf -v "$var" '%s' "$2"; fi
  shift 2
done
CONCURRENCY="${CONCURRENCY:-$POOL_SIZE}"
if [[ -n "$REPOSITORY" ]]; then
  # The function refuses MODEL_REPOSITORY beside the settings of its single-model mode.
  [[ -z "$MODEL" ]] ||
    die "--repository and --model are exclusive: --model serves one model, --repository a folder of models; give one of them"
  [[ -z "$UPLOAD" ]] ||
    die "--upload copies the one --model; with --repository, --upload-repository DIR copies a folder of models"
  for named in "--model-name:$MODEL_NAME" "--model-version:$MODEL_VERSION"; do
    [[ -z "${named#*:}" ]] ||
      die "${named%%:*} is for a single model; with --repository, models and versions are named by their folders (<name>/<version>/model.tflite)"
  done
elif [[ -n "$UPLOAD_REPOSITORY" ]]; then
  die "--upload-repository needs --repository gs://BUCKET/PREFIX to copy $UPLOAD_REPOSITORY to"
fi
MODEL_NAME="${MODEL_NAME:-model}"
MODEL_VERSION="${MODEL_VERSION:-1}"
WARMUP_JOB="${WARMUP_JOB:-${NAME}-warmup}"
WARMUP_LOCATION="${WARMUP_LOCATION:-$REGION}"

# --- checks: everything that can be known before touching the cloud --------------------------
# "$1" must be a whole number in [$2, $3]; the message names setting $4.
check_int() {
  local message="$4 must be a whole number from $2 to $3, got '$1'"
  [[ "$1" =~ ^[0-9]+$ ]] || die "$message"
  (( 10#$1 >= $2 && 10#$1 <= $3 )) || die "$message"
}

# CPU in thousandths of a vCPU ("0.5" -> 500, "2" -> 2000, "2000m" -> 2000); "" if malformed.
cpu_millis() {
  if [[ "$1" =~ ^([0-9]+)m$ ]]; then
    printf '%d' "$((10#${BASH_REMATCH[1]}))"
  elif [[ "$1" =~ ^([0-9]*)(\.([0-9]{0,3}))?$ && "$1" != "." && -n "$1" ]]; then
    local whole="${BASH_REMATCH[1]:-0}" frac="${BASH_REMATCH[3]}000"
    printf '%d' "$((10#$whole * 1000 + 10#${frac:0:3}))"
  fi
}

# "$1" as seconds ("60", "60s", "2m"); "" if malformed.
duration_seconds() {
  if [[ "$1" =~ ^([0-9]+)s?$ ]]; then
    printf '%d' "$((10#${BASH_REMATCH[1]}))"
  elif [[ "$1" =~ ^([0-9]+)m$ ]]; then
    printf '%d' "$((10#${BASH_REMATCH[1]} * 60))"
  fi
}

check_email() {
  [[ "$1" =~ ^[^@[:space:],]+@[^@[:space:],]+\.[a-z]+$ ]] ||
    die "$2 must be a service account email (name@project.iam.gserviceaccount.com), got '$1'"
}

# A value set through --set-env-vars: gcloud splits that list on commas.
check_env_value() {
  [[ "$2" != *,* && "$2" != *$'\n'* ]] || die "$1 must not contain a comma or newline, got '$2'"
}

[[ "$NAME" =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
  die "function name must be 1-63 lowercase letters, digits or hyphens, starting with a letter, got '$NAME'"
[[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "region must look like us-central1, got '$REGION'"
[[ "$WARMUP_LOCATION" =~ ^[a-z]+-[a-z]+[0-9]+$ ]] ||
  die "warm-up location must look like us-central1, got '$WARMUP_LOCATION'"
# ai-edge-litert (requirements.txt) ships wheels for CPython 3.10 and later only.
[[ "$RUNTIME" =~ ^python3[1-9][0-9]$ ]] ||
  die "runtime must be python310 or later (ai-edge-litert has no wheels for older Pythons), got '$RUNTIME'"
[[ "$CPU_BOOST" == 0 || "$CPU_BOOST" == 1 ]] ||
  die "DEPLOY_CPU_BOOST must be 1 (on) or 0 (off), got '$CPU_BOOST'"
[[ "$MEMORY" =~ ^[1-9][0-9]*(k|M|G|Ki|Mi|Gi)$ ]] ||
  die "memory must be a size with a unit (k, M, G, Ki, Mi, Gi) such as 512Mi or 1Gi, got '$MEMORY'"
CPU_MILLIS="$(cpu_millis "$CPU")"
(( ${CPU_MILLIS:-0} > 0 )) ||
  die "cpu must be a positive number of vCPUs such as 0.5, 1, 2 or 2000m, got '$CPU'"
# Pool size first: concurrency defaults to it.
check_int "$POOL_SIZE" 1 64 "pool-size"
check_int "$THREADS" 1 64 "threads"
check_int "$CONCURRENCY" 1 1000 "concurrency"
# One gunicorn worker per whole vCPU: a worker decodes request JSON under its own GIL.
WORKERS="${WORKERS:-$(( CPU_MILLIS >= 2000 ? CPU_MILLIS / 1000 : 1 ))}"
check_int "$WORKERS" 1 64 "workers"
check_int "$MIN_INSTANCES" 0 1000 "min-instances"
check_int "$MAX_INSTANCES" 1 1000 "max-instances"
(( 10#$MIN_INSTANCES <= 10#$MAX_INSTANCES )) ||
  die "min-instances ($MIN_INSTANCES) must not exceed max-instances ($MAX_INSTANCES)"
# Cloud Run serves one request at a time on a fractional vCPU.
(( 10#$CONCURRENCY == 1 || CPU_MILLIS >= 1000 )) ||
  die "concurrency $CONCURRENCY needs at least 1 vCPU, got --cpu $CPU: raise --cpu to 1 or set --concurrency 1"
TIMEOUT_SECONDS="$(duration_seconds "$TIMEOUT")"
(( ${TIMEOUT_SECONDS:-0} >= 1 && ${TIMEOUT_SECONDS:-0} <= 3600 )) ||
  die "timeout must be a duration from 1s to 3600s such as 60s or 5m, got '$TIMEOUT'"
# The server's name rule (serving/settings.py NAME_PATTERN; tests/deploy/test_name_rule.py).
for name_of in "model name:$MODEL_NAME" "model version:$MODEL_VERSION"; do
  [[ "${name_of#*:}" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
    die "${name_of%%:*} must be letters, digits, '.', '_' or '-' (it is a URL path segment), got '${name_of#*:}'"
done
[[ -z "$SERVICE_ACCOUNT" ]] || check_email "$SERVICE_ACCOUNT" "service account"

# The option that owns an environment variable deploy.sh sets itself ("" for any other).
owning_option() {
  case "$1" in
    MODEL_PATH) echo --model ;;
    MODEL_REPOSITORY) echo --repository ;;
    MODEL_NAME) echo --model-name ;;
    MODEL_VERSION) echo --model-version ;;
    INTERPRETER_POOL_SIZE) echo --pool-size ;;
    INTERPRETER_THREADS) echo --threads ;;
    THREADS) echo --concurrency ;;
    WORKERS) echo --workers ;;
    GOOGLE_CLOUD_PROJECT) echo --project ;;
  esac
}
# ${a[@]+"${a[@]}"}: an empty array under `set -u` on bash 3.2 (macOS) and 4.x.
for pair in ${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}; do
  [[ "$pair" =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || die "--env needs KEY=VALUE, got '$pair'"
  key="${BASH_REMATCH[1]}" value="${BASH_REMATCH[2]}"
  owner="$(owning_option "$key")"
  [[ -z "$owner" ]] || die "--env $key is set by $owner; use that option"
  # serving/settings.py SINGLE_MODEL_ONLY: the settings of the one model MODEL_PATH serves.
  case "$key" in
    LABELS_PATH | IMAGE_MEAN | IMAGE_STD)
      [[ -z "$REPOSITORY" ]] ||
        die "--env $key is for a single model; with --repository each model carries its own metadata" ;;
  esac
  check_env_value "--env $key" "$value"
done

# A gs:// model object: Cloud Storage's naming rules, as the function itself applies them
# (serving/storage/gcs_uri.py). Buckets: 3-63 characters (up to 222 when dotted, 63 per part) of
# a-z 0-9 - _ . starting and ending with a letter or digit; objects: up to 1024 bytes, no
# control characters, not a folder. $2 is the option named in messages.
check_model_uri() {
  local uri="$1" option="$2" object
  local format="$option must be gs://BUCKET/OBJECT with a lowercase bucket name and an object name, got '$uri'"
  [[ "$uri" =~ ^gs://([^/]+)/([^[:cntrl:]]+)$ ]] || die "$format"
  object="${BASH_REMATCH[2]}"
  check_bucket "${BASH_REMATCH[1]}" "$uri" "$format"
  [[ "$object" != */ ]] || die "$option names a folder, not an object: '$uri' (add the file name)"
  check_object_name "$object" "$uri" "$option"
}

# A gs:// repository: a bucket and an optional prefix (a folder: trailing '/' allowed), as
# the function reads MODEL_REPOSITORY (serving/storage/gcs_uri.py parse_gs_prefix).
check_repository_uri() {
  local uri="$1" prefix
  local format="--repository must be gs://BUCKET/PREFIX with a lowercase bucket name, got '$uri'"
  [[ "$uri" =~ ^[A-Za-z][A-Za-z0-9+.-]*:// ]] ||
    die "--repository must be gs://BUCKET/PREFIX, got '$uri'; to serve a local folder, copy it there: --repository gs://BUCKET/PREFIX --upload-repository $uri"
  [[ "$uri" =~ ^gs://([^/]+)(/([^[:cntrl:]]*))?$ ]] || die "$format"
  prefix="${BASH_REMATCH[3]}"
  check_bucket "${BASH_REMATCH[1]}" "$uri" "$format"
  while [[ "$prefix" == */ ]]; do prefix="${prefix%/}"; done
  [[ -z "$prefix" ]] || check_object_name "$prefix" "$uri" --repository
}

# Bucket names: 3-63 characters (up to 222 when dotted, 63 per part) of a-z 0-9 - _ .
# starting and ending with a letter or digit, and not starting with "goog".
check_bucket() {
  local bucket="$1" uri="$2" format="$3" part parts
  (( ${#bucket} >= 3 )) || die "bucket name shorter than 3 characters in '$uri' (Cloud Storage bucket names are 3-63)"
  (( ${#bucket} <= 222 )) || die "bucket name longer than 222 characters in '$uri'"
  [[ "$bucket" =~ ^[a-z0-9][a-z0-9._-]*[a-z0-9]$ ]] || die "$format"
  [[ "$bucket" == *.* || ${#bucket} -le 63 ]] || die "bucket name longer than 63 characters in '$uri'"
  IFS=. read -r -a parts <<<"$bucket"
  for part in "${parts[@]}"; do
    [[ -n "$part" && ${#part} -le 63 ]] ||
      die "bucket name '$bucket' has an empty or over-long dot-separated part in '$uri'"
  done
  [[ "$bucket" != goog* ]] || die "bucket names cannot start with 'goog': '$uri'"
}

# Object names (and prefixes): up to 1024 bytes, not "." or "..", no comma (--set-env-vars).
check_object_name() {
  local object="$1" uri="$2" option="$3"
  [[ "$object" != "." && "$object" != ".." ]] || die "object name '$object' is not allowed in '$uri'"
  (( $(LC_ALL=C; printf '%s' "${#object}") <= 1024 )) ||
    die "object name longer than 1024 bytes in $option"
  check_env_value "$option" "$uri"
}

# A URI (gs://, s3://, https://...): anything else --model names is a local file.
has_scheme() { [[ "$1" =~ ^[A-Za-z][A-Za-z0-9+.-]*:// ]]; }

# A local model must be a TFLite flatbuffer: the file identifier "TFL3" at bytes 4-8 (what the
# function checks when it loads it). A Keras file or SavedModel is pointed at the converter.
check_tflite_file() {
  local file="$1" option="$2" out convert
  out="${file%/}" && out="${out##*/}" && out="${out%.*}.tflite"
  convert="convert it first: python -m convert $file -o $out (python -m convert --help)"
  if [[ -d "$file" ]]; then
    [[ -f "$file/saved_model.pb" ]] || die "$option $file is a folder, not a .tflite file"
    die "$option $file is a SavedModel, not a TFLite model: $convert"
  fi
  [[ -f "$file" ]] || die "model file not found: $file"
  [[ "$(od -An -tx1 -j4 -N4 "$file" 2>/dev/null | tr -d ' \n')" != 54464c33 ]] || return 0
  case "$file" in
    *.keras | *.h5 | *.hdf5) die "$option $file is a Keras model, not a TFLite model: $convert" ;;
  esac
  die "$option $file is not a TFLite model (expected the identifier 'TFL3' at bytes 4-8 of a .tflite file)"
}

# The model: MODEL is what the function loads from Cloud Storage ("": from its upload),
# MODEL_FILE a local file shipped in the upload, UPLOAD a local file copied to MODEL first.
MODEL_FILE=""
if [[ -n "$MODEL" ]] && ! has_scheme "$MODEL"; then
  MODEL_FILE="$MODEL" MODEL=""
fi
if [[ -n "$UPLOAD" ]] && has_scheme "$UPLOAD"; then
  # --upload gs://BUCKET/OBJECT names the destination; the file is --model's (or the bundled).
  [[ -z "$MODEL" ]] ||
    die "--model $MODEL and --upload $UPLOAD both name the destination: give --upload the local file to copy there"
  check_model_uri "$UPLOAD" --upload
  MODEL="$UPLOAD" UPLOAD="${MODEL_FILE:-$BUNDLED_MODEL}" MODEL_FILE=""
elif [[ -n "$UPLOAD" ]]; then
  [[ -z "$MODEL_FILE" ]] ||
    die "--model $MODEL_FILE is a local file: ship it in the upload (no --upload), or copy it to Cloud Storage with --upload gs://BUCKET/OBJECT"
  [[ -n "$MODEL" ]] ||
    die "--upload needs a destination: --upload gs://BUCKET/OBJECT, or --model gs://BUCKET/OBJECT --upload FILE"
fi
[[ -z "$MODEL" ]] || check_model_uri "$MODEL" --model
[[ -z "$REPOSITORY" ]] || check_repository_uri "$REPOSITORY"
if [[ -n "$REPOSITORY" ]]; then
  : # no single model: nothing bundled to check
elif [[ -n "$UPLOAD" ]]; then
  check_tflite_file "$UPLOAD" --upload
elif [[ -n "$MODEL_FILE" ]]; then
  check_tflite_file "$MODEL_FILE" --model
elif [[ -z "$MODEL" ]]; then
  [[ -f "$BUNDLED_MODEL" ]] ||
    die "model file not found: $BUNDLED_MODEL (build it, or pass --model FILE or gs://BUCKET/OBJECT)"
fi
# A local --model travels as model/NAME in the upload (NAME: its own, when it is a plain
# file name), and the function is told that path (relative to the source root, its cwd).
SHIPPED_PATH=""
if [[ -n "$MODEL_FILE" ]]; then
  SHIPPED_PATH="${MODEL_FILE##*/}"
  [[ "$SHIPPED_PATH" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || SHIPPED_PATH=model.tflite
  SHIPPED_PATH="model/${SHIPPED_PATH}"
fi
for required in main.py requirements.txt .gcloudignore; do
  [[ -f "${SOURCE_DIR}/${required}" ]] || die "function source incomplete: ${SOURCE_DIR}/${required} not found"
done

if [[ -n "$WARMUP" ]]; then
  read -r -a cron_fields <<<"$WARMUP"
  [[ ${#cron_fields[@]} -eq 5 && "$WARMUP" =~ ^[-0-9A-Za-z*/,[:space:]]+$ ]] ||
    die "--warmup must be a 5-field cron schedule such as \"*/10 * * * *\", got '$WARMUP'"
  [[ -n "$WARMUP_SA" ]] ||
    die "--warmup needs --warmup-service-account EMAIL (the identity Cloud Scheduler calls with)"
  check_email "$WARMUP_SA" "warm-up service account"
  [[ "$WARMUP_JOB" =~ ^[A-Za-z0-9_-]{1,500}$ ]] ||
    die "warm-up job name must be letters, digits, '_' or '-', got '$WARMUP_JOB'"
fi

# --- tools and project ------------------------------------------------------------------------
HAVE_GCLOUD=0
if command -v gcloud >/dev/null 2>&1; then HAVE_GCLOUD=1; fi
if [[ "$DRY_RUN" != 1 && "$HAVE_GCLOUD" != 1 ]]; then
  die "gcloud not found on PATH: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
fi
if [[ -z "$PROJECT" && "$HAVE_GCLOUD" == 1 ]]; then
  # Local configuration only (also honours CLOUDSDK_CORE_PROJECT); no API call.
  PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
fi
[[ -n "$PROJECT" ]] ||
  die "no project: pass --project, set DEPLOY_PROJECT, or run 'gcloud config set project PROJECT_ID'"
[[ "$PROJECT" =~ ^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  die "project must be a project ID (6-30 lowercase letters, digits, hyphens), got '$PROJECT'"

# The source is zipped with its file modes and the function may run as another user than
# the one who owns the files: owner-only files (e.g. written via mkstemp) may be unreadable.
upload_files=("${SOURCE_DIR}/main.py" "${SOURCE_DIR}/requirements.txt" "${SOURCE_DIR}/serving")
if [[ -n "$MODEL_FILE" ]]; then
  upload_files+=("$MODEL_FILE")
elif [[ -z "$MODEL" && -z "$REPOSITORY" && -f "$BUNDLED_MODEL" ]]; then
  upload_files+=("$BUNDLED_MODEL")
fi
while IFS= read -r private_file; do
  printf '%s: warning: %s is not readable by others; the deployed function may fail to read it (chmod a+r %q)\n' \
    "$PROG" "$private_file" "$private_file" >&2
done < <(find "${upload_files[@]}" -type f ! -name '*.pyc' ! -perm -004 2>/dev/null || true)

# Concurrency and pool size are per instance; each gunicorn worker gets its share (rounded up).
per_worker() { echo $(( (10#$1 + 10#$WORKERS - 1) / 10#$WORKERS )); }
# A --memory size in bytes.
memory_bytes() {
  local number=${1%%[!0-9]*} unit=${1##*[0-9]}
  case "$unit" in
    k) echo $((number * 1000)) ;;
    M) echo $((number * 1000 ** 2)) ;;
    G) echo $((number * 1000 ** 3)) ;;
    Ki) echo $((number * 1024)) ;;
    Mi) echo $((number * 1024 ** 2)) ;;
    Gi) echo $((number * 1024 ** 3)) ;;
  esac
}

# --- memory: will --memory hold the model plus one request at the body limit? ------------
# serving/estimate.py owns the rule (standard library only); the model is measured where this
# script can see it: the bundled or local file shipped in the upload, the file --upload sends
# (then also downloaded into the instance's in-memory temp dir), or a repository's largest
# version (its folder, or its gs:// listing). A gs:// model not uploaded from here is not.
estimate_args=()
estimate_file=""  # a model file, measured here (its size)
MEMORY_ESTIMATE=""
if [[ -n "$UPLOAD_REPOSITORY" ]]; then
  estimate_args=("--repository=${UPLOAD_REPOSITORY}")
elif [[ -n "$REPOSITORY" ]]; then
  REPOSITORY_PATTERN="${REPOSITORY%/}/*/*/model.tflite"
  if [[ "$DRY_RUN" == 1 ]]; then
    MEMORY_ESTIMATE="not measured in a dry run: deploy.sh lists ${REPOSITORY_PATTERN} (gcloud storage ls -l) and checks its largest version against --memory"
  else
    estimate_args=(--repository-listing=- "--repository-uri=${REPOSITORY}")
  fi
elif [[ -n "$UPLOAD" ]]; then
  estimate_file="$UPLOAD"
  estimate_args=(--downloaded)
elif [[ -n "$MODEL_FILE" || -z "$MODEL" ]]; then
  estimate_file="${MODEL_FILE:-$BUNDLED_MODEL}"
else
  MEMORY_ESTIMATE="not measured: $MODEL is not uploaded from here (pass --upload FILE to check it)"
fi
for pair in ${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}; do
  if [[ "$pair" =~ ^MAX_REQUEST_BYTES=([0-9]+)$ ]]; then
    estimate_args+=("--max-request-bytes=${BASH_REMATCH[1]}")
  fi
done
HAVE_PYTHON=0
if command -v python3 >/dev/null 2>&1; then HAVE_PYTHON=1; fi
[[ -z "$UPLOAD_REPOSITORY" || "$HAVE_PYTHON" == 1 ]] ||
  die "--upload-repository needs python3 to check $UPLOAD_REPOSITORY as the function lists it before copying it"
if [[ -z "$MEMORY_ESTIMATE" && "$HAVE_PYTHON" != 1 ]]; then
  MEMORY_ESTIMATE="not measured: python3 not found"
elif [[ -z "$MEMORY_ESTIMATE" ]]; then
  [[ -z "$estimate_file" ]] ||
    estimate_args+=("--model-bytes=$(wc -c <"$estimate_file" | tr -d '[:space:]')")
  # A gs:// repository: its versions' sizes, as Cloud Storage lists them (no objects: none).
  listing=""
  if [[ -n "${REPOSITORY_PATTERN:-}" ]]; then
    ls_cmd=(gcloud storage ls -l "$REPOSITORY_PATTERN" "--project=${PROJECT}")
    printf '+ %s\n' "$(quote_command "${ls_cmd[@]}")" >&2
    status=0
    listing="$("${ls_cmd[@]}" 2>&1)" || status=$?
    if (( status != 0 )) && [[ "$listing" != *"matched no objects"* ]]; then
      printf '%s\n%s: could not list the repository %s (above)\n' "$listing" "$PROG" "$REPOSITORY" >&2
      exit "$status"
    fi
  fi
  # Exit status 3: it does not fit; 4: the repository cannot be served. Any other failure
  # (an old python3) only skips the check. Lines before the last: entries the function ignores.
  status=0
  MEMORY_ESTIMATE="$(printf '%s' "$listing" | PYTHONPATH="$SOURCE_DIR" python3 -m serving.estimate \
    "--memory=$(memory_bytes "$MEMORY")" "--workers=${WORKERS}" \
    "--pool-per-worker=$(per_worker "$POOL_SIZE")" "${estimate_args[@]}" 2>&1)" || status=$?
  if (( status == 0 || status == 3 || status == 4 )) && [[ "$MEMORY_ESTIMATE" == *$'\n'* ]]; then
    while IFS= read -r line; do
      printf '%s: warning: %s\n' "$PROG" "$line" >&2
    done <<<"${MEMORY_ESTIMATE%$'\n'*}"
  fi
  MEMORY_ESTIMATE="${MEMORY_ESTIMATE##*$'\n'}"
  if (( status == 3 )); then
    die "--memory $MEMORY: $MEMORY_ESTIMATE"
  elif (( status == 4 )); then
    die "$MEMORY_ESTIMATE"  # names the folder or bucket, and what is wrong
  elif (( status != 0 )) && [[ -n "$UPLOAD_REPOSITORY" ]]; then
    # The folder must be checked before it is sent: no check, no upload.
    die "--upload-repository $UPLOAD_REPOSITORY could not be checked (python3 3.10 or later is needed): python3 -m serving.estimate failed: ${MEMORY_ESTIMATE}"
  elif (( status != 0 )); then
    MEMORY_ESTIMATE="not measured: python3 -m serving.estimate failed: ${MEMORY_ESTIMATE}"
    printf '%s: warning: memory estimate %s\n' "$PROG" "$MEMORY_ESTIMATE" >&2
  fi
fi

# --- the commands -----------------------------------------------------------------------------
# One model is named in the routes; a repository's models by their folders.
if [[ -n "$REPOSITORY" ]]; then
  env_vars="MODEL_REPOSITORY=${REPOSITORY}"
else
  env_vars="MODEL_NAME=${MODEL_NAME},MODEL_VERSION=${MODEL_VERSION}"
fi
env_vars+=",INTERPRETER_POOL_SIZE=$(per_worker "$POOL_SIZE"),INTERPRETER_THREADS=${THREADS}"
# functions-framework's gunicorn: WORKERS processes of THREADS threads accept as many
# requests as Cloud Run sends.
env_vars+=",WORKERS=${WORKERS},THREADS=$(per_worker "$CONCURRENCY")"
# The instance's memory in bytes: the function admits requests against a budget derived
# from it (REQUEST_MEMORY_BUDGET_BYTES), so concurrent large bodies wait or get 503
# instead of Cloud Run killing the instance.
env_vars+=",MEMORY_LIMIT_BYTES=$(memory_bytes "$MEMORY")"
# The project of the function's log lines' trace links (logging.googleapis.com/trace);
# without it the function asks the metadata server once.
env_vars+=",GOOGLE_CLOUD_PROJECT=${PROJECT}"
if [[ -n "$MODEL" ]]; then
  env_vars+=",MODEL_PATH=${MODEL}"
elif [[ -n "$SHIPPED_PATH" ]]; then
  env_vars+=",MODEL_PATH=${SHIPPED_PATH}"
fi
for pair in ${EXTRA_ENV[@]+"${EXTRA_ENV[@]}"}; do env_vars+=",${pair}"; done

# The source gcloud uploads: this checkout (.gcloudignore picks the files), or for a local
# --model FILE a temporary copy of its runtime files with FILE in model/ (see stage_source).
FUNCTION_SOURCE="$SOURCE_DIR"
if [[ -n "$MODEL_FILE" ]]; then
  if [[ "$DRY_RUN" == 1 ]]; then
    FUNCTION_SOURCE="$STAGE_VAR"
  else
    FUNCTION_SOURCE="$(mktemp -d "${TMPDIR:-/tmp}/deploy.sh.XXXXXX")"
    remove_staged_source() { rm -rf "$FUNCTION_SOURCE"; }
    trap remove_staged_source EXIT
  fi
fi
deploy_cmd=(gcloud functions deploy "$NAME" --gen2 "--project=${PROJECT}" "--region=${REGION}"
  "--runtime=${RUNTIME}" "--source=${FUNCTION_SOURCE}" --entry-point=predict --trigger-http)
if [[ "$ALLOW_UNAUTHENTICATED" == 1 ]]; then
  deploy_cmd+=(--allow-unauthenticated)
else
  deploy_cmd+=(--no-allow-unauthenticated)
fi
deploy_cmd+=("--memory=${MEMORY}" "--cpu=${CPU}" "--concurrency=${CONCURRENCY}"
  "--min-instances=${MIN_INSTANCES}" "--max-instances=${MAX_INSTANCES}"
  "--timeout=${TIMEOUT_SECONDS}s" "--set-env-vars=${env_vars}")
[[ -z "$SERVICE_ACCOUNT" ]] || deploy_cmd+=("--run-service-account=${SERVICE_ACCOUNT}")

# Cloud Run's startup CPU boost, set on the function's service (named after the function);
# `gcloud functions deploy` has no flag for it.
boost_cmd=(gcloud run services update "$NAME" "--project=${PROJECT}" "--region=${REGION}")
if [[ "$CPU_BOOST" == 1 ]]; then boost_cmd+=(--cpu-boost); else boost_cmd+=(--no-cpu-boost); fi

describe_cmd=(gcloud functions describe "$NAME" "--project=${PROJECT}" "--region=${REGION}"
  "--format=value(serviceConfig.uri)")

# --- what goes live (--dry-run) ---------------------------------------------------------------
file_bytes() { wc -c <"$1" | tr -d '[:space:]'; }

# A file's SHA-256, with whichever tool the machine has.
sha256_of() {
  local sum
  if command -v sha256sum >/dev/null 2>&1; then
    sum="$(sha256sum "$1")"
  elif command -v shasum >/dev/null 2>&1; then
    sum="$(shasum -a 256 "$1")"
  elif [[ "$HAVE_PYTHON" == 1 ]]; then
    sum="$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1")"
  else
    echo "not computed (no sha256sum, shasum or python3)"
    return
  fi
  echo "${sum%% *}"
}

# The files the function's upload holds, one a line: what .gcloudignore keeps of the runtime
# (tests/deploy/test_gcloudignore.py checks this against gcloud's own list), and the model.
upload_listing() {
  find "${SOURCE_DIR}/main.py" "${SOURCE_DIR}/requirements.txt" "${SOURCE_DIR}/serving" \
    \( -name __pycache__ -o -name '.*' \) -prune -o -type f ! -name '*.py[cod]' -print
  if [[ -n "$MODEL_FILE" ]]; then
    printf '%s\n' "$MODEL_FILE"
  elif [[ -z "$MODEL" && -z "$REPOSITORY" ]]; then
    printf '%s\n' "$BUNDLED_MODEL"
  fi
}

# The model line: what the function serves, where it comes from, its size and digest.
describe_model() {
  local file="" where
  if [[ -n "$REPOSITORY" && -n "$UPLOAD_REPOSITORY" ]]; then
    echo "the repository ${REPOSITORY}, copied there first from ${UPLOAD_REPOSITORY} (largest version: see memory)"
    return
  elif [[ -n "$REPOSITORY" ]]; then
    echo "the repository ${REPOSITORY}, listed by the function when it starts (not uploaded from here)"
    return
  elif [[ -n "$UPLOAD" ]]; then
    file="$UPLOAD" where="${MODEL}, copied there first from ${UPLOAD}"
  elif [[ -n "$MODEL" ]]; then
    echo "${MODEL}, downloaded by the function when it starts (not uploaded from here: size and sha256 not checked)"
    return
  elif [[ -n "$MODEL_FILE" ]]; then
    file="$MODEL_FILE" where="${MODEL_FILE}, shipped in the upload as ${SHIPPED_PATH}"
  else
    file="$BUNDLED_MODEL" where="${BUNDLED_MODEL} (the bundled example), shipped in the upload"
  fi
  echo "${where}; $(file_bytes "$file") bytes, sha256 $(sha256_of "$file")"
}

# The upload line: how many files gcloud sends, and their size before compression.
describe_upload() {
  local path count=0 bytes=0 from="$SOURCE_DIR"
  while IFS= read -r path; do
    count=$((count + 1)) bytes=$((bytes + $(file_bytes "$path")))
  done < <(upload_listing)
  [[ -z "$MODEL_FILE" ]] || from="a temporary copy of ${SOURCE_DIR} with the model"
  echo "${count} files, ${bytes} bytes before compression, from ${from}"
}

# The settings billed while no request comes: minimum instances and the warm-up job.
describe_idle_billing() {
  local billed="" instances=instances
  (( 10#$MIN_INSTANCES != 1 )) || instances=instance
  if (( 10#$MIN_INSTANCES > 0 )); then
    billed="--min-instances ${MIN_INSTANCES}: ${MIN_INSTANCES} ${instances} of ${CPU} vCPU and ${MEMORY} kept running at all times, at Cloud Run's idle rate"
  fi
  if [[ -n "$WARMUP" ]]; then
    billed+="${billed:+; }--warmup: Cloud Scheduler job ${WARMUP_JOB} calls ${READY_ROUTE} on \"${WARMUP}\" (UTC), a job fee plus each call's instance time"
  fi
  echo "${billed:-nothing: --min-instances 0 (scales to zero) and no warm-up job}"
}

if [[ "$DRY_RUN" == 1 ]]; then
  {
    printf '# %s --dry-run: nothing was run. What would go live:\n' "$PROG"
    printf '# model: %s\n' "$(describe_model)"
    printf '# upload: %s\n' "$(describe_upload)"
    printf '# memory: %s\n' "$MEMORY_ESTIMATE"
    printf '# billed while idle: %s\n' "$(describe_idle_billing)"
    printf '# Commands, in order:\n'
  } >&2
fi

# The runtime files and the local model, in a folder of their own: .gcloudignore (copied)
# re-includes the bundled model only, so one line re-includes this one. Under --dry-run the
# steps are printed as shell lines, the folder made by mktemp when they are pasted.
stage_source() {
  local stage="$1" include="!/${SHIPPED_PATH}"
  # shellcheck disable=SC2016  # printed for pasting, not expanded here
  [[ "$DRY_RUN" != 1 ]] || printf 'STAGED_SOURCE=$(mktemp -d)\n'
  run cp -R "${SOURCE_DIR}/main.py" "${SOURCE_DIR}/requirements.txt" "${SOURCE_DIR}/serving" \
    "${SOURCE_DIR}/.gcloudignore" "$stage"
  run mkdir "${stage}/model"
  run cp "$MODEL_FILE" "${stage}/${SHIPPED_PATH}"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '%s %s >>%s\n' "printf '%s\\n'" "$(quote_word "$include")" \
      "$(quote_word "${stage}/.gcloudignore")"
  else
    printf '%s\n' "$include" >>"${stage}/.gcloudignore"
  fi
}

if [[ -n "$UPLOAD" ]]; then
  run gcloud storage cp "$UPLOAD" "$MODEL" "--project=${PROJECT}"
fi
[[ -z "$MODEL_FILE" ]] || stage_source "$FUNCTION_SOURCE"
if [[ -n "$UPLOAD_REPOSITORY" ]]; then
  # Adds and replaces objects, deletes none: versions removed locally stay in the bucket.
  run gcloud storage rsync "$UPLOAD_REPOSITORY" "$REPOSITORY" --recursive "--project=${PROJECT}"
fi
run "${deploy_cmd[@]}"
run "${boost_cmd[@]}"

if [[ "$DRY_RUN" == 1 ]]; then
  # shellcheck disable=SC2016  # printed for pasting, not expanded here
  printf 'FUNCTION_URL=$(%s)\n' "$(quote_command "${describe_cmd[@]}")"
  FUNCTION_URL="$URL_VAR"
else
  printf '+ %s\n' "$(quote_command "${describe_cmd[@]}")" >&2
  FUNCTION_URL="$("${describe_cmd[@]}")"
  [[ "$FUNCTION_URL" == https://* ]] ||
    { printf '%s: deployed, but could not read the function URL (got %q)\n' "$PROG" "$FUNCTION_URL" >&2; exit 1; }
fi

if [[ -n "$WARMUP" ]]; then
  run gcloud functions add-invoker-policy-binding "$NAME" "--project=${PROJECT}" \
    "--region=${REGION}" "--member=serviceAccount:${WARMUP_SA}"
  # Cloud Scheduler accepts attempt deadlines from 15 s to 30 min.
  deadline=$(( TIMEOUT_SECONDS < 15 ? 15 : (TIMEOUT_SECONDS > 1800 ? 1800 : TIMEOUT_SECONDS) ))
  job_flags=("--project=${PROJECT}" "--location=${WARMUP_LOCATION}" "--schedule=${WARMUP}"
    --time-zone=Etc/UTC "--uri=${FUNCTION_URL}${READY_ROUTE}" --http-method=GET
    "--oidc-service-account-email=${WARMUP_SA}" "--oidc-token-audience=${FUNCTION_URL}"
    "--attempt-deadline=${deadline}s" "--description=Keeps ${NAME} warm (deploy.sh)")
  job_describe=(gcloud scheduler jobs describe "$WARMUP_JOB" "--project=${PROJECT}"
    "--location=${WARMUP_LOCATION}" "--format=value(name)")
  if [[ "$DRY_RUN" == 1 ]]; then
    printf 'if %s >/dev/null 2>&1; then\n' "$(quote_command "${job_describe[@]}")"
    printf '  %s\nelse\n' "$(quote_command gcloud scheduler jobs update http "$WARMUP_JOB" "${job_flags[@]}")"
    printf '  %s\nfi\n' "$(quote_command gcloud scheduler jobs create http "$WARMUP_JOB" "${job_flags[@]}")"
  else
    printf '+ %s\n' "$(quote_command "${job_describe[@]}")" >&2
    # Describe decides create or update, so running deploy.sh again changes the job in place;
    # any failure other than "not found" (permissions, API disabled) stops here.
    if describe_err="$("${job_describe[@]}" 2>&1 >/dev/null)"; then
      run gcloud scheduler jobs update http "$WARMUP_JOB" "${job_flags[@]}"
    elif [[ "$describe_err" == *NOT_FOUND* || "$describe_err" == *"not found"* ]]; then
      run gcloud scheduler jobs create http "$WARMUP_JOB" "${job_flags[@]}"
    else
      printf '%s\n%s: could not look up scheduler job %s (above)\n' "$describe_err" "$PROG" "$WARMUP_JOB" >&2
      exit 1
    fi
  fi
fi

[[ "$DRY_RUN" != 1 ]] || exit 0

# shellcheck disable=SC2016  # printed for pasting, not expanded here
auth_header='-H "Authorization: Bearer $(gcloud auth print-identity-token)"'
[[ "$ALLOW_UNAUTHENTICATED" == 1 ]] && auth_header=""
example_image='[[[0],[0],[0],[0],[0],[0],[0],[0]],[[0],[0],[0],[0],[0],[0],[0],[0]],[[0],[0],[0],[0],[0],[0],[0],[0]],[[0],[0],[0],[0],[0],[0],[0],[0]],[[0],[0],[0],[0],[0],[0],[0],[0]],[[0],[0],[0],[0],[0],[0],[0],[0]],[[0],[0],[0],[0],[0],[0],[0],[0]],[[0],[0],[0],[0],[0],[0],[0],[0]]]'
if [[ -n "$REPOSITORY" ]]; then
  cat <<EOF

Deployed ${NAME} (${REGION}, project ${PROJECT}), serving the repository ${REPOSITORY}:
  ${FUNCTION_URL}

Ready check (lists the repository; no model loads):
  curl ${auth_header:+$auth_header }${FUNCTION_URL}${READY_ROUTE}

The models and versions served (Triton's repository index):
  curl ${auth_header:+$auth_header }-X POST -d '{}' ${FUNCTION_URL}/v2/repository/index

One model's versions and their states (TF Serving):
  curl ${auth_header:+$auth_header }${FUNCTION_URL}/v1/models/NAME
EOF
  exit 0
fi
cat <<EOF

Deployed ${NAME} (${REGION}, project ${PROJECT}):
  ${FUNCTION_URL}

Ready check (loads the model):
  curl ${auth_header:+$auth_header }${FUNCTION_URL}${READY_ROUTE}

Model metadata (input names and shapes, Open Inference Protocol):
  curl ${auth_header:+$auth_header }${FUNCTION_URL}/v2/models/${MODEL_NAME}
EOF
# The example body fits the bundled digits model only.
if [[ -z "$MODEL_FILE$MODEL" || "$UPLOAD" == "$BUNDLED_MODEL" ]]; then
  cat <<EOF

Predict, TF Serving REST (example input for the bundled 8x8x1 digits model):
  curl ${auth_header:+$auth_header }-H "Content-Type: application/json" \\
    -d '{"instances": [${example_image}]}' \\
    ${FUNCTION_URL}/v1/models/${MODEL_NAME}:predict
EOF
else
  cat <<EOF

Predict, TF Serving REST (instances shaped as the metadata above says):
  curl ${auth_header:+$auth_header }-H "Content-Type: application/json" \\
    -d '{"instances": [...]}' ${FUNCTION_URL}/v1/models/${MODEL_NAME}:predict
EOF
fi
if [[ -n "$WARMUP" ]]; then
  printf '\nWarm-up: scheduler job %s (%s) calls %s%s on "%s" (UTC).\n' \
    "$WARMUP_JOB" "$WARMUP_LOCATION" "$FUNCTION_URL" "$READY_ROUTE" "$WARMUP"
fi
