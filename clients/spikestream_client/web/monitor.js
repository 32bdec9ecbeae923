// spikestream web monitor: draws what `spikestream monitor --web` streams over /ws.
//
// Messages (JSON): "hello" {net, window}, "batch" {probes: {name: {kind, base, t, i | v,
// cov, n | shape, dt}}, skipped}, and "summary" {service, probes, inputs, inputs_hidden,
// ignored_probes, ignored_frames, shortened, limits}. Spike rasters are drawn
// pixel by pixel into an ImageData (cheap for tens of thousands of spikes); value traces
// are canvas paths. Ticks without data (lost frames) are shaded.
//
// Ticks are absolute and reach 2**31 after 24.8 days at dt = 1 ms (the protocol allows up
// to 2**53 - 1), so they are kept as doubles (Float64Array, plain numbers), never Int32.
//
// State for tests and scripts is mirrored on <body> data attributes:
//   data-status (online/offline/unknown), data-connected (websocket), data-spikes-drawn
//   (spikes plotted so far), data-values-drawn, data-batches, data-gaps, data-frames,
//   data-ignored-probes (probes the monitor does not show: it shows at most 256).
// Each panel (div.panel[data-probe]) carries data-span: ticks of the window with data.
"use strict";

(function () {
  const body = document.body;
  const COLORS = ["#1f5fbf", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#8d6e63", "#00838f", "#5d6d7e"];
  const BG = [255, 255, 255];
  const GAP = [250, 215, 215];
  const INK = [20, 20, 30];
  const state = {
    windowS: 2.0,
    spikesDrawn: 0,
    valuesDrawn: 0,
    batches: 0,
    skipped: 0,
    panels: new Map(),
    socket: null,
    retry: 500,
  };

  function $(id) { return document.getElementById(id); }

  function fmt(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "-";
    return Number(x).toFixed(digits === undefined ? 1 : digits);
  }

  // Everything that came over the wire is shown as text: names, kinds and event text
  // become text nodes (textContent), never markup, so a hostile name cannot inject
  // elements or script even if it got past the codec's name check.
  function cell(value, className) {
    const td = document.createElement("td");
    td.textContent = String(value);
    if (className) td.className = className;
    return td;
  }

  function mirror() {
    body.dataset.spikesDrawn = String(state.spikesDrawn);
    body.dataset.valuesDrawn = String(state.valuesDrawn);
    body.dataset.batches = String(state.batches);
    $("d-spikes").textContent = String(state.spikesDrawn);
  }

  // Which ticks of [lo, hi) have data, from merged [start, end) coverage ranges. Ticks
  // before `first` (the first tick this page saw) count as covered: not seeing what
  // happened before the page opened is not a loss.
  function coverageMask(ranges, lo, hi, first) {
    const mask = new Uint8Array(Math.max(0, hi - lo));
    for (let k = lo; k < Math.min(first, hi); k++) mask[k - lo] = 1;
    for (const [start, end] of ranges) {
      const a = Math.max(start, lo), b = Math.min(end, hi);
      for (let k = a; k < b; k++) mask[k - lo] = 1;
    }
    return mask;
  }

  function pruneRanges(ranges, lo) {
    while (ranges.length && ranges[0][1] <= lo) ranges.shift();
  }

  function addRanges(ranges, cov) {
    for (const [start, end] of cov) {
      const last = ranges[ranges.length - 1];
      if (last && last[0] <= start && start <= last[1]) last[1] = Math.max(last[1], end);
      else ranges.push([start, end]);
    }
  }

  class Panel {
    constructor(name, kind, meta) {
      this.name = name;
      this.kind = kind;
      this.head = 0;
      this.dt = meta.dt || 0.001;
      this.ranges = [];
      this.chunks = [];
      this.first = null;  // first tick this page saw
      this.root = document.createElement("div");
      this.root.className = "panel " + kind;
      this.root.dataset.probe = name;
      const title = document.createElement("h2");
      title.textContent = name;
      this.meta = document.createElement("span");
      this.meta.className = "meta";
      title.appendChild(this.meta);
      this.canvas = document.createElement("canvas");
      this.canvas.id = "canvas-" + name;
      this.root.appendChild(title);
      this.root.appendChild(this.canvas);
      $("panels").appendChild(this.root);
    }

    get width() { return Math.max(1, Math.round(state.windowS / this.dt)); }

    advance(msg) {
      if (msg.dt && msg.dt !== this.dt) { this.dt = msg.dt; this.chunks = []; this.ranges = []; }
      let end = this.head;
      for (const [, stop] of msg.cov) end = Math.max(end, stop);
      if (msg.cov.length && msg.cov[0][0] < this.head - this.width) {
        // The service was reset or restarted: ticks went back. Start afresh.
        this.chunks = []; this.ranges = []; end = msg.cov[msg.cov.length - 1][1];
        this.first = msg.cov[0][0];
      }
      if (this.first === null && msg.cov.length) this.first = msg.cov[0][0];
      this.head = end;
      this.root.dataset.span = String(Math.min(this.width, this.head - this.first));
      addRanges(this.ranges, msg.cov);
      const lo = this.head - this.width;
      pruneRanges(this.ranges, lo);
      this.chunks = this.chunks.filter((c) => c.last >= lo);
    }
  }

  class RasterPanel extends Panel {
    constructor(name, meta) {
      super(name, "spikes", meta);
      this.n = meta.n;
      this.canvas.width = 1000;
      this.canvas.height = Math.max(60, Math.min(3 * this.n, 240));
      this.ctx = this.canvas.getContext("2d");
      this.image = this.ctx.createImageData(this.canvas.width, this.canvas.height);
      this.pixels = new Uint32Array(this.image.data.buffer);
      this.visible = 0;
    }

    add(msg) {
      if (msg.n !== this.n) {
        this.n = msg.n;
        this.chunks = [];
      }
      this.advance(msg);
      const count = msg.t.length;
      const ticks = new Float64Array(count);  // absolute ticks pass 2**31: not Int32
      const neurons = new Int32Array(count);
      let last = -Infinity;
      for (let k = 0; k < count; k++) {
        ticks[k] = msg.base + msg.t[k];
        neurons[k] = msg.i[k];
        if (ticks[k] > last) last = ticks[k];
      }
      if (count) this.chunks.push({ ticks, neurons, last });
      this.meta.textContent = `${this.n} neurons · ${count} new spikes`;
      return this.draw(count);
    }

    draw(fresh) {
      const w = this.canvas.width, h = this.canvas.height, width = this.width;
      const lo = this.head - width;
      const px = this.pixels;
      const pack = (c) => (255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0];
      px.fill(pack(BG));
      // Shade the columns whose ticks have no data.
      const mask = coverageMask(this.ranges, lo, this.head, this.first);
      const gap = pack(GAP);
      for (let x = 0; x < w; x++) {
        const k = Math.floor((x * width) / w);
        if (!mask[k]) for (let y = 0; y < h; y++) px[y * w + x] = gap;
      }
      const ink = pack(INK);
      const pitch = Math.floor(h / Math.max(this.n, 1));
      const rowH = Math.max(1, pitch >= 3 ? pitch - 1 : pitch);
      let visible = 0;
      for (const c of this.chunks) {
        for (let k = 0; k < c.ticks.length; k++) {
          const dtick = c.ticks[k] - lo;
          if (dtick < 0 || dtick >= width) continue;
          const x = Math.floor((dtick * w) / width);
          const y0 = Math.floor((c.neurons[k] * h) / Math.max(this.n, 1));
          for (let y = y0; y < Math.min(h, y0 + rowH); y++) px[y * w + x] = ink;
          visible++;
        }
      }
      this.ctx.putImageData(this.image, 0, 0);
      this.visible = visible;
      this.root.dataset.visible = String(visible);
      return Math.min(fresh, visible);
    }
  }

  class TracePanel extends Panel {
    constructor(name, meta) {
      super(name, "values", meta);
      this.canvas.width = 1000;
      this.canvas.height = 140;
      this.ctx = this.canvas.getContext("2d");
      this.shape = meta.shape;
    }

    add(msg) {
      this.advance(msg);
      const ticks = msg.t.map((t) => msg.base + t);
      if (ticks.length) this.chunks.push({ ticks, rows: msg.v, last: ticks[ticks.length - 1] });
      this.shape = msg.shape;
      return this.draw(ticks.length);
    }

    draw(fresh) {
      const ctx = this.ctx, w = this.canvas.width, h = this.canvas.height, width = this.width;
      const lo = this.head - width;
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, w, h);
      const mask = coverageMask(this.ranges, lo, this.head, this.first);
      ctx.fillStyle = `rgb(${GAP.join(",")})`;
      for (let x = 0; x < w; x++) if (!mask[Math.floor((x * width) / w)]) ctx.fillRect(x, 0, 1, h);
      let min = Infinity, max = -Infinity, comps = 0;
      for (const c of this.chunks) {
        for (let k = 0; k < c.ticks.length; k++) {
          if (c.ticks[k] < lo) continue;
          const row = c.rows[k];
          comps = Math.max(comps, row.length);
          for (const v of row) if (v !== null) { if (v < min) min = v; if (v > max) max = v; }
        }
      }
      if (!isFinite(min)) return 0;
      if (max - min < 1e-9) { max += 0.5; min -= 0.5; }
      const pad = (max - min) * 0.08;
      min -= pad; max += pad;
      const yOf = (v) => h - ((v - min) / (max - min)) * h;
      if (min < 0 && max > 0) {
        ctx.strokeStyle = "#ddd";
        ctx.beginPath(); ctx.moveTo(0, yOf(0)); ctx.lineTo(w, yOf(0)); ctx.stroke();
      }
      let drawn = 0;
      for (let j = 0; j < comps; j++) {
        ctx.strokeStyle = COLORS[j % COLORS.length];
        ctx.lineWidth = 1.2;
        ctx.beginPath();
        let pen = false, prev = -Infinity;
        for (const c of this.chunks) {
          for (let k = 0; k < c.ticks.length; k++) {
            const tick = c.ticks[k];
            if (tick < lo) continue;
            const v = c.rows[k][j];
            const x = ((tick - lo) * w) / width;
            if (v === null || v === undefined || tick - prev > 50) pen = false;
            if (v === null || v === undefined) continue;
            if (pen) ctx.lineTo(x, yOf(v)); else ctx.moveTo(x, yOf(v));
            pen = true; prev = tick; drawn++;
          }
        }
        ctx.stroke();
      }
      ctx.fillStyle = "#555";
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillText(fmt(max, 3), 4, 12);
      ctx.fillText(fmt(min, 3), 4, h - 4);
      this.meta.textContent = `shape [${this.shape.join(", ")}] · ${Math.min(comps, 8)} traces`;
      return Math.min(fresh, drawn);
    }
  }

  function panelFor(name, msg) {
    let panel = state.panels.get(name);
    if (!panel || panel.kind !== msg.kind) {
      if (panel) panel.root.remove();
      panel = msg.kind === "spikes" ? new RasterPanel(name, msg) : new TracePanel(name, msg);
      state.panels.set(name, panel);
    }
    return panel;
  }

  function onBatch(msg) {
    state.batches++;
    state.skipped = msg.skipped || 0;
    const names = Object.keys(msg.probes).sort((a, b) => {
      const ka = msg.probes[a].kind, kb = msg.probes[b].kind;
      return ka === kb ? (a < b ? -1 : 1) : (ka === "spikes" ? -1 : 1);
    });
    for (const name of names) {
      const probe = msg.probes[name];
      const drawn = panelFor(name, probe).add(probe);
      if (probe.kind === "spikes") state.spikesDrawn += drawn;
      else state.valuesDrawn += drawn;
    }
    mirror();
  }

  function onSummary(msg) {
    const svc = msg.service;
    const status = svc.status || "unknown";
    body.dataset.status = status;
    const badge = $("status");
    badge.textContent = status;
    badge.className = "badge " + (status === "online" || status === "offline" ? status : "unknown");
    const st = svc.stats || {};
    $("s-tick").textContent = st.tick === undefined ? "-" : String(st.tick);
    $("s-t").textContent = st.t === undefined ? "-" : fmt(st.t, 3) + " s";
    // Schedule dropped since start (realigns, slips, resumes): how far simulated time has
    // fallen behind the wall clock's grid, for good.
    const behind = typeof st.behind_ms === "number" && st.behind_ms >= 0.0005 ? ` (behind ${fmt(st.behind_ms, 3)} ms)` : "";
    $("s-rtf").textContent = fmt(st.realtime_factor_actual, 3) + (st.paused ? " (paused)" : "") + behind;
    $("f-rtf").textContent = fmt(svc.rtf_frames, 3);
    $("s-late").textContent = `${fmt(st.late_p99_ms, 2)} / ${fmt(st.late_max_ms, 2)} ms` +
      (st.spin_contended === true ? " (CPU contended)" : "");
    for (const w of ["1s", "10s"]) {
      const k = (name) => st[`window_${w}_${name}`];
      $(`s-recent-${w}`).textContent = `${fmt(k("realtime_factor_actual"), 3)} · ` +
        `${fmt(k("late_p99_ms"), 2)} / ${fmt(k("late_max_ms"), 2)} ms · ${fmt(k("late_over_1ms_pct"), 3)} % · ` +
        `${fmt(k("work_p99_ms"), 3)} ms · steal ${fmt(k("cpu_steal_pct"), 1)} %`;
    }
    $("f-late").textContent = fmt(svc.late_max_frames === null ? null : svc.late_max_frames * 1e3, 2) + " ms";
    $("s-dropped").textContent = `${svc.dropped} (service ${st.dropped === undefined ? "-" : st.dropped})`;
    $("f-gaps").textContent = `${svc.gaps} (${svc.missing})` + (state.skipped ? ` · ${state.skipped} batches skipped` : "");
    $("f-gaps").className = svc.gaps ? "bad" : "";
    const events = Object.entries(svc.events || {}).map(([k, v]) => `${k}×${v}`).join(" ");
    const last = svc.last_event;
    let lastText = "";
    if (last && typeof last === "object") {
      const detail = last.error || last.input || last.cmd || "";
      lastText = ` · last: ${String(last.event || "")} ${String(detail)}`.slice(0, 160);
    }
    $("s-events").textContent = events ? events + lastText : "-";
    body.dataset.gaps = String(svc.gaps);
    let frames = 0;
    const rows = [];
    for (const p of msg.probes) {
      frames += p.frames;
      const size = Array.isArray(p.size) ? `[${p.size.join(", ")}]` : String(p.size);
      const latest = p.kind === "values" ? p.latest.slice(0, 4).map((v) => fmt(v, 3)).join(" ") : "";
      const tr = document.createElement("tr");
      tr.dataset.probe = String(p.name);
      tr.append(
        cell(p.name, "text"), cell(p.kind, "text"), cell(size),
        cell(p.kind === "spikes" ? fmt(p.rate, 1) : ""), cell(latest, "text"),
        cell(fmt(p.fps, 0)), cell(`${p.gaps}/${p.missing}`, p.gaps ? "bad" : ""),
        cell(p.dropped), cell(fmt(p.late_max === null ? null : p.late_max * 1e3, 1)),
        cell(fmt(p.lag === null ? null : p.lag * 1e3, 1)),
      );
      rows.push(tr);
    }
    $("probe-rows").replaceChildren(...rows);
    body.dataset.frames = String(frames);
  }

  // Each input's age (ms from its last value to the latest stats) and whether it runs on
  // its default. Rows are tr[data-input=NAME] with data-stale "true", "false" or "" (not
  // known); the name is a text node like every other string from the wire.
  const MAX_INPUT_ROWS = 64;
  function onInputs(msg) {
    const items = Array.isArray(msg.inputs) ? msg.inputs.slice(0, MAX_INPUT_ROWS) : [];
    const rows = [];
    for (const item of items) {
      if (!item || typeof item !== "object") continue;
      const age = typeof item.age_ms === "number" ? item.age_ms : null;
      const stale = typeof item.stale === "boolean" ? item.stale : null;
      const tr = document.createElement("tr");
      tr.dataset.input = String(item.name);
      tr.dataset.stale = stale === null ? "" : String(stale);
      tr.append(
        cell(item.name, "text"), cell(fmt(age, 1)),
        cell(stale === null ? "-" : stale ? "STALE" : "fresh", stale ? "bad" : stale === false ? "ok" : ""),
      );
      rows.push(tr);
    }
    $("input-rows").replaceChildren(...rows);
    $("inputs").hidden = rows.length === 0;
    const hidden = Number.isFinite(msg.inputs_hidden) ? msg.inputs_hidden : 0;
    $("inputs-hidden").textContent = hidden > 0 ? `${hidden} more inputs not shown` : "";
  }

  // What the monitor leaves out (probes past the 256 it shows, windows shortened to fit
  // its ring memory), worded by the server; shown under the probe table so nothing is
  // dropped silently. The note is made here, as text, the first time it is needed.
  function onLimits(msg) {
    const ignored = Number.isFinite(msg.ignored_probes) ? msg.ignored_probes : 0;
    const text = typeof msg.limits === "string" ? msg.limits : "";
    body.dataset.ignoredProbes = String(ignored);
    let note = $("limits");
    if (!note && !text) return;
    if (!note) {
      note = document.createElement("p");
      note.id = "limits";
      note.className = "note";
      note.style.color = "var(--warn)";
      $("probes").appendChild(note);
    }
    note.textContent = text;
  }

  function setLink(up) {
    body.dataset.connected = up ? "true" : "false";
    const link = $("link");
    link.textContent = up ? "websocket connected" : "websocket reconnecting…";
    link.className = "badge " + (up ? "up" : "down");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws`);
    state.socket = socket;
    socket.onopen = () => { state.retry = 500; setLink(true); };
    socket.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (err) { return; }
      if (msg.type === "batch") onBatch(msg);
      else if (msg.type === "summary") { onSummary(msg); onInputs(msg); onLimits(msg); }
      else if (msg.type === "hello") {
        state.windowS = msg.window || state.windowS;
        $("net").textContent = msg.net;
        $("window").textContent = String(state.windowS);
        document.title = `spikestream · ${msg.net}`;
      }
    };
    socket.onclose = () => {
      setLink(false);
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 5000);
    };
  }

  mirror();
  connect();
})();
