/// The stylesheet and the one small script, served from `/static/` so the page's security policy can
/// forbid inline scripts.
enum Assets {
    static let css = """
        :root { --bg:#f5f6f8; --card:#fff; --ink:#1d2330; --muted:#6b7385; --line:#e3e6ec; --accent:#3d5afe;
          --ok:#1f9d55; --bad:#d93b3b; --run:#2f80ed; --wait:#b7c4d6; --pend:#e0a21a; --sus:#8e5bd6; }
        * { box-sizing:border-box; }
        body { margin:0; font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; background:var(--bg); color:var(--ink); }
        a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
        .top { display:flex; align-items:center; justify-content:space-between; padding:10px 24px; background:#141a2a; color:#fff; }
        .brand { color:#fff; font-weight:700; font-size:16px; letter-spacing:.2px; } .brand span { color:#9aa6c4; font-weight:400; }
        .mode { font-size:12px; padding:2px 10px; border-radius:10px; background:#2a3350; color:#c9d2ea; }
        .mode-actions { background:#7a2f2f; color:#ffe1e1; }
        main { max-width:1320px; margin:0 auto; padding:18px 24px 60px; }
        h1 { font-size:22px; margin:0; } h2 { font-size:16px; margin:0 0 12px; } h3 { font-size:13px; margin:0 0 6px; color:var(--muted); font-weight:600; }
        .page-head { display:flex; align-items:center; gap:12px; margin:6px 0 14px; }
        .crumbs { color:var(--muted); font-size:13px; }
        .card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 18px; margin-bottom:16px; box-shadow:0 1px 2px rgba(20,26,42,.04); }
        .muted { color:var(--muted); font-weight:400; } .bad { color:var(--bad); font-weight:600; }
        .mono, code, pre { font-family:ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size:12.5px; }
        pre { white-space:pre-wrap; word-break:break-word; margin:4px 0; background:#f7f8fb; padding:8px 10px; border-radius:6px; border:1px solid var(--line); max-height:320px; overflow:auto; }
        code { word-break:break-all; }
        .live { color:var(--run); font-size:12px; }
        .status { display:inline-block; padding:2px 10px; border-radius:12px; font-size:12px; font-weight:600; color:#fff; background:var(--muted); text-transform:capitalize; }
        .s-completed { background:var(--ok); } .s-failed { background:var(--bad); } .s-running { background:var(--run); }
        .s-pending { background:var(--pend); } .s-suspended { background:var(--sus); } .s-terminated { background:#5d6675; } .s-continuedAsNew { background:#3aa3a3; }
        table { width:100%; border-collapse:collapse; }
        th { text-align:left; font-size:12px; color:var(--muted); font-weight:600; border-bottom:1px solid var(--line); padding:6px 8px; }
        td { border-bottom:1px solid #f0f1f5; padding:6px 8px; vertical-align:top; }
        tr:hover td { background:#fafbff; }
        td.time { white-space:nowrap; color:#3b4356; font-variant-numeric:tabular-nums; } td.num { white-space:nowrap; font-variant-numeric:tabular-nums; color:#3b4356; }
        td.detail { word-break:break-word; font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
        td.empty, p.empty { color:var(--muted); text-align:center; padding:24px; }
        .filters { display:flex; flex-wrap:wrap; gap:12px; align-items:flex-end; }
        .filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:3px; }
        input, select { font:inherit; padding:5px 8px; border:1px solid #cfd4de; border-radius:6px; background:#fff; min-width:120px; }
        button, .button { font:inherit; padding:5px 14px; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; display:inline-block; }
        .button { background:#fff; color:var(--accent); margin-right:6px; } .reset { align-self:center; }
        button.danger { background:var(--bad); border-color:var(--bad); }
        .pager { display:flex; gap:6px; align-items:center; margin:10px 0; }
        .facts { display:grid; grid-template-columns:repeat(auto-fill, minmax(260px, 1fr)); gap:10px 24px; margin:0; }
        .fact dt { font-size:11.5px; color:var(--muted); text-transform:uppercase; letter-spacing:.4px; } .fact dd { margin:2px 0 0; word-break:break-all; }
        .actions { margin-top:14px; display:flex; gap:8px; align-items:center; flex-wrap:wrap; border-top:1px solid var(--line); padding-top:12px; }
        .raise { display:inline-flex; gap:6px; } .action-result { color:var(--muted); }
        .failure { border-left:4px solid var(--bad); } .etype { font-weight:700; color:var(--bad); }
        .inner { margin:8px 0 0 18px; padding-left:12px; border-left:2px solid #f1c4c4; } .inner-label { font-size:11px; color:var(--muted); text-transform:uppercase; }
        nav.views { position:sticky; top:0; z-index:5; display:flex; gap:6px; background:var(--bg); padding:8px 0; margin-bottom:8px; }
        nav.views a { background:#fff; border:1px solid var(--line); border-radius:18px; padding:5px 14px; color:var(--ink); font-weight:600; }
        nav.views a span { color:var(--muted); font-weight:400; margin-left:4px; }
        .legend { font-size:12px; color:var(--muted); margin-bottom:10px; display:flex; gap:6px; align-items:center; }
        .key { display:inline-block; width:14px; height:10px; border-radius:2px; margin-left:10px; }
        .key.queued { background:var(--wait); } .key.completed { background:var(--ok); } .key.failed { background:var(--bad); } .key.pending { background:var(--run); }
        .lane, .axis, .concurrency { display:flex; align-items:center; min-height:22px; }
        .lane:hover { background:#f6f8ff; }
        .lane-label { flex:0 0 260px; display:flex; justify-content:space-between; gap:8px; padding-right:12px; font-size:12px; overflow:hidden; }
        .lane-name { white-space:nowrap; overflow:hidden; text-overflow:ellipsis; font-family:ui-monospace, Menlo, Consolas, monospace; }
        .lane-detail { color:var(--muted); white-space:nowrap; }
        .track { position:relative; flex:1; height:14px; background:repeating-linear-gradient(90deg, #f3f4f8 0, #f3f4f8 calc(25% - 1px), #e6e8ef calc(25% - 1px), #e6e8ef 25%); border-radius:3px; }
        .bar { position:absolute; top:2px; height:10px; border-radius:3px; }
        .bar.queued { background:var(--wait); opacity:.7; } .bar.run.completed { background:var(--ok); } .bar.run.failed { background:var(--bad); } .bar.run.pending { background:var(--run); }
        .ticks { position:relative; flex:1; height:18px; font-size:11px; color:var(--muted); }
        .ticks span { position:absolute; transform:translateX(-50%); white-space:nowrap; } .ticks span:first-child { transform:none; } .ticks span:last-child { transform:translateX(-100%); }
        .concurrency { align-items:flex-end; margin-bottom:6px; }
        .chart { flex:1; height:60px; display:flex; align-items:flex-end; gap:1px; background:#f7f8fb; border-radius:4px; padding:2px; }
        .chart .col { flex:1; background:linear-gradient(180deg, #5c7cfa, #3d5afe); border-radius:1px 1px 0 0; min-height:0; }
        .kind { font-size:11.5px; padding:1px 7px; border-radius:4px; background:#eef0f5; white-space:nowrap; font-family:ui-monospace, Menlo, Consolas, monospace; }
        .k-taskScheduled, .k-subOrchestrationCreated, .k-timerCreated { background:#e7edff; color:#2941b8; }
        .k-taskCompleted, .k-subOrchestrationCompleted, .k-timerFired { background:#e3f5ea; color:#17703d; }
        .k-taskFailed, .k-subOrchestrationFailed { background:#fde8e8; color:#a82727; }
        .k-executionStarted, .k-executionCompleted { background:#fff3d6; color:#8a5a00; font-weight:600; }
        .k-orchestratorStarted, .k-orchestratorCompleted { color:#7b8394; }
        .state { font-size:12px; font-weight:600; } .t-completed { color:var(--ok); } .t-failed { color:var(--bad); } .t-pending { color:var(--run); }
        .phases { list-style:none; margin:0; padding:0 0 0 8px; border-left:3px solid var(--line); }
        .phase { display:flex; gap:14px; padding:8px 0 8px 14px; position:relative; }
        .phase::before { content:""; position:absolute; left:-9px; top:14px; width:12px; height:12px; border-radius:50%; background:#fff; border:3px solid var(--accent); }
        .p-fanOut::before { border-color:var(--run); } .p-fanIn::before { border-color:var(--ok); } .p-end::before { border-color:#8a5a00; } .p-start::before { border-color:#8a5a00; }
        .phase-time { flex:0 0 90px; color:var(--muted); font-variant-numeric:tabular-nums; font-size:12px; padding-top:2px; }
        .phase-title { font-weight:600; }
        .arrow { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; margin:3px 0; padding:3px 8px; border-radius:5px; display:inline-block; }
        .arrow.out { background:#e7edff; color:#2941b8; } .arrow.in { background:#e3f5ea; color:#17703d; } .arrow.end { background:#fff3d6; color:#8a5a00; }
        .io-top { display:grid; grid-template-columns:1fr 1fr; gap:16px; margin-bottom:12px; }
        details summary { cursor:pointer; } .error-card h1 { color:var(--bad); }
        """

