#!/usr/bin/env bash
# Browser check of the dashboard: a real WordCount task hub, served by `durabletask dashboard`, loaded
# by headless Chromium; the rendered DOM must list the run and show the four views with the right
# counts. Screenshots go to $SHOTS (default: a temp directory). Fails (exit 1) on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    echo "error: chromium is not installed (apt-get install -y chromium)" >&2
    exit 1
fi
SCRATCH=${SCRATCH:-.build}
WORK=$(mktemp -d)
SHOTS=${SHOTS:-$WORK}
PORT=${PORT:-18089}
cleanup() { [ -n "${DASH_PID:-}" ] && kill "$DASH_PID" 2>/dev/null || true; rm -rf "$WORK/profile"; }
trap cleanup EXIT

swift build --scratch-path "$SCRATCH" --product WordCount >/dev/null
swift build --scratch-path "$SCRATCH" --product durabletask >/dev/null
BIN=$(swift build --scratch-path "$SCRATCH" --show-bin-path)

"$BIN/WordCount" --db "$WORK/hub.sqlite" --items 1000 | tail -1
ID=$("$BIN/durabletask" list --db "$WORK/hub.sqlite" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"][0]["instanceID"])')
echo "instance: $ID"

DURABLETASK_SQLITE_NO_WAL_WARNING=1 "$BIN/durabletask" dashboard --db "$WORK/hub.sqlite" --port "$PORT" > "$WORK/dash.log" 2>&1 &
DASH_PID=$!
for _ in $(seq 1 50); do grep -q "Dashboard on" "$WORK/dash.log" && break; sleep 0.1; done
grep "Dashboard on" "$WORK/dash.log"

browse() { "$CHROMIUM" --headless --disable-gpu --no-sandbox --user-data-dir="$WORK/profile" "$@" 2>/dev/null; }
browse --dump-dom "http://127.0.0.1:$PORT/" > "$WORK/list.html"
browse --dump-dom "http://127.0.0.1:$PORT/instances/$ID" > "$WORK/instance.html"
browse --screenshot="$SHOTS/dashboard-list.png" --window-size=1400,700 "http://127.0.0.1:$PORT/" >/dev/null
browse --screenshot="$SHOTS/dashboard-instance.png" --window-size=1400,1000 "http://127.0.0.1:$PORT/instances/$ID" >/dev/null

python3 - "$WORK/list.html" "$WORK/instance.html" "$ID" <<'PY'
import re, sys
listing, page, iid = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
failures = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok: failures.append(what)
check(iid in listing and 'class="status s-completed"' in listing, "instance list shows the run as completed")
def attr(section, name):
    m = re.search(r'<section id="%s"[^>]*\b%s="(\d+)"' % (section, name), page)
    return int(m.group(1)) if m else None
check(attr("timeline", "data-tasks") == 1000, "timeline: 1000 tasks (%s)" % attr("timeline", "data-tasks"))
lanes = len(re.findall(r'<div class="lane"', page))
check(0 < lanes <= 60 and lanes == attr("timeline", "data-lanes"), "timeline: %d lanes drawn" % lanes)
events = attr("history", "data-events")
check(events is not None and events >= 2003, "history: %s events" % events)
rows = len(re.findall(r'<tr class="event"', page))
check(rows == min(events or 0, 200), "history: %d rows on the first page" % rows)
check(attr("sequence", "data-phases") == 4 and "Fan-out: scheduled 1,000 × CountWords" in page, "sequence: start, fan-out of 1,000, fan-in, end")
check(attr("io", "data-tasks") == 1000 and len(re.findall(r'<tr class="task"', page)) == 200, "input/output: 1000 tasks, 200 rows on the first page")
check('"1000/1000 counted"' in page, "custom status shown")
sys.exit(1 if failures else 0)
PY
echo "screenshots: $SHOTS/dashboard-list.png $SHOTS/dashboard-instance.png"
