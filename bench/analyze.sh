#!/usr/bin/env bash
# How long `tsbuild analyze` takes on a ~1 GB image, and how much memory. A report, not a test:
# it builds the image in a scratch store (busybox base; COPY of ~1 GB in 32 KiB files, about as
# many files as a 1 GB distribution image has, then a RUN that deletes some and chmods as many, so
# there is waste to find, and a second image one RUN further for diff), then times analyze in
# text, JSON and HTML form, diff and du, each with its peak RSS (GNU time). Run as root after
# `npm run build`:
#
#   bash bench/analyze.sh                              # ~1 GB in 32,768 files
#   BENCH_MB=400 BENCH_FILE_KB=4 bash bench/analyze.sh  # 102,400 files (issue 20's 100,000)
#   BENCH_MB=200 bash bench/analyze.sh                 # smaller
#   BENCH_KEEP=1 bash bench/analyze.sh                 # keep the scratch directory to look at
set -euo pipefail

MB=${BENCH_MB:-1024}
FILE_KB=${BENCH_FILE_KB:-32}
REPO=$(cd "$(dirname "$0")/.." && pwd)
CLI="node $REPO/dist/bin/tsbuild.js"
WORK=$(mktemp -d /var/tmp/tsbuild-bench-analyze.XXXXXX)
ROOT=$WORK/root
CTX=$WORK/ctx
cleanup() {
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

seconds() { # run "$@" quietly; print its wall time in seconds and its peak RSS in MB
  local start end rss
  start=$(date +%s.%N)
  rss=$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1) || true
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) s, $((rss / 1024)) MB"
}

echo "== preparing a ${MB} MB context in $CTX"
mkdir -p "$CTX/data"
head -c "$((MB * 1024 * 1024))" /dev/urandom | split -b "${FILE_KB}K" -a 4 - "$CTX/data/f."
FILES=$(find "$CTX/data" -type f | wc -l)
# split names the files f.aaaa, f.aaab, ...: f.a<X>* is 676 files for each letter X.
cat >"$CTX/Dockerfile" <<'EOF'
FROM busybox
COPY data/ /data/
RUN rm -f /data/f.a[a-c]* && chmod o-r /data/f.a[d-f]*
EOF

$CLI --root "$ROOT" bootstrap busybox >/dev/null
echo "== building (COPY of $FILES files)"
BUILD=$(seconds $CLI --root "$ROOT" build -q -t bench "$CTX")
printf 'FROM bench\nRUN rm -f /data/f.ag* && chmod o-r /data/f.ah*\n' | $CLI --root "$ROOT" build -q -t bench2 -f - "$CTX" >/dev/null

TEXT=$(seconds $CLI --root "$ROOT" analyze bench)
JSON=$(seconds $CLI --root "$ROOT" analyze --json bench)
HTML=$(seconds $CLI --root "$ROOT" analyze --html "$WORK/report.html" bench)
DIFF=$(seconds $CLI --root "$ROOT" diff bench bench2)
DU=$(seconds $CLI --root "$ROOT" du)
# A baseline: what starting the CLI and opening the store costs.
BASE=$(seconds $CLI --root "$ROOT" images)

$CLI --root "$ROOT" analyze bench | sed -n '1,5p'
cat <<EOF

== results (wall clock; peak RSS)
image size          $($CLI --root "$ROOT" images | awk '$1 == "bench" { print $NF }') in $FILES files
build               $BUILD
analyze             $TEXT
analyze --json      $JSON
analyze --html      $HTML ($(du -k "$WORK/report.html" | cut -f1) kB page)
diff                $DIFF
du                  $DU
images (baseline)   $BASE
EOF
