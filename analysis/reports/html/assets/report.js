// tracer's report.html: draws the page that analysis/reports/html/page.py describes in the JSON of
// <script id="tracer-page">: sections of HTML, charts (Chart.js, zoom by wheel or shift-drag, pan by drag,
// double-click to reset) and sortable, filterable tables. Exposes window.tracerPage (charts, ready) for tests.
"use strict";
(function () {
  const page = JSON.parse(document.getElementById("tracer-page").textContent);
  const ALL = "(all)", MAX_ROWS = 3000;
  const out = { charts: [], ready: false };
  window.tracerPage = out;

  // --- numbers as the tables and hovers show them ----------------------------------------------------------
  const fixed = (v, n) => v.toLocaleString("en-US", { minimumFractionDigits: n, maximumFractionDigits: n });
  function scaled(v, steps, unit) {   // 1234567 -> "1.235 M" (steps: [[1e9, "G"], ...])
    for (const [size, name] of steps) if (Math.abs(v) >= size) return fixed(v / size, 3) + " " + name + unit;
    return fixed(v, 3) + (unit ? " " + unit : "");
  }
  const SI = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const BYTES = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  function fmt(v, how) {
    if (v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v))) return "";
    if (typeof v !== "number" || !how || how === "text") return String(v);
    if (how === "int") return Math.round(v).toLocaleString("en-US");
    if (how === "si") return scaled(v, SI, "");
    if (how === "bytes") return scaled(v, BYTES, "B");
    if (how[0] === "f") return fixed(v, Number(how.slice(1)));
    return String(v);
  }
  // "{time_ms:f3} ms ({calls:int} calls)" filled from row i of columns `rows`
  const fill = (template, rows, i) =>
    template.replace(/\{(\w+)(?::(\w+))?\}/g, (_, f, how) => fmt(rows[f] ? rows[f][i] : undefined, how));
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  function el(tag, attrs, parent) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "html") e.innerHTML = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  // --- charts ------------------------------------------------------------------------------------------------
  function axis(a, spec, name) {
    const s = { title: { display: !!a.label, text: a.label || "" }, stacked: !!spec.stacked };
    if (spec.type === "bar" && name === "x") return Object.assign(s, { type: "category" });
    Object.assign(s, { type: a.log ? "logarithmic" : "linear" });
    if (a.min !== undefined && a.min !== null) s.min = a.min;
    if (a.max !== undefined && a.max !== null) s.max = a.max;
    if (a.suggested_max !== undefined && a.suggested_max !== null) s.suggestedMax = a.suggested_max;
    if (a.ticks) {   // the values a sweep ran at, and only those
      s.afterBuildTicks = (ax) => { ax.ticks = a.ticks.filter((v) => v >= ax.min && v <= ax.max).map((v) => ({ value: v })); };
      s.ticks = { callback: (v) => fmt(v, "int") };
    } else if (a.log) {
      // over more than three decades, the powers of ten as 10ⁿ; over fewer, 1, 2 and 5 times them as numbers
      s.ticks = { maxRotation: 0, callback: function (v) {
        const e = Math.floor(Math.log10(v) + 1e-9), m = v / 10 ** e, near = (x) => Math.abs(m - x) < 1e-6;
        if (Math.log10(this.max / this.min) > 3) return near(1) ? "10" + superscript(e) : "";
        return near(1) || near(2) || near(5) ? String(+v.toPrecision(6)) : "";
      } };
    }
    return s;
  }
  const superscript = (n) => String(n).replace(/[-0-9]/g, (c) => "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"[c === "-" ? 0 : Number(c) + 1]);

  function scatterDataset(d) {
    const xs = d.data.x, ys = d.data.y;
    return {
      label: d.label, parsing: false, showLine: !!d.line, spanGaps: false,
      data: xs.map((x, i) => ({ x, y: ys[i], i })),
      borderColor: d.color, borderDash: d.dash || [], borderWidth: d.width || 1.5,
      backgroundColor: d.fill || d.color, pointBackgroundColor: d.fill || d.color,
      pointBorderColor: d.edge || d.color, pointBorderWidth: d.edge_width || 1,
      pointRadius: d.points === false ? 0 : (d.radius ?? 4), pointHitRadius: d.points === false ? 0 : 3,
      pointHoverRadius: d.points === false ? 0 : (d.radius ?? 4), pointStyle: d.points === false ? "line" : (d.marker || "circle"),
      order: d.line && d.points === false ? 1 : 0,
    };
  }

  function barDataset(d) {
    return { label: d.label, data: d.values, backgroundColor: d.color, borderColor: "#bbbbbb", borderWidth: 0.3,
             barPercentage: 0.85, categoryPercentage: 1 };
  }

  function tooltip(spec) {
    const sets = spec.datasets;
    if (spec.type === "bar") {
      return {
        mode: "index", intersect: false, filter: (item) => item.raw !== 0,
        callbacks: {
          title: (items) => (spec.hover_title || "") + (items.length ? items[0].label : ""),
          label: (item) => `${item.dataset.label}: ${fmt(item.raw, "f3")} ${spec.unit || ""}`,
          footer: (items) => {
            if (!items.length) return "";
            const i = items[0].dataIndex, total = sets.reduce((a, d) => a + (d.values[i] || 0), 0);
            return `${spec.footer || "total"}: ${fmt(total, "f3")} ${spec.unit || ""}`;
          },
        },
      };
    }
    return {
      mode: "nearest", intersect: true, filter: (item) => !!sets[item.datasetIndex].rows,
      callbacks: {
        title: (items) => items.length ? fill(spec.hover_title || "", sets[items[0].datasetIndex].rows, items[0].raw.i) : "",
        label: (item) => spec.hover.map(([name, template]) =>
          `${name}: ${fill(template, sets[item.datasetIndex].rows, item.raw.i)}`),
      },
    };
  }

  function chart(spec, parent) {
    const box = el("div", { class: "chart" }, parent);
    const frame = el("div", { style: `position:relative;width:${spec.width}px;height:${spec.height}px` }, box);
    const canvas = el("canvas", {}, frame);
    const bar = spec.type === "bar";
    const c = new Chart(canvas, {
      type: bar ? "bar" : "scatter",
      data: bar ? { labels: spec.labels, datasets: spec.datasets.map(barDataset) }
                : { datasets: spec.datasets.map(scatterDataset) },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, normalized: true,
        scales: { x: axis(spec.x || {}, spec, "x"), y: axis(spec.y || {}, spec, "y") },
        plugins: {
          title: { display: !!spec.title, text: spec.title || "", font: { size: 13 } },
          legend: { position: spec.legend || "top", labels: { usePointStyle: !bar, boxWidth: 10, font: { size: 10 },
                    filter: (item) => !(spec.datasets[item.datasetIndex] || {}).unlisted } },
          tooltip: tooltip(spec),
          zoom: {
            zoom: { wheel: { enabled: true }, pinch: { enabled: true }, drag: { enabled: true, modifierKey: "shift" },
                    mode: spec.zoom || "xy" },
            pan: { enabled: true, mode: spec.zoom || "xy" },
          },
        },
      },
    });
    canvas.addEventListener("dblclick", () => c.resetZoom());
    const tools = el("div", { class: "small tools" }, box);
    el("button", { text: "reset zoom" }, tools).addEventListener("click", () => c.resetZoom());
    el("button", { text: "save PNG" }, tools).addEventListener("click", () => {
      const a = el("a", { href: c.toBase64Image(), download: (spec.title || "chart").replace(/[^\w.-]+/g, "_") + ".png" });
      a.click();
    });
    out.charts.push(c);
  }

  // --- tables ------------------------------------------------------------------------------------------------
  function table(spec, parent) {
    const d = spec.data, cols = spec.columns, n = cols.length ? d[cols[0].field].length : 0;
    const box = el("div", { class: "table", "data-table": spec.name }, parent);
    const controls = el("div", { class: "controls" }, box);
    const chosen = {};
    for (const f of spec.filters) {
      const label = el("label", { text: f.title + " " }, controls);
      const sel = el("select", { "data-table": spec.name, "data-field": f.field }, label);
      const values = [...new Set(d[f.field].map(String))];
      for (const v of (f.all === false ? values : [ALL, ...values])) el("option", { value: v, text: v }, sel);
      sel.value = chosen[f.field] = f.value ?? (f.all === false ? values[0] : ALL);
      sel.addEventListener("change", () => { chosen[f.field] = sel.value; render(); });
    }
    let needle = "";
    if (spec.text.length) {
      const label = el("label", { text: `contains (${spec.text.join(", ")}) ` }, controls);
      const input = el("input", { type: "text", "data-table": spec.name, "data-text": "1" }, label);
      input.addEventListener("input", () => { needle = input.value.trim().toLowerCase(); render(); });
    }
    const count = el("span", { class: "small" }, controls);
    const scroll = el("div", { class: "scroll", style: `max-height:${spec.height}px` }, box);
    const t = el("table", { class: "rows", "data-name": spec.name }, scroll);
    const head = el("tr", {}, el("thead", {}, t));
    const body = el("tbody", {}, t);
    let sortField = null, descending = true;
    cols.forEach((c) => {
      const th = el("th", { text: c.title, title: "click to sort" }, head);
      th.addEventListener("click", () => {
        descending = sortField === c.field ? !descending : true;
        sortField = c.field;
        render();
      });
    });
    function render() {
      let idx = [];
      for (let i = 0; i < n; i++) {
        let ok = spec.filters.every((f) => chosen[f.field] === ALL || String(d[f.field][i]) === chosen[f.field]);
        if (ok && needle) ok = spec.text.some((f) => String(d[f][i] ?? "").toLowerCase().includes(needle));
        if (ok) idx.push(i);
      }
      if (sortField) {
        const v = d[sortField], sign = descending ? -1 : 1;
        idx.sort((a, b) => {
          const x = v[a], y = v[b];
          if (x === y) return a - b;
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : 1) * sign;
        });
      }
      t.dataset.rows = idx.length;
      count.textContent = idx.length > MAX_ROWS ? ` ${idx.length} rows (first ${MAX_ROWS} shown)` : ` ${idx.length} rows`;
      body.innerHTML = idx.slice(0, MAX_ROWS).map((i) => "<tr>" + cols.map((c) =>
        `<td class="${c.format && c.format !== "text" ? "num" : ""}">${esc(fmt(d[c.field][i], c.format))}</td>`).join("")
        + "</tr>").join("");
    }
    render();
  }

  // --- the page ----------------------------------------------------------------------------------------------
  const root = document.getElementById("tracer-report");
  for (const s of page.sections) {
    if (s.kind === "html") el("div", { class: "section", html: s.html }, root);
    else if (s.kind === "charts") {
      const row = el("div", { class: "charts" }, root);
      for (const c of s.charts) chart(c, row);
    } else if (s.kind === "table") table(s, root);
  }
  out.ready = true;
})();
