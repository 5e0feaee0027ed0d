#!/usr/bin/env bash
# One-shot GPU check for a lent H100/H200 (no network; torch, nvcc, cmake, ninja preinstalled):
# build with CUDA, run the CUDA tests, the whole suite and short CUDA benchmarks, and summarise.
#
#   bash bench/gpu_check.sh "$OUT"                         # from the repository root
#   GPU_CHECK_DRY_RUN=1 bash bench/gpu_check.sh /tmp/x     # print the commands, run none of them
#
# Why the logs live in build/gpu_check and not loose in OUT: the device tool brings back at most
# 8 files from OUT. So OUT gets only summary.md, machine.txt, build_info.json, the two JUnit
# files, bench.md (all tables), bench_run.json (the suite's saved run) and logs.tar.gz (every
# log), refreshed after each phase, so that a
# run killed from outside still returns what the finished phases wrote.
# Env: PYTHON (default python3, which holds torch there), GPU_CHECK_BUDGET_S (default 480: the
# whole script stays under 8 minutes; later phases get shorter timeouts, or are skipped).
set -uo pipefail  # no -e: a failing phase is recorded and the next one still runs

[[ $# -eq 1 ]] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
OUT=$(mkdir -p "$1" && cd "$1" && pwd) || exit 2  # absolute: we cd to the repository root next
cd "$(dirname "$0")/.." || exit 2
DRY=${GPU_CHECK_DRY_RUN:-}
PY=${PYTHON:-$(command -v python3 || command -v python)}
WORK=build/gpu_check
START=$(date +%s)
DEADLINE=$(( START + ${GPU_CHECK_BUDGET_S:-480} ))
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1  # a killed run keeps its output; no .pyc in the tree
rm -rf "$WORK" && mkdir -p "$WORK" || exit 2
declare -A RC SECS
ROWS=()

sync_out() {  # copy the results to OUT (8 files at most come back) and rewrite the summary
  local f
  for f in machine.txt build_info.json junit_cuda.xml junit_all.xml bench.md bench_run.json; do
    [[ -f $WORK/$f ]] && cp "$WORK/$f" "$OUT/$f"
  done
  tar -czf "$OUT/logs.tar.gz" -C "$(dirname "$WORK")" "$(basename "$WORK")" 2>/dev/null
  write_summary >"$OUT/summary.md"
}

phase() {  # phase NAME CAP_S LOG ERR CMD...: run CMD under a timeout, record exit code and seconds
  # ERR: a file for stderr; "" merges it into LOG; "tee" merges it and echoes LOG to the console.
  local name=$1 cap=$2 log=$3 err=$4 rc t0 left limit; shift 4
  t0=$(date +%s); left=$(( DEADLINE - t0 )); limit=$(( cap < left ? cap : left ))
  echo "== $name (limit ${limit}s): $*" >&2
  # SIGINT first: pytest then still prints its summary and writes its JUnit file; KILL 20 s later.
  local to=(timeout -s INT -k 20 "$limit")
  if (( limit < 15 )); then rc=skipped
  elif [[ -n $DRY ]]; then printf '+ %s > %s\n' "$(printf '%q ' "$@")" "$log${err:+ ($err)}"; rc=0
  elif [[ $err == tee ]]; then "${to[@]}" "$@" 2>&1 | tee "$log"; rc=$?
  elif [[ -n $err ]]; then "${to[@]}" "$@" >"$log" 2>"$err"; rc=$?
  else "${to[@]}" "$@" >"$log" 2>&1; rc=$?; fi
  [[ $rc == 124 ]] && rc="124 (timed out after ${limit}s)"
  RC[$name]=$rc; SECS[$name]=$(( $(date +%s) - t0 ))
  ROWS+=("| $name | $rc | ${SECS[$name]} | \`$*\` |")
  sync_out
  [[ $rc == 0 ]]
}

record() {  # record [-f] TITLE CMD...: a command's output into machine.txt, tolerating failure;
  # without -f also one line of it (lines joined by "; ") into the summary's machine section
  local full=0 title text; [[ $1 == -f ]] && { full=1; shift; }; title=$1; shift
  if [[ -n $DRY ]]; then text="+ $*"; else text=$("$@" 2>&1) || text+=" (failed: $?)"; fi
  printf '### %s\n%s\n\n' "$title" "$text" >>"$WORK/machine.txt"
  (( full )) || echo "$title: $(paste -sd ';' <<<"$text" | sed 's/;/; /g' | cut -c1-200)" >>"$WORK/machine_short.txt"
}

pytest_line() {  # the final "N passed, M skipped in Xs" line of a pytest log
  grep -E '[0-9]+ (passed|failed|skipped|errors?)|no tests ran' "$1" 2>/dev/null | tail -n 1 | tr -d '='
}

write_summary() {
  local n line k
  echo "# dgm_fast GPU check"; echo
  echo '```'; cat "$WORK/machine_short.txt" 2>/dev/null; echo '```'; echo
  echo "| phase | exit code | seconds | command |"; echo "|---|---|---|---|"; printf '%s\n' "${ROWS[@]}"
  echo; echo "build_info: $(cat "$WORK/build_info.json" 2>/dev/null || echo none)"
  [[ -n ${CUDA_OK:-} ]] && echo "cuda kernels compiled in: $CUDA_OK"
  for n in pytest_cuda pytest_all; do
    [[ -f $WORK/$n.log ]] || continue
    line=$(pytest_line "$WORK/$n.log"); echo; echo "$n: ${line:-no summary line}"
    for k in passed failed skipped error; do
      echo -n "  $k=$(grep -oE "[0-9]+ ${k}" <<<"$line" | grep -oE '^[0-9]+' || echo 0)"; done; echo
  done
  [[ ${RC[build]:-0} != 0 ]] && { echo; echo "build.log, last lines:"; echo '```'
    tail -n 40 "$WORK/build.log" 2>/dev/null; echo '```'; }
  echo; echo "Result: ${RESULT:-incomplete} (after $(( $(date +%s) - START )) s)"
}

# --- 1. the machine ---------------------------------------------------------------------------
record -f "nvidia-smi" nvidia-smi
record "gpu" nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
record "torch" "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name(), 'cc', torch.cuda.get_device_capability())"
record -f "nvcc --version" nvcc --version
record "nvcc" bash -c 'nvcc --version | grep release'
record "cmake / ninja" bash -c 'cmake --version | head -n 1; ninja --version'
record "nproc" nproc
record "date" date -u
record "git commit" git rev-parse HEAD
record "uncommitted edits (they travel too)" bash -c 'git diff --stat HEAD | tail -n 1'

# --- 2. build dependencies: there is no network there, so install only what is missing ---------
deps_missing() {  # import names of the build and test tools that are not importable
  "$PY" -c "import importlib.util as u, shutil
m = [n for n in ('scikit_build_core', 'pytest', 'pytest_benchmark', 'sklearn') if not u.find_spec(n)]
m += [n for n in ('cmake', 'ninja') if not (shutil.which(n) or u.find_spec(n))]
print(' '.join(m))"
}
if [[ -n $DRY ]]; then echo "+ $PY -m pip install --retries 0 --timeout 5 <only those of scikit-build-core \
pytest pytest-benchmark scikit-learn cmake ninja that do not import / are not on PATH>"
else
  missing=$(deps_missing)
  if [[ -n $missing ]]; then  # pip names differ from import names for two of them
    pkgs=$(sed 's/scikit_build_core/scikit-build-core/; s/pytest_benchmark/pytest-benchmark/; s/sklearn/scikit-learn/' <<<"$missing")
    # shellcheck disable=SC2086  # pkgs is a list of names
    phase deps 90 "$WORK/deps.log" "" "$PY" -m pip install --retries 0 --timeout 5 $pkgs
    missing=$(deps_missing)
  fi
  echo "deps: ${missing:+NOT importable: }${missing:-scikit-build-core pytest pytest-benchmark sklearn cmake ninja all present}" \
    >>"$WORK/machine_short.txt"
fi

# --- 3. build, for this GPU's architecture only (Hopper: 90) ------------------------------------
CC_CMD=("$PY" -c "import torch; print(''.join(map(str, torch.cuda.get_device_capability())))")
if [[ -n $DRY ]]; then echo "+ CC=\$($(printf '%q ' "${CC_CMD[@]}"))  # taken as 90 here"; CC=90
else CC=$("${CC_CMD[@]}" 2>/dev/null) || CC=90; fi  # no GPU seen: build for Hopper anyway
phase build 360 "$WORK/build.log" "" env DGM_FAST_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  "$PY" -m pip install -v --no-build-isolation --no-deps \
  --config-settings=cmake.define.CMAKE_CUDA_ARCHITECTURES="$CC" \
  --config-settings=cmake.define.DGM_FAST_CUDA=ON -e .
if [[ ${RC[build]} != 0 ]]; then RESULT="FAIL (build)"; sync_out; cat "$OUT/summary.md"; exit 1; fi

# --- 4. what was built: the CUDA kernels must be compiled in -----------------------------------
phase build_info 60 "$WORK/build_info.json" "$WORK/build_info.err" \
  "$PY" -c "import dgm_fast, json; print(json.dumps(dgm_fast.build_info()))"
CUDA_OK=$( [[ -n $DRY ]] && echo dry || "$PY" -c "import json, sys
print(str(json.load(open(sys.argv[1])).get('cuda')).lower())" "$WORK/build_info.json" 2>/dev/null || echo unknown)

# --- 5. tests: the CUDA ones first (quick, most telling), then everything ----------------------
PYTEST=("$PY" -m pytest -p no:cacheprovider)  # no .pytest_cache in the tree
phase pytest_cuda 120 "$WORK/pytest_cuda.log" tee "${PYTEST[@]}" -q tests/test_cuda.py -rA \
  --junitxml="$WORK/junit_cuda.xml"
# data-parallel on NCCL: one GPU, so one process; the NCCL group, the all-reduce hook, rank 0's writes
phase torchrun_nccl 90 "$WORK/torchrun_nccl.log" "" env TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 \
  "$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m dgm_fast train rbm --device cuda \
  --hidden 16 --epochs 3 --eval-every 3 --no-plots --quiet --out "$WORK/nccl_rbm"
phase pytest_all 300 "$WORK/pytest_all.log" tee "${PYTEST[@]}" -q -rfEs --junitxml="$WORK/junit_all.xml"

# --- 6. benchmarks: the packaged suite on the GPU (quick sizes), then the scripts with a table of
# their own (the MMD's scaling and memory). The saved run (JSON: every case, the machine, the
# ratios) comes back as bench_run.json; `dgm-fast bench --report` turns it into RESULTS.md tables.
phase bench_suite 300 "$WORK/bench_suite.log" "" "$PY" -m dgm_fast bench --device cuda --quick --save gpu-check
run_json=$(ls -t .benchmarks/*/*_gpu-check.json 2>/dev/null | head -n 1)
if [[ -n $run_json ]]; then
  cp "$run_json" "$WORK/bench_run.json"
  { echo "## dgm-fast bench --device cuda --quick (exit ${RC[bench_suite]}, ${SECS[bench_suite]} s)"; echo
    "$PY" -m dgm_fast bench --report "$run_json" 2>&1; echo; } >>"$WORK/bench.md"
else
  { echo "## dgm-fast bench --device cuda --quick: no saved run (exit ${RC[bench_suite]}); its log, last lines:"
    echo '```'; tail -n 40 "$WORK/bench_suite.log" 2>/dev/null; echo '```'; echo; } >>"$WORK/bench.md"
fi
phase bench_mmd 60 "$WORK/bench_mmd.md" "$WORK/bench_mmd.err" "$PY" bench/bench_mmd.py --device cuda \
  --tables scaling --min-run-time 0.2 --scale-sizes 4096,16384 --max-n 16384
{ echo "## bench_mmd scaling (exit ${RC[bench_mmd]}, ${SECS[bench_mmd]} s)"; echo
  cat "$WORK/bench_mmd.md" 2>/dev/null; echo; } >>"$WORK/bench.md"
sync_out

# --- 7. verdict: the build, the CUDA kernels and both test runs must be good -------------------
why=()
[[ $CUDA_OK == true || -n $DRY ]] || why+=("build_info cuda=$CUDA_OK")
[[ ${RC[pytest_cuda]} == 0 ]] || why+=(pytest_cuda)
[[ ${RC[pytest_all]} == 0 ]] || why+=(pytest_all)
RESULT=PASS; (( ${#why[@]} )) && RESULT="FAIL (${why[*]})"
# All-skipped CUDA tests exit 0 too: say so, since then nothing ran on the GPU.
[[ -n $DRY || $(pytest_line "$WORK/pytest_cuda.log") == *passed* ]] || RESULT+="; warning: no CUDA test passed"
sync_out
cat "$OUT/summary.md"
[[ $RESULT == PASS* ]]
