import Foundation

/// The dashboard's static assets, served by the controller at `Dashboard.cssPath` (text/css)
/// and `Dashboard.jsPath` (text/javascript). Both are allowed by the CSP's `'self'`.
public enum DashboardAssets {
    /// `/dashboard/assets/app.js`: conveniences only; every page works without it.
    /// - buttons with `data-copy-target="ID"` (hidden until this runs) copy that input's value;
    /// - forms with `data-confirm="question"` ask before submitting.
    public static let javascript = #"""
    (function () {
      "use strict";
      function ready(fn) {
        if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
      }
      ready(function () {
        document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
          var target = document.getElementById(button.getAttribute("data-copy-target"));
          if (!target) { return; }
          button.hidden = false;
          button.addEventListener("click", function () {
            var text = target.value !== undefined ? target.value : target.textContent;
            var done = function () {
              var label = button.textContent;
              button.textContent = "Copied";
              setTimeout(function () { button.textContent = label; }, 2000);
            };
            if (navigator.clipboard && navigator.clipboard.writeText) {
              navigator.clipboard.writeText(text).then(done, function () { target.select(); });
            } else {
              target.select();
            }
          });
        });
        document.querySelectorAll("form[data-confirm]").forEach(function (form) {
          form.addEventListener("submit", function (event) {
            if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
          });
        });
        var secret = document.getElementById("new-key-secret");
        if (secret) { secret.addEventListener("focus", function () { secret.select(); }); }
      });
    })();

    """#

    /// `/dashboard/assets/app.css`: system fonts, light and dark (prefers-color-scheme), responsive.
    public static let css = #"""
    :root {
      --bg: #f6f7f9; --panel: #ffffff; --text: #16181d; --muted: #5b6270; --border: #e2e5ea;
      --accent: #3b5bdb; --accent-text: #ffffff; --accent-soft: #e8edff;
      --ok: #1f7a3f; --ok-soft: #e3f4e8; --warn: #8a5a00; --warn-soft: #fff3d6;
      --error: #b42318; --error-soft: #fde8e6; --info: #0b6e99; --info-soft: #e1f3fb;
      --grid: #e9ebef; --axis: #9aa1ad; --focus: #f59f00;
      --c0: #3b5bdb; --c1: #0ca678; --c2: #f08c00; --c3: #ae3ec9; --c4: #e03131; --c5: #1098ad; --c-other: #9aa1ad;
      --radius: 10px; --shadow: 0 1px 2px rgba(16, 24, 40, .06), 0 1px 3px rgba(16, 24, 40, .08);
      color-scheme: light dark;
    }
    @media (prefers-color-scheme: dark) {
      :root {
        --bg: #0f1115; --panel: #171a21; --text: #e8eaee; --muted: #a0a7b4; --border: #2a2f3a;
        --accent: #7c94ff; --accent-text: #0f1115; --accent-soft: #1f2640;
        --ok: #5ad08a; --ok-soft: #15291d; --warn: #f2c14e; --warn-soft: #2c2412;
        --error: #ff7b72; --error-soft: #33191a; --info: #5bc0eb; --info-soft: #122a35;
        --grid: #252a33; --axis: #6b7280;
        --c0: #7c94ff; --c1: #38d9a9; --c2: #ffa94d; --c3: #da77f2; --c4: #ff6b6b; --c5: #3bc9db; --c-other: #6b7280;
        --shadow: none;
      }
    }
    *, *::before, *::after { box-sizing: border-box; }
    [hidden] { display: none !important; }
    html { -webkit-text-size-adjust: 100%; }
    body {
      margin: 0; background: var(--bg); color: var(--text);
      font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
    }
    a { color: var(--accent); text-underline-offset: 2px; }
    code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: .9em; }
    code { overflow-wrap: anywhere; }
    h1 { font-size: 1.5rem; margin: 0; letter-spacing: -.01em; }
    h2 { font-size: 1.05rem; margin: 0 0 .75rem; }
    h3 { font-size: .95rem; margin: 1.25rem 0 .5rem; }
    :focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 4px; }
    .sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
    .skip { position: absolute; left: -9999px; top: 0; background: var(--panel); padding: .5rem 1rem; z-index: 10; }
    .skip:focus { left: 1rem; }
    .muted { color: var(--muted); }

    /* Chrome */
    .topbar {
      display: flex; align-items: center; justify-content: space-between; gap: 1rem; flex-wrap: wrap;
      padding: .6rem 1.25rem; background: var(--panel); border-bottom: 1px solid var(--border);
      position: sticky; top: 0; z-index: 5;
    }
    .brand { display: inline-flex; align-items: center; gap: .5rem; font-weight: 650; color: var(--text); text-decoration: none; font-size: 1.05rem; }
    .brand .logo { color: var(--accent); }
    .logo-hole { fill: var(--panel); }
    .brand-large { font-size: 1.2rem; margin-bottom: 1.25rem; }
    .who { display: flex; align-items: center; gap: .75rem; flex-wrap: wrap; font-size: .9rem; }
    .token-name { font-weight: 600; }
    .scope { color: var(--muted); background: var(--bg); border: 1px solid var(--border); border-radius: 999px; padding: .05rem .6rem; }
    .shell { display: grid; grid-template-columns: 200px minmax(0, 1fr); min-height: calc(100vh - 54px); }
    .sidenav { border-right: 1px solid var(--border); padding: 1rem .75rem; background: var(--panel); }
    .sidenav ul { list-style: none; margin: 0; padding: 0; }
    .nav-main a, .projects summary { display: block; padding: .45rem .75rem; border-radius: 8px; color: var(--text); text-decoration: none; }
    .nav-main a:hover, .projects a:hover { background: var(--bg); }
    .nav-main a[aria-current="page"], .projects a[aria-current="page"] { background: var(--accent-soft); color: var(--accent); font-weight: 600; }
    .projects { margin-top: 1rem; border-top: 1px solid var(--border); padding-top: .75rem; }
    .projects summary { cursor: pointer; color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .06em; font-weight: 600; }
    .projects .count { font-weight: 400; }
    .projects li { padding: .35rem .75rem; }
    /* "org/name" wraps after the slash, never inside a word; a part too long for the sidebar is
       cut with an ellipsis (the whole name is the title). */
    .project-name { display: block; font-weight: 600; font-size: .9rem; }
    .project-name > span { display: inline-block; max-width: 100%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; vertical-align: bottom; }
    .projects li a { display: inline-block; font-size: .85rem; padding: .1rem .4rem; margin-right: .25rem; border-radius: 6px; text-decoration: none; }
    .nav-empty { color: var(--muted); font-size: .85rem; padding: 0 .75rem; }
    main { padding: 1.5rem 1.75rem 3rem; max-width: 1400px; width: 100%; }
    main:focus { outline: none; }
    .utc-note { color: var(--muted); font-size: .8rem; margin-top: 2rem; }
    .page-head { display: flex; justify-content: space-between; align-items: flex-end; gap: 1rem; flex-wrap: wrap; margin-bottom: 1.25rem; }
    .page-actions { display: flex; gap: .5rem; flex-wrap: wrap; }
    .subtitle { margin: .25rem 0 0; color: var(--muted); }
    .crumbs { margin: 0 0 .5rem; font-size: .9rem; }

    /* Cards */
    .card { background: var(--panel); border: 1px solid var(--border); border-radius: var(--radius); padding: 1.1rem 1.25rem; box-shadow: var(--shadow); margin-bottom: 1.25rem; }
    /* Four columns at most (seven cards, the latency one two wide: two full rows), fewer when narrow. */
    .stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(max(190px, calc((100% - 2.7rem) / 4)), 1fr)); grid-auto-flow: dense; gap: .9rem; margin-bottom: 1.25rem; }
    .stat-wide { grid-column: span 2; }
    .stat-sep { color: var(--muted); font-weight: 400; }
    .stats .card { margin: 0; }
    .stat { display: flex; flex-direction: column; gap: .15rem; }
    .stat-label { color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; font-weight: 600; }
    .stat-value { font-size: 1.6rem; font-weight: 650; font-variant-numeric: tabular-nums; letter-spacing: -.01em; }
    .card-sub { color: var(--muted); font-size: .8rem; font-variant-numeric: tabular-nums; }

    /* Flash, notes, empty states */
    .flash { border-radius: 8px; padding: .7rem 1rem; margin-bottom: 1rem; border: 1px solid; }
    .flash-success { background: var(--ok-soft); color: var(--ok); border-color: var(--ok); }
    .flash-error { background: var(--error-soft); color: var(--error); border-color: var(--error); }
    .note { background: var(--info-soft); color: var(--info); padding: .6rem 1rem; border-radius: 8px; }
    .empty { text-align: center; padding: 2rem 1rem; color: var(--muted); }
    .empty-title { color: var(--text); font-weight: 600; font-size: 1rem; margin: 0 0 .25rem; }
    .empty code { display: inline-block; text-align: left; background: var(--bg); border: 1px solid var(--border); border-radius: 6px; padding: .15rem .4rem; margin: .25rem 0; }

    /* Tables */
    .table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; }
    table.data { border-collapse: collapse; width: 100%; font-size: .9rem; }
    table.data caption { text-align: left; color: var(--muted); font-size: .8rem; padding-bottom: .4rem; }
    table.data th, table.data td { padding: .5rem .55rem; border-bottom: 1px solid var(--border); text-align: left; vertical-align: middle; white-space: nowrap; }
    table.data thead th { font-size: .75rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); font-weight: 600; background: var(--panel); position: sticky; top: 0; }
    table.data tbody tr:hover { background: var(--bg); }
    table.data tbody th { font-weight: 600; }
    .num { text-align: right !important; font-variant-numeric: tabular-nums; }
    td.total { font-weight: 600; }
    table.data td.actions { white-space: normal; }
    table.data td.status-cell { white-space: normal; min-width: 8rem; max-width: 13rem; }
    td.status-cell .badge { margin: .1rem .25rem .1rem 0; white-space: nowrap; }
    .badge { display: inline-block; font-size: .75rem; font-weight: 600; border-radius: 999px; padding: .05rem .5rem; font-variant-numeric: tabular-nums; }
    .badge-ok { background: var(--ok-soft); color: var(--ok); }
    .badge-warn { background: var(--warn-soft); color: var(--warn); }
    .badge-error { background: var(--error-soft); color: var(--error); }
    .badge-info { background: var(--info-soft); color: var(--info); }
    .badge-neutral { background: var(--bg); color: var(--muted); border: 1px solid var(--border); }
    code.err { color: var(--error); }
    .pager { display: flex; justify-content: flex-end; padding-top: .75rem; }

    /* Definition list */
    dl.fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: .1rem 1.5rem; margin: 0; }
    .dl-row { display: flex; justify-content: space-between; gap: 1rem; padding: .45rem 0; border-bottom: 1px solid var(--border); }
    .dl-row dt { color: var(--muted); }
    .dl-row dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }

    /* Forms and buttons */
    .btn {
      display: inline-flex; align-items: center; justify-content: center; gap: .35rem; font: inherit; font-weight: 600; font-size: .9rem;
      padding: .5rem .95rem; border-radius: 8px; border: 1px solid var(--border); background: var(--panel); color: var(--text);
      cursor: pointer; text-decoration: none; line-height: 1.2;
    }
    .btn:hover { border-color: var(--accent); }
    .btn-primary { background: var(--accent); color: var(--accent-text); border-color: var(--accent); }
    .btn-primary:hover { filter: brightness(1.08); }
    .btn-danger { color: var(--error); border-color: var(--error); background: transparent; }
    .btn-danger:hover { background: var(--error-soft); }
    .btn-ghost { background: transparent; }
    .btn-small { padding: .3rem .65rem; font-size: .82rem; }
    .btn-block { width: 100%; }
    form.inline { display: inline; }
    .field { display: flex; flex-direction: column; gap: .25rem; font-size: .85rem; color: var(--muted); font-weight: 600; min-width: 0; }
    .field input, .field select {
      font: inherit; font-weight: 400; font-size: .95rem; color: var(--text); background: var(--panel);
      border: 1px solid var(--border); border-radius: 8px; padding: .45rem .6rem; min-width: 0; width: 100%;
    }
    .field input:focus, .field select:focus { border-color: var(--accent); }
    .hint { color: var(--muted); font-weight: 400; font-size: .8rem; }
    .form-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: .9rem; align-items: end; }
    .form-actions { display: flex; align-items: center; gap: .75rem; flex-wrap: wrap; }
    .inline-form { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; padding: .6rem 0; }
    .inline-form .field { width: 9.5rem; }
    /* Provider keys: name, key (widest), base URL, button, across the card. */
    .provider-form { display: grid; grid-template-columns: 7rem minmax(0, 3fr) minmax(0, 2fr) 7.5rem; gap: .6rem 1rem; align-items: end; padding: .8rem 0; }
    .provider-form .field { width: auto; }
    .provider-form .btn { width: 100%; }
    .form-title { font-weight: 650; min-width: 6rem; align-self: center; }
    .provider-form .form-title { align-self: end; line-height: 2.45rem; overflow-wrap: anywhere; }
    /* Buttons beside inputs are as tall as the inputs. */
    .range-form .btn, .filter-actions .btn, .provider-form .btn, .inline-form .btn, .fallback-form .btn { min-height: 2.45rem; }
    .fallback-form { grid-template-columns: minmax(0, 2fr) minmax(0, 3fr) auto; align-items: start; margin-top: 1rem; }
    .fallback-form .form-actions { padding-top: 1.55rem; }
    .table-wrap + .stack, .empty + .stack { margin-top: .25rem; }
    .stack > * + * { border-top: 1px solid var(--border); }
    .row-actions { display: inline-block; }
    .row-actions summary { list-style: none; }
    .row-actions summary::-webkit-details-marker { display: none; }
    .row-actions[open] { display: block; }
    td.actions .inline-form { display: grid; grid-template-columns: repeat(3, 7.5rem) auto; }
    td.actions .inline-form .field { width: auto; }

    /* Overview toolbar */
    .toolbar { display: flex; flex-wrap: wrap; gap: .9rem 1rem; align-items: end; margin-bottom: 1.25rem; }
    .segmented { display: inline-flex; align-items: center; background: var(--panel); border: 1px solid var(--border); border-radius: 9px; padding: 3px; gap: 2px; flex-wrap: wrap; }
    .seg { padding: .3rem .7rem; border-radius: 6px; color: var(--text); text-decoration: none; font-size: .88rem; font-weight: 500; }
    .seg.on { background: var(--accent); color: var(--accent-text); }
    .seg-label { color: var(--muted); font-size: .8rem; padding: 0 .5rem; }
    .range-form { display: flex; gap: .5rem; align-items: end; flex-wrap: wrap; }
    .range-form .field { width: 10rem; }
    .filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: .9rem; align-items: end; }
    .filter-actions { display: flex; gap: .5rem; }

    /* Charts */
    .charts { display: grid; grid-template-columns: 1fr; gap: 0; }
    .chart-layout { display: grid; grid-template-columns: minmax(0, 11fr) minmax(0, 9fr); gap: 1.25rem; align-items: start; }
    .chart { margin: 0; }
    .chart-svg { width: 100%; height: auto; display: block; }
    .chart-svg .grid { stroke: var(--grid); stroke-width: 1; }
    .chart-svg .axis { stroke: var(--axis); stroke-width: 1; }
    .chart-svg .tick { fill: var(--muted); font-size: 10px; font-variant-numeric: tabular-nums; }
    .chart-svg .axis-title { fill: var(--muted); font-size: 10px; font-weight: 600; }
    .chart-svg .bar:hover, .chart-svg .point:hover { opacity: .75; }
    .chart-svg polyline.line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
    .c0 { fill: var(--c0); stroke: var(--c0); background: var(--c0); }
    .c1 { fill: var(--c1); stroke: var(--c1); background: var(--c1); }
    .c2 { fill: var(--c2); stroke: var(--c2); background: var(--c2); }
    .c3 { fill: var(--c3); stroke: var(--c3); background: var(--c3); }
    .c4 { fill: var(--c4); stroke: var(--c4); background: var(--c4); }
    .c5 { fill: var(--c5); stroke: var(--c5); background: var(--c5); }
    .c-other { fill: var(--c-other); stroke: var(--c-other); background: var(--c-other); }
    .chart-svg rect.bar { stroke: none; }
    .chart-svg polyline.line { fill: none; }
    .legend { list-style: none; padding: 0; margin: .5rem 0 0; display: flex; flex-wrap: wrap; gap: .35rem 1rem; font-size: .85rem; }
    .legend li { display: inline-flex; align-items: center; gap: .4rem; overflow-wrap: anywhere; }
    .swatch { width: .8rem; height: .8rem; border-radius: 3px; display: inline-block; flex: none; }
    .chart-table { max-height: 320px; overflow: auto; border: 1px solid var(--border); border-radius: 8px; }
    .chart-table table.data { font-size: .82rem; }
    .chart-table table.data th, .chart-table table.data td { padding: .4rem .6rem; }
    .chart-table table.data thead th { text-transform: none; letter-spacing: 0; font-size: .8rem; }
    .chart-table table.data tbody tr:last-child > * { border-bottom: 0; }
    /* The time column stays in view when a wide table scrolls sideways. */
    .chart-table table.data tbody th, .chart-table table.data thead th:first-child { position: sticky; left: 0; background: var(--panel); }
    .chart-table table.data thead th:first-child { z-index: 1; }
    .chart-table caption { padding: .5rem .65rem .25rem; }

    /* Budgets */
    .bar-cell { min-width: 140px; width: 30%; }
    .budget-bar { display: block; width: 100%; min-width: 120px; }
    .budget-bar .track { fill: var(--grid); }
    .budget-bar .fill-ok { fill: var(--ok); }
    .budget-bar .fill-warn { fill: var(--warn); }
    .budget-bar .fill-over { fill: var(--error); }

    /* Secret banner */
    .secret-banner { border: 2px solid var(--ok); background: var(--ok-soft); }
    .secret-warning { color: var(--ok); margin: 0 0 .6rem; }
    .secret-row { display: flex; gap: .5rem; flex-wrap: wrap; }
    .secret-row input { flex: 1 1 20rem; min-width: 0; font-size: .95rem; padding: .5rem .6rem; border: 1px solid var(--border); border-radius: 8px; background: var(--panel); color: var(--text); }
    pre.code { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: .75rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; margin: 0; }

    /* Login and error pages */
    body.login { display: grid; min-height: 100vh; place-items: center; padding: 1rem; }
    .login-main { width: 100%; max-width: 420px; padding: 0; }
    .login-card h1 { margin-bottom: 1rem; }
    .login-card form { display: grid; gap: 1rem; }
    .error-card { text-align: center; }
    .error-status { font-size: 3rem; font-weight: 700; color: var(--muted); margin: 0; font-variant-numeric: tabular-nums; }

    /* Narrow screens */
    @media (max-width: 1100px) {
      .chart-layout { grid-template-columns: minmax(0, 1fr); }
    }
    @media (max-width: 760px) {
      .shell { grid-template-columns: minmax(0, 1fr); }
      .toolbar { flex-direction: column; align-items: stretch; }
      .segmented { align-self: flex-start; }
      .sidenav { border-right: 0; border-bottom: 1px solid var(--border); padding: .5rem .75rem; }
      .nav-main { display: flex; gap: .25rem; overflow-x: auto; }
      .nav-main a { white-space: nowrap; }
      .projects { margin-top: .5rem; padding-top: .5rem; }
      main { padding: 1rem .85rem 2rem; }
      .stats { grid-template-columns: repeat(2, minmax(0, 1fr)); }
      .stat-value { font-size: 1.3rem; }
      .inline-form .field, .provider-form .field, .range-form .field { width: 100%; }
      .provider-form, .fallback-form { grid-template-columns: minmax(0, 1fr); }
      .provider-form .form-title { line-height: inherit; }
      .provider-form .btn { width: auto; justify-self: start; }
      .fallback-form .form-actions { padding-top: 0; }
      .card { padding: 1rem .9rem; }
    }
    /* Phones: the chart is drawn at about 0.7 of its viewBox, so its labels are enlarged (to
       about 10 px), every other time label and the axis titles are left out. */
    @media (max-width: 560px) {
      .chart-svg .tick { font-size: 15px; }
      .chart-svg .minor, .chart-svg .axis-title { display: none; }
    }
    @media (prefers-reduced-motion: no-preference) {
      .btn, .seg, .nav-main a { transition: background-color .12s, border-color .12s, color .12s; }
    }

    """#
}
