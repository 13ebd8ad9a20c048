// datakit graph viewer: lists the datakit plugins, draws the selected
// plugin's graph from GET /plugins/{p}/graph as a layered SVG (columns by
// depth, the response phase right of the access phase) and overlays a debug
// trace (spec/datakit.md §10). Plain DOM, no framework, nothing from another
// origin. Text from the API only ever goes through textContent.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "datakit-admin-token";
  // The page is <admin root>/graph/: API paths are relative to the root, so
  // the viewer also works behind a path prefix.
  const API_ROOT = new URL("../", document.baseURI);
  const STATUSES = ["NODE_COMPLETE", "NODE_ERROR", "NODE_CANCELED", "NODE_SKIPPED", "NODE_PENDING"];
  const END_ACTIONS = new Set(["complete", "fail", "cancel"]);

  // Geometry of the drawing, in SVG user units.
  const G = {
    margin: 16, bandPad: 14, bandTop: 34, nodeH: 62, dummyH: 12, minNodeW: 130, maxNodeW: 240, minGap: 48,
    nodeGap: 22, dummyGap: 8, phaseGap: 28, labelLine: 14,
    minScale: 0.85, // a wider graph scrolls rather than shrink below this
  };

  const $ = (id) => document.getElementById(id);
  const state = { plugin: null, graph: null, plugins: [], generation: 0 };

  // --- Admin API -----------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function adminToken() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  // api sends a same-origin request with the admin token, if any, and
  // returns the decoded JSON body; an error status throws an APIError with
  // the API's message (and a schema violation's messages).
  async function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    const token = adminToken();
    if (token) headers.set("Kong-Admin-Token", token);
    const resp = await fetch(new URL(path, API_ROOT), {
      ...init, headers, credentials: "same-origin", cache: "no-store",
    });
    const text = await resp.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    }
    if (!resp.ok) {
      let msg = body && typeof body.message === "string" ? body.message : `HTTP ${resp.status}`;
      const details = body && body.fields && body.fields.config;
      if (Array.isArray(details)) msg += ": " + details.join("; ");
      throw new APIError(resp.status, msg);
    }
    return body;
  }

  function showMessage(text, kind) {
    const m = $("message");
    m.textContent = text || "";
    m.className = kind || "";
    m.hidden = !text;
  }

  function showError(err) {
    if (err instanceof APIError && err.status === 401) {
      showMessage("The Admin API needs a token: enter it above.", "error");
      $("token").focus();
      return;
    }
    showMessage(err.message || String(err), "error");
  }

  // --- Plugin list ---------------------------------------------------------

  function pluginLabel(p) {
    return p.instance_name || p.id;
  }

  function pluginScope(p) {
    const parts = [];
    for (const k of ["service", "route", "consumer"]) {
      if (p[k] && p[k].id) parts.push(`${k} ${String(p[k].id).slice(0, 8)}`);
    }
    if (parts.length === 0) parts.push("global");
    if (p.enabled === false) parts.push("disabled");
    return parts.join(" · ");
  }

  async function loadPlugins() {
    const found = [];
    let path = "plugins?size=1000";
    // next links are absolute paths; keep them relative to the API root.
    for (let page = 0; path && page < 100; page++) {
      const body = await api(path);
      for (const p of (body && body.data) || []) if (p.name === "datakit") found.push(p);
      path = body && body.next ? String(body.next).replace(/^\/+/, "") : null;
    }
    found.sort((a, b) => pluginLabel(a).localeCompare(pluginLabel(b)));
    state.plugins = found;
    const list = $("plugin-list");
    list.replaceChildren();
    for (const p of found) {
      const a = document.createElement("a");
      a.href = "#plugin=" + encodeURIComponent(p.id);
      a.dataset.plugin = p.id;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = pluginLabel(p);
      const scope = document.createElement("span");
      scope.className = "scope";
      scope.textContent = pluginScope(p);
      a.append(name, scope);
      const li = document.createElement("li");
      li.append(a);
      list.append(li);
    }
    $("plugin-empty").hidden = found.length > 0;
    markSelected();
  }

  function selectedRef() {
    return new URLSearchParams(location.hash.slice(1)).get("plugin");
  }

  // markSelected highlights the plugin named by the hash (id or
  // instance_name).
  function markSelected() {
    const ref = selectedRef();
    for (const a of $("plugin-list").querySelectorAll("a")) {
      const p = state.plugins.find((x) => x.id === a.dataset.plugin);
      const on = p && (p.id === ref || p.instance_name === ref);
      if (on) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }

  async function route() {
    let ref = selectedRef();
    if (!ref && state.plugins.length > 0) {
      ref = state.plugins[0].id;
      history.replaceState(null, "", "#plugin=" + encodeURIComponent(ref));
    }
    markSelected();
    if (ref) await loadGraph(ref);
  }

  // --- Graph ---------------------------------------------------------------

  async function loadGraph(ref) {
    const gen = ++state.generation;
    const p = state.plugins.find((x) => x.id === ref || x.instance_name === ref);
    $("graph-title").textContent = p ? pluginLabel(p) : ref;
    let graph;
    try {
      graph = await api(`plugins/${encodeURIComponent(ref)}/graph`);
    } catch (err) {
      if (gen === state.generation) forgetGraph();
      throw err;
    }
    if (gen !== state.generation) return; // a later selection won
    state.plugin = ref;
    state.graph = graph;
    draw(graph);
    $("graph").dataset.plugin = ref;
    $("legend").hidden = false;
    $("run-input").value = JSON.stringify(defaultRun(graph), null, 2);
    $("run-button").disabled = false;
    clearTrace();
    showMessage("");
  }

  // forgetGraph removes the drawing of a graph that could not be loaded.
  function forgetGraph() {
    const root = $("graph");
    root.replaceChildren();
    for (const k of ["plugin", "state", "trace", "width", "height"]) delete root.dataset[k];
    root.removeAttribute("width");
    root.removeAttribute("height");
    state.plugin = null;
    state.graph = null;
    $("legend").hidden = true;
    $("run-button").disabled = true;
    clearTrace();
  }

  // defaultRun is a graph/run body answering every call node with an empty
  // 200 JSON response.
  function defaultRun(graph) {
    const mocks = {};
    for (const n of graph.nodes) {
      if (n.type === "call") mocks[n.name] = { status: 200, headers: { "Content-Type": "application/json" }, body: {} };
    }
    return { request: { method: "GET", path: "/" }, mocks, upstream: { status: 200 } };
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function typeLine(n) {
    return n.implicit ? `${n.type} (implicit)` : n.type;
  }

  function edgeLines(group) {
    if (group.kind !== "data") return [group.kind];
    return group.edges.map((e) => `${e.source_field} → ${e.target_field}`);
  }

  // measurer measures text as the stylesheet renders it, in hidden copies
  // of the node and label elements.
  function measurer(root) {
    const box = svg("g", { visibility: "hidden" });
    const node = svg("g", { class: "node" });
    const name = svg("text", { class: "name" });
    const type = svg("text", { class: "type" });
    const label = svg("g", { class: "label" });
    const line = svg("text");
    node.append(name, type);
    label.append(line);
    box.append(node, label);
    root.append(box);
    const width = (el) => (s) => {
      el.textContent = s;
      return el.getComputedTextLength();
    };
    return { name: width(name), type: width(type), label: width(line), done: () => box.remove() };
  }

  // fitName shortens a name with an ellipsis to fit width.
  function fitName(s, width, measure) {
    if (measure.name(s) <= width) return s;
    let n = s.length;
    while (n > 1 && measure.name(s.slice(0, n) + "…") > width) n--;
    return s.slice(0, n) + "…";
  }

  // columnsOf assigns each node a column: its longest path from a source
  // within its phase; response columns start right of the access ones.
  function columnsOf(nodes, edges) {
    const col = new Map();
    const phaseDepth = (members) => {
      const inPhase = new Set(members.map((n) => n.name));
      const out = new Map(members.map((n) => [n.name, []]));
      const indeg = new Map(members.map((n) => [n.name, 0]));
      for (const e of edges) {
        if (e.source === e.target || !inPhase.has(e.source) || !inPhase.has(e.target)) continue;
        out.get(e.source).push(e.target);
        indeg.set(e.target, indeg.get(e.target) + 1);
      }
      const depth = new Map(members.map((n) => [n.name, 0]));
      const queue = members.filter((n) => indeg.get(n.name) === 0).map((n) => n.name);
      while (queue.length > 0) {
        const n = queue.shift();
        for (const t of out.get(n)) {
          depth.set(t, Math.max(depth.get(t), depth.get(n) + 1));
          indeg.set(t, indeg.get(t) - 1);
          if (indeg.get(t) === 0) queue.push(t);
        }
      }
      return depth; // nodes on a cycle (a compiled plan has none) stay at 0
    };
    const access = nodes.filter((n) => n.phase !== "response");
    const response = nodes.filter((n) => n.phase === "response");
    let accessCols = 0;
    for (const [name, d] of phaseDepth(access)) {
      col.set(name, d);
      accessCols = Math.max(accessCols, d + 1);
    }
    for (const [name, d] of phaseDepth(response)) col.set(name, accessCols + d);
    return { col, accessCols };
  }

  // layout places nodes in columns, routes every edge group (edges with the
  // same ends and kind) through one slot per column it crosses, and orders
  // each column by the barycenter of its neighbours to limit crossings.
  function layout(graph, measure) {
    const names = new Set(graph.nodes.map((n) => n.name));
    const edges = graph.edges.filter((e) => names.has(e.source) && names.has(e.target));
    const { col, accessCols } = columnsOf(graph.nodes, edges);

    const groups = new Map();
    for (const e of edges) {
      const kind = e.kind || "data";
      const key = `${e.source}\u0000${e.target}\u0000${kind}`;
      if (!groups.has(key)) groups.set(key, { source: e.source, target: e.target, kind, edges: [] });
      groups.get(key).edges.push(e);
    }

    const ncols = Math.max(0, ...col.values()) + 1;
    const columns = Array.from({ length: ncols }, () => []);
    const items = new Map(); // node name -> layout item
    for (const n of graph.nodes) {
      const it = { node: n, col: col.get(n.name), h: G.nodeH, preds: [], succs: [] };
      items.set(n.name, it);
      columns[it.col].push(it);
    }
    const link = (a, b) => {
      a.succs.push(b);
      b.preds.push(a);
    };
    for (const g of groups.values()) {
      const s = items.get(g.source);
      const t = items.get(g.target);
      g.path = [s];
      if (t.col > s.col) {
        let prev = s;
        for (let c = s.col + 1; c < t.col; c++) {
          const d = { dummy: true, col: c, h: G.dummyH, preds: [], succs: [] };
          columns[c].push(d);
          link(prev, d);
          g.path.push(d);
          prev = d;
        }
        link(prev, t);
      }
      g.path.push(t);
    }

    const sortBy = (column, side) => {
      const pos = (it) => column.indexOf(it);
      const key = new Map(column.map((it) => {
        const ns = it[side];
        if (ns.length === 0) return [it, pos(it)];
        return [it, ns.reduce((sum, n) => sum + n.order, 0) / ns.length];
      }));
      column.sort((a, b) => key.get(a) - key.get(b) || pos(a) - pos(b));
      column.forEach((it, i) => { it.order = i; });
    };
    columns.forEach((c) => c.forEach((it, i) => { it.order = i; }));
    for (let pass = 0; pass < 4; pass++) {
      for (let c = 1; c < ncols; c++) sortBy(columns[c], "preds");
      for (let c = ncols - 2; c >= 0; c--) sortBy(columns[c], "succs");
    }

    // Vertical placement: stack each column, then pull items towards their
    // neighbours' centres while keeping order and spacing.
    const gap = (it) => (it.dummy ? G.dummyGap : G.nodeGap);
    const place = (column, desired) => {
      let bottom = -Infinity;
      let drift = 0;
      for (const it of column) {
        const want = desired(it) - it.h / 2;
        it.y = Math.max(want, bottom + gap(it));
        bottom = it.y + it.h;
        drift += it.y - want;
      }
      const shift = column.length ? drift / column.length : 0;
      for (const it of column) it.y -= shift;
    };
    const centre = (it) => it.y + it.h / 2;
    const mean = (ns, it) => (ns.length ? ns.reduce((s, n) => s + centre(n), 0) / ns.length : centre(it));
    for (const column of columns) {
      let y = 0;
      for (const it of column) {
        it.y = y;
        y += it.h + gap(it);
      }
    }
    for (let pass = 0; pass < 3; pass++) {
      for (let c = 1; c < ncols; c++) place(columns[c], (it) => mean(it.preds, it));
      for (let c = ncols - 2; c >= 0; c--) place(columns[c], (it) => mean(it.succs, it));
    }
    const all = columns.flat();
    const top = Math.min(0, ...all.map((it) => it.y));
    for (const it of all) it.y += G.bandTop + G.bandPad - top;

    // Horizontal placement: a column is as wide as its widest node text
    // (up to a limit), the gap before it as its widest edge label.
    const colW = Array(ncols).fill(G.minNodeW);
    for (const n of graph.nodes) {
      const text = Math.max(measure.name(n.name), measure.type(typeLine(n)));
      const c = col.get(n.name);
      colW[c] = Math.max(colW[c], Math.ceil(Math.min(G.maxNodeW, text + 30)));
    }
    const gapW = Array(ncols).fill(G.minGap);
    for (const g of groups.values()) {
      g.lines = edgeLines(g);
      g.labelW = Math.max(...g.lines.map(measure.label)) + 14;
      const c = col.get(g.target);
      if (c > col.get(g.source)) gapW[c] = Math.max(gapW[c], Math.ceil(g.labelW + 30));
    }
    const colX = [G.margin + G.bandPad];
    for (let c = 1; c < ncols; c++) {
      colX.push(colX[c - 1] + colW[c - 1] + gapW[c] + (c === accessCols ? G.phaseGap : 0));
    }
    for (const it of all) {
      it.x = colX[it.col];
      it.w = colW[it.col];
    }

    return { groups: [...groups.values()], items, columns, accessCols, ncols, colX, colW };
  }

  function curve(x0, y0, x1, y1) {
    const dx = Math.max(30, (x1 - x0) / 2);
    return `C ${x0 + dx} ${y0} ${x1 - dx} ${y1} ${x1} ${y1}`;
  }

  function draw(graph) {
    const root = $("graph");
    root.replaceChildren();
    delete root.dataset.trace;
    const measure = measurer(root);
    const L = layout(graph, measure);

    const defs = svg("defs");
    const marker = svg("marker", {
      id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
    });
    marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
    defs.append(marker);
    root.append(defs);

    const all = L.columns.flat();
    const bottom = Math.max(G.bandTop + G.nodeH, ...all.map((it) => it.y + it.h)) + G.bandPad;

    // Phase bands.
    const bands = svg("g", { class: "bands" });
    const band = (phase, from, to) => {
      if (to < from) return;
      const x = L.colX[from] - G.bandPad;
      const w = L.colX[to] + L.colW[to] + G.bandPad - x;
      const g = svg("g", { class: `band band-${phase}`, "data-phase": phase });
      g.append(svg("rect", { x, y: G.margin, width: w, height: bottom - G.margin, rx: 10 }));
      g.append(svg("text", { x: x + 12, y: G.margin + 20 }, phase));
      bands.append(g);
    };
    band("access", 0, L.accessCols - 1);
    band("response", L.accessCols, L.ncols - 1);
    root.append(bands);

    // Edges, then nodes, then labels on top.
    const edgeLayer = svg("g", { class: "edges" });
    const labels = [];
    for (const g of L.groups) {
      const [s, ...rest] = g.path;
      const t = g.path[g.path.length - 1];
      const sy = s.y + s.h / 2;
      let d = `M ${s.x + s.w} ${sy}`;
      let px = s.x + s.w;
      let py = sy;
      for (const it of rest.slice(0, -1)) {
        const cy = it.y + it.h / 2;
        d += ` ${curve(px, py, it.x, cy)} L ${it.x + it.w} ${cy}`;
        px = it.x + it.w;
        py = cy;
      }
      const ty = t.y + t.h / 2;
      d += ` ${curve(px, py, t.x, ty)}`;
      const eg = svg("g", { class: `edge edge-${g.kind}`, "data-source": g.source, "data-target": g.target, "data-kind": g.kind });
      eg.append(svg("title", {}, g.edges.map((e) => (g.kind === "data"
        ? `${e.source}.${e.source_field} → ${e.target}.${e.target_field}`
        : `${e.source} → ${e.target} (${g.kind})`)).join("\n")));
      eg.append(svg("path", { d, "marker-end": "url(#arrow)" }));
      edgeLayer.append(eg);
      // The label sits in the gap before the target, centred on the curve.
      labels.push({ group: g, x: (px + t.x) / 2, y: (py + ty) / 2, gapOf: t.col, lines: g.lines, w: g.labelW });
    }
    root.append(edgeLayer);

    const nodeLayer = svg("g", { class: "nodes" });
    for (const n of graph.nodes) {
      const it = L.items.get(n.name);
      const cls = ["node", `type-${n.type.replace(/[^a-z0-9_-]/gi, "_")}`];
      if (n.implicit) cls.push("implicit");
      const g = svg("g", { class: cls.join(" "), "data-node": n.name, transform: `translate(${it.x} ${it.y})` });
      const title = svg("title", {}, `${n.name} (${n.type}, ${n.phase})`);
      g.append(title);
      g.append(svg("rect", { class: "box", width: it.w, height: G.nodeH, rx: n.implicit ? 20 : 7 }));
      if (!n.implicit) g.append(svg("rect", { class: "stripe", x: 0, y: 0, width: 6, height: G.nodeH, rx: 3 }));
      g.append(svg("text", { class: "name", x: 16, y: 22 }, fitName(n.name, it.w - 26, measure)));
      g.append(svg("text", { class: "type", x: 16, y: 39 }, typeLine(n)));
      g.append(svg("text", { class: "status", x: 16, y: 54 }));
      nodeLayer.append(g);
    }
    root.append(nodeLayer);

    // Labels: measured roughly, then pushed apart within each gap.
    const labelLayer = svg("g", { class: "labels" });
    const byGap = new Map();
    for (const l of labels) {
      l.h = l.lines.length * G.labelLine + 6;
      l.top = l.y - l.h / 2;
      if (!byGap.has(l.gapOf)) byGap.set(l.gapOf, []);
      byGap.get(l.gapOf).push(l);
    }
    let maxBottom = bottom;
    for (const gapLabels of byGap.values()) {
      gapLabels.sort((a, b) => a.top - b.top);
      let prev = -Infinity;
      for (const l of gapLabels) {
        l.top = Math.max(l.top, prev + 3);
        prev = l.top + l.h;
        maxBottom = Math.max(maxBottom, prev + G.bandPad);
      }
    }
    for (const l of labels) {
      const g = svg("g", { class: `label label-${l.group.kind}`, "data-source": l.group.source, "data-target": l.group.target });
      g.append(svg("rect", { x: l.x - l.w / 2, y: l.top, width: l.w, height: l.h, rx: 4 }));
      l.lines.forEach((line, i) => {
        g.append(svg("text", { x: l.x, y: l.top + 3 + (i + 1) * G.labelLine - 3, "text-anchor": "middle" }, line));
      });
      labelLayer.append(g);
    }
    root.append(labelLayer);

    const width = L.colX[L.ncols - 1] + L.colW[L.ncols - 1] + G.bandPad + G.margin;
    const height = maxBottom + G.margin;
    for (const b of bands.querySelectorAll("rect")) b.setAttribute("height", maxBottom - G.margin);
    measure.done();
    root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    root.dataset.width = width;
    root.dataset.height = height;
    fit();
    root.dataset.state = "ready";
  }

  // fit scales the drawing down to the panel's width, to a limit.
  function fit() {
    const root = $("graph");
    const width = Number(root.dataset.width);
    const height = Number(root.dataset.height);
    if (!width) return;
    const scale = Math.min(1, Math.max(G.minScale, $("graph-scroll").clientWidth / width));
    root.setAttribute("width", Math.floor(width * scale));
    root.setAttribute("height", Math.floor(height * scale));
  }

  // --- Trace ---------------------------------------------------------------

  // parseTrace accepts a trace object or a graph run output holding one.
  function parseTrace(text) {
    let v;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new Error(`The trace is not JSON: ${e.message}`);
    }
    if (v && typeof v === "object" && v.trace && typeof v.trace === "object") v = v.trace;
    if (!v || typeof v !== "object" || !Array.isArray(v.nodes)) {
      throw new Error('Not a datakit debug trace: it has no "nodes" list.');
    }
    return v;
  }

  // durations measures each node from its run event to its complete, fail
  // or cancel event, in seconds.
  function durations(trace) {
    const started = new Map();
    const out = new Map();
    for (const ev of Array.isArray(trace.events) ? trace.events : []) {
      if (!ev || typeof ev.name !== "string" || typeof ev.at !== "number") continue;
      if (ev.action === "run") started.set(ev.name, ev.at);
      else if (END_ACTIONS.has(ev.action) && started.has(ev.name)) out.set(ev.name, ev.at - started.get(ev.name));
    }
    return out;
  }

  function formatDuration(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "";
    const ms = seconds * 1000;
    if (ms < 1) return `${Math.round(ms * 1000)} µs`;
    if (ms < 10) return `${ms.toFixed(2)} ms`;
    if (ms < 1000) return `${ms.toFixed(1)} ms`;
    return `${(ms / 1000).toFixed(2)} s`;
  }

  function statusWord(status) {
    return STATUSES.includes(status) ? status.slice("NODE_".length).toLowerCase() : "unknown";
  }

  function clearTrace() {
    const root = $("graph");
    delete root.dataset.trace;
    for (const g of root.querySelectorAll("g.node")) {
      for (const s of [...STATUSES, "absent", "unknown"]) g.classList.remove(`status-${s}`);
      g.removeAttribute("data-status");
      g.removeAttribute("data-duration");
      g.querySelector("text.status").textContent = "";
      const n = state.graph && state.graph.nodes.find((x) => x.name === g.dataset.node);
      if (n) g.querySelector("title").textContent = `${n.name} (${n.type}, ${n.phase})`;
    }
    $("trace-table").hidden = true;
    $("trace-table").tBodies[0].replaceChildren();
    $("trace-summary").textContent = "";
  }

  function showTrace() {
    if (!state.graph) {
      showMessage("Select a plugin first.", "error");
      return;
    }
    let trace;
    try {
      trace = parseTrace($("trace-input").value);
    } catch (e) {
      showMessage(e.message, "error");
      return;
    }
    $("trace-input").value = JSON.stringify(trace, null, 2);
    clearTrace();
    const times = durations(trace);
    const byName = new Map();
    for (const tn of trace.nodes) if (tn && typeof tn.name === "string") byName.set(tn.name, tn);

    const root = $("graph");
    for (const g of root.querySelectorAll("g.node")) {
      const tn = byName.get(g.dataset.node);
      if (!tn) {
        g.classList.add("status-absent");
        g.querySelector("text.status").textContent = "not in trace";
        continue;
      }
      const status = STATUSES.includes(tn.status) ? tn.status : "unknown";
      g.classList.add(`status-${status}`);
      g.dataset.status = String(tn.status);
      const d = times.get(tn.name);
      const parts = [statusWord(tn.status)];
      if (d !== undefined) {
        g.dataset.duration = String(d);
        parts.push(formatDuration(d));
      }
      g.querySelector("text.status").textContent = parts.join(" · ");
      if (tn.error) g.querySelector("title").textContent += `\n${tn.error}`;
    }

    const tbody = $("trace-table").tBodies[0];
    for (const tn of trace.nodes) {
      if (!tn || typeof tn.name !== "string") continue;
      const tr = document.createElement("tr");
      tr.className = `status-${STATUSES.includes(tn.status) ? tn.status : "unknown"}`;
      tr.dataset.node = tn.name;
      for (const v of [tn.name, tn.type, tn.phase, statusWord(tn.status), formatDuration(times.get(tn.name)), tn.error]) {
        const td = document.createElement("td");
        td.textContent = v === undefined || v === null ? "" : String(v);
        tr.append(td);
      }
      tbody.append(tr);
    }
    $("trace-table").hidden = false;

    const drawn = new Set(state.graph.nodes.map((n) => n.name));
    const unknown = [...byName.keys()].filter((n) => !drawn.has(n));
    const summary = [String(trace.status || "no plan status")];
    if (typeof trace.duration === "number") summary.push(formatDuration(trace.duration));
    summary.push(`${byName.size} nodes`);
    $("trace-summary").textContent = summary.join(" · ");
    if (unknown.length > 0) {
      showMessage(`The trace has nodes this graph does not: ${unknown.join(", ")}. Is it from another plugin?`, "warning");
    } else {
      showMessage("");
    }
    root.dataset.trace = "applied";
  }

  async function runGraph() {
    let body;
    try {
      body = JSON.parse($("run-input").value);
    } catch (e) {
      showMessage(`The run body is not JSON: ${e.message}`, "error");
      return;
    }
    const out = await api(`plugins/${encodeURIComponent(state.plugin)}/graph/run`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    $("trace-input").value = JSON.stringify(out.trace, null, 2);
    showTrace();
    const status = out.response && out.response.status;
    showMessage(`Offline run: outcome ${out.outcome}, response status ${status}.`, "info");
  }

  // --- Wiring --------------------------------------------------------------

  function guard(fn) {
    return (...args) => Promise.resolve(fn(...args)).catch(showError);
  }

  async function start() {
    await loadPlugins();
    await route();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token").value = adminToken();
    $("token-form").addEventListener("submit", guard(async (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
      showMessage("");
      await start();
    }));
    window.addEventListener("hashchange", guard(route));
    window.addEventListener("resize", fit);
    $("trace-show").addEventListener("click", showTrace);
    $("trace-clear").addEventListener("click", () => {
      $("trace-input").value = "";
      clearTrace();
      showMessage("");
    });
    $("run-button").addEventListener("click", guard(runGraph));
    guard(start)();
  });
})();