    static let script = """
        // Management buttons: POST JSON to the API (a cross-site form cannot), then reload.
        document.addEventListener('click', async (event) => {
          const button = event.target.closest('button[data-action]');
          if (!button) return;
          const box = button.closest('.actions');
          const id = box.dataset.instance;
          const action = button.dataset.action;
          const result = box.querySelector('.action-result');
          const path = '/api/instances/' + encodeURIComponent(id);
          let request;
          if (action === 'purge') {
            if (!confirm('Purge instance ' + id + '? Its history is deleted.')) return;
            request = fetch(path, { method: 'DELETE', headers: { 'Content-Type': 'application/json' } });
          } else if (action === 'raise') {
            let data = null;
            const text = document.getElementById('raise-data').value.trim();
            if (text) { try { data = JSON.parse(text); } catch (e) { result.textContent = 'data is not JSON'; return; } }
            request = fetch(path + '/raise', { method: 'POST', headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ name: document.getElementById('raise-name').value, data }) });
          } else {
            if (action === 'terminate' && !confirm('Terminate instance ' + id + '?')) return;
            request = fetch(path + '/' + action, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
          }
          const response = await request;
          const body = await response.json().catch(() => ({}));
          if (response.ok) { location.href = action === 'purge' ? '/' : location.pathname; }
          else { result.textContent = (body.error && body.error.message) || ('HTTP ' + response.status); }
        });
        """
}
