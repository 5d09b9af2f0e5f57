#!/bin/sh
# Build (or resume) every stage that is not finished, one thread, niced, each stage a fresh process
# (so an edit to build.py's plan applies to the stages that have not started yet). Background use:
#   setsid nohup sh training/session.sh >> training/runs/build.log 2>&1 < /dev/null &
# Stop it with `kill -- -PGID` (the group setsid made); running it again resumes from the checkpoints.
# Order: the children first (upcycled from the plan's `children_from` parent), the continued parent last.
# Models are exported to training/work/candidates/ (OUT=...), not over the shipped ones: a model goes to
# public/models/ only after its card (npx tsx training/cards.ts --models training/work/candidates)
# measured it better; see README "State".
set -e
cd "$(dirname "$0")/.."
mkdir -p training/runs
OUT=${OUT:-training/work/candidates}
PY="nice -n 10 /usr/bin/python3 training/build.py --threads ${THREADS:-1} --out $OUT"
for child in ${CHILDREN:-moe-top2 fine-grained ds-moe fine-grained-naive fine-grained-scratch}; do
  $PY --only "$child"
done
$PY --until parent
$PY  # expected logits + samples (every stage above is skipped as done)
echo "session: all stages done $(date +%H:%M:%S)"
