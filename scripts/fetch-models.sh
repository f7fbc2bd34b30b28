#!/usr/bin/env bash
# Fetch real-world .tflite models for litelens tests.
#
# Installs pinned MediaPipe "solution" npm packages into a cache outside the
# git tree and collects every .tflite they contain -- both the loose files and
# the ones embedded in Emscripten "*_packed_assets.data" bundles (located via
# the file table in the matching *_packed_assets_loader.js) -- into
#   ${LITELENS_CACHE:-$HOME/.cache/litelens}/models/
# with stable names (the file's basename; if two different files share a
# basename, the later one gets a "<package>_" prefix).
#
# Idempotent: when the manifest written by a previous complete run matches the
# pinned versions and every listed model is present with the recorded size,
# npm is not run at all.
#
# Usage: scripts/fetch-models.sh [--force]
# Prints the model directory on stdout (logs go to stderr), so
#   MODELS=$(scripts/fetch-models.sh)
# works.
set -euo pipefail

CACHE="${LITELENS_CACHE:-$HOME/.cache/litelens}"
NPM_DIR="$CACHE/npm"
MODEL_DIR="$CACHE/models"
MANIFEST="$MODEL_DIR/.manifest.tsv"

# Exact pins (found with `npm view @mediapipe/<name> version`).
PACKAGES=(
  "@mediapipe/face_detection@0.4.1657300184"
  "@mediapipe/hands@0.4.1675469240"
  "@mediapipe/pose@0.5.1675469404"
  "@mediapipe/holistic@0.5.1675471629"
  "@mediapipe/objectron@0.4.1675468480"
  "@mediapipe/selfie_segmentation@0.1.1675465747"
)
PINS="# pins: ${PACKAGES[*]}"

log() { echo "fetch-models: $*" >&2; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) log "unknown argument: $arg"; exit 2 ;;
  esac
done

file_size() { stat -c %s "$1" 2>/dev/null || wc -c <"$1"; }

# Fast path: everything from a previous complete run is still there.
up_to_date() {
  [[ -f "$MANIFEST" ]] || return 1
  [[ "$(head -n1 "$MANIFEST")" == "$PINS" ]] || return 1
  local n=0 name sha size src
  while IFS=$'\t' read -r name sha size src; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    [[ -f "$MODEL_DIR/$name" ]] || return 1
    [[ "$(file_size "$MODEL_DIR/$name")" == "$size" ]] || return 1
    n=$((n + 1))
  done <"$MANIFEST"
  [[ $n -gt 0 ]]
}

if [[ $force -eq 0 ]] && up_to_date; then
  log "models already present ($(grep -vc '^#' "$MANIFEST") files)"
  echo "$MODEL_DIR"
  exit 0
fi

command -v npm >/dev/null || { log "npm not found (apt-get install nodejs npm)"; exit 1; }
command -v node >/dev/null || { log "node not found"; exit 1; }

mkdir -p "$NPM_DIR" "$MODEL_DIR"
if [[ ! -f "$NPM_DIR/package.json" ]]; then
  printf '{\n  "name": "litelens-model-cache",\n  "private": true\n}\n' >"$NPM_DIR/package.json"
fi
log "npm install into $NPM_DIR"
(cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error --save-exact "${PACKAGES[@]}" >&2)

# Collect models. Node is guaranteed to be present with npm, so the extraction
# logic (JSON file tables, byte ranges, hashing) lives in a small node program.
NODE_MODULES="$NPM_DIR/node_modules" MODEL_DIR="$MODEL_DIR" MANIFEST="$MANIFEST" \
PINS="$PINS" PKG_LIST="${PACKAGES[*]}" node - <<'EOF'
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const nm = process.env.NODE_MODULES;
const outDir = process.env.MODEL_DIR;
const pkgs = process.env.PKG_LIST.split(' ').map(s => s.replace(/@[^@]*$/, ''));

const taken = new Map();   // name -> sha256
const rows = [];           // [name, sha, size, source]
const sha256 = b => crypto.createHash('sha256').update(b).digest('hex');

function writeAtomic(dest, data) {
  const tmp = dest + '.tmp-' + process.pid;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, dest);
}

function add(pkg, base, data, source) {
  if (data.length < 8 || data.slice(4, 8).toString('latin1') !== 'TFL3') {
    console.error(`fetch-models: warning: ${source} has no TFL3 identifier`);
  }
  const sha = sha256(data);
  let name = base;
  if (taken.has(name) && taken.get(name) !== sha) {
    name = pkg.replace('@mediapipe/', '') + '_' + base;
  }
  if (taken.has(name)) {
    if (taken.get(name) === sha) return;  // identical duplicate (e.g. pose models in pose+holistic)
    throw new Error(`name clash for ${name} from ${source}`);
  }
  taken.set(name, sha);
  const dest = path.join(outDir, name);
  let same = false;
  try {
    const st = fs.statSync(dest);
    same = st.size === data.length && sha256(fs.readFileSync(dest)) === sha;
  } catch (e) { /* missing */ }
  if (!same) writeAtomic(dest, data);
  rows.push([name, sha, data.length, source]);
}

for (const pkg of pkgs) {
  const dir = path.join(nm, pkg);
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'))).version;
  const entries = fs.readdirSync(dir).sort();
  // 1) loose .tflite files
  for (const f of entries) {
    if (f.endsWith('.tflite')) {
      add(pkg, f, fs.readFileSync(path.join(dir, f)), `${pkg}@${version}/${f}`);
    }
  }
  // 2) .tflite files inside Emscripten packed asset bundles
  for (const f of entries) {
    const m = f.match(/^(.*)_packed_assets_loader\.js$/);
    if (!m) continue;
    const js = fs.readFileSync(path.join(dir, f), 'utf8');
    const jm = js.match(/loadPackage\((\{"files":[\s\S]*?\})\)/);
    if (!jm) throw new Error(`cannot find file table in ${pkg}/${f}`);
    const table = JSON.parse(jm[1]);
    const dataName = m[1] + '_packed_assets.data';
    const blob = fs.readFileSync(path.join(dir, dataName));
    if (table.remote_package_size !== undefined && table.remote_package_size !== blob.length) {
      throw new Error(`${pkg}/${dataName}: size ${blob.length} != ${table.remote_package_size}`);
    }
    const files = table.files.slice().sort((a, b) => a.filename < b.filename ? -1 : 1);
    for (const e of files) {
      if (!e.filename.endsWith('.tflite')) continue;
      add(pkg, path.basename(e.filename), blob.subarray(e.start, e.end),
          `${pkg}@${version}/${dataName}:${e.filename}[${e.start}:${e.end}]`);
    }
  }
}

rows.sort((a, b) => a[0] < b[0] ? -1 : 1);
const text = process.env.PINS + '\n# name\tsha256\tsize\tsource\n' +
  rows.map(r => r.join('\t')).join('\n') + '\n';
writeAtomic(process.env.MANIFEST, text);
console.error(`fetch-models: ${rows.length} models in ${outDir}`);
EOF

echo "$MODEL_DIR"
