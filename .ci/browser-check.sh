#!/usr/bin/env bash
# Browser check of the dashboard: a real WordCount task hub, served by `durabletask dashboard`, loaded
# by headless Chromium; the rendered DOM must list the run and show the four views with the right
# counts. Screenshots go to $SHOTS (default: a temp directory). Fails (exit 1) on any mismatch.
# Installs chromium and python3 when missing (apt-get, as root or through sudo). The dashboard listens
# on a port the system picks (set PORT to choose one), so concurrent runs do not collide.
set -euo pipefail
cd "$(dirname "$0")/.."

# A fresh Debian has neither chromium nor (in a minimal image) python3, and a root container has no sudo.
install_packages() {
    local sudo
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "error: $* missing, and neither root nor sudo is available to install them (apt-get install -y $*)" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $* missing, and there is no apt-get to install them with" >&2
        exit 1
    fi
    echo "==> installing $*"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "$@"
}
missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then install_packages "${missing[@]}"; fi
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ] || ! command -v python3 >/dev/null 2>&1; then
    echo "error: chromium and python3 are needed (apt-get install -y chromium python3)" >&2
    exit 1
fi
SCRATCH=${SCRATCH:-.build}
WORK=$(mktemp -d)
SHOTS=${SHOTS:-$WORK}
cleanup() { [ -n "${DASH_PID:-}" ] && kill "$DASH_PID" 2>/dev/null || true; rm -rf "$WORK/profile"; }
trap cleanup EXIT

# Quiet when the builds succeed; swift build reports errors on standard output, so show it when one fails.
for product in WordCount durabletask; do
    if ! swift build --scratch-path "$SCRATCH" --product "$product" > "$WORK/build.log" 2>&1; then
        echo "error: swift build --product $product failed:" >&2
        cat "$WORK/build.log" >&2
        exit 1
    fi
done
BIN=$(swift build --scratch-path "$SCRATCH" --show-bin-path)

"$BIN/WordCount" --db "$WORK/hub.sqlite" --items 1000 | tail -1
ID=$("$BIN/durabletask" list --db "$WORK/hub.sqlite" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"][0]["instanceID"])')
echo "instance: $ID"

# Port 0 by default: the dashboard binds a free port and prints it ("Dashboard on http://127.0.0.1:P/").
DURABLETASK_SQLITE_NO_WAL_WARNING=1 "$BIN/durabletask" dashboard --db "$WORK/hub.sqlite" --port "${PORT:-0}" > "$WORK/dash.log" 2>&1 &
DASH_PID=$!
PORT=""
for _ in $(seq 1 100); do
    PORT=$(sed -n 's|^Dashboard on http://127\.0\.0\.1:\([0-9][0-9]*\)/.*|\1|p' "$WORK/dash.log" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$DASH_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    echo "error: the dashboard did not start:" >&2
    cat "$WORK/dash.log" >&2
    exit 1
fi
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
