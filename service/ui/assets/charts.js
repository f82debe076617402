// SVG line charts for the live panels, drawn with DOM calls only (no markup strings), and
// a parser for the Prometheus text format of /metrics.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";

  function svgElement(name, attributes) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes || {})) {
      element.setAttribute(key, String(value));
    }
    return element;
  }

  // A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least max.
  function niceMax(max) {
    if (!(max > 0)) {
      return 1;
    }
    const power = Math.pow(10, Math.floor(Math.log10(max)));
    for (const step of [1, 2, 5, 10]) {
      if (step * power >= max) {
        return step * power;
      }
    }
    return 10 * power;
  }

  // Draw series (each {label, className, points: [{t, v}]}, v null for a gap) into the
  // element container, replacing what was there. t is in milliseconds; the x axis spans
  // windowMs up to now. format(v) writes axis values; emptyText is shown without data.
  // Grid steps and labels assume windowMs is 1 to 5 minutes.
  function drawLineChart(container, series, options) {
    const width = 560;
    const height = 180;
    const pad = { left: 52, right: 12, top: 12, bottom: 24 };
    const innerWidth = width - pad.left - pad.right;
    const innerHeight = height - pad.top - pad.bottom;
    const now = options.now;
    const start = now - options.windowMs;

    let max = 0;
    let count = 0;
    for (const s of series) {
      for (const p of s.points) {
        if (p.v !== null && p.t >= start) {
          max = Math.max(max, p.v);
          count++;
        }
      }
    }
    const top = niceMax(max);
    const x = (t) => pad.left + ((t - start) / options.windowMs) * innerWidth;
    const y = (v) => pad.top + innerHeight - (v / top) * innerHeight;

    const svg = svgElement("svg", {
      viewBox: `0 0 ${width} ${height}`,
      class: "line-chart",
      role: "img",
      "aria-label": options.label,
    });

    // Horizontal grid lines with their values: steps of 0.5 for a top of 2, else of 0.2
    // or 1 (times the power of ten), so that labels stay short.
    const leading = Math.round(top / Math.pow(10, Math.floor(Math.log10(top))));
    const steps = leading === 2 ? 4 : 5;
    for (let i = 0; i <= steps; i++) {
      const v = (top * i) / steps;
      svg.appendChild(svgElement("line", {
        x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid-line",
      }));
      const text = svgElement("text", { x: pad.left - 6, y: y(v) + 4, class: "axis-label",
                                        "text-anchor": "end" });
      text.textContent = options.format(v);
      svg.appendChild(text);
    }
    // Time marks before now: every 15 s in a short window, else every minute.
    const markMs = options.windowMs <= 120000 ? 15000 : 60000;
    for (let m = 0; m * markMs <= options.windowMs; m++) {
      const t = now - m * markMs;
      const text = svgElement("text", { x: x(t), y: height - 6, class: "axis-label",
                                        "text-anchor": m === 0 ? "end" : "middle" });
      const ago = markMs === 60000 ? `−${m} min` : `−${(m * markMs) / 1000} s`;
      text.textContent = m === 0 ? options.nowLabel : ago;
      svg.appendChild(text);
    }

    for (const s of series) {
      let path = "";
      let pen = false;
      for (const p of s.points) {
        if (p.t < start || p.v === null) {
          pen = false;
          continue;
        }
        path += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
        pen = true;
      }
      if (path !== "") {
        svg.appendChild(svgElement("path", { d: path, class: `series ${s.className}` }));
      }
    }

    const legend = document.createElement("div");
    legend.className = "legend";
    for (const s of series) {
      const item = document.createElement("span");
      item.className = `legend-item ${s.className}`;
      item.textContent = s.label;
      legend.appendChild(item);
    }

    container.replaceChildren(svg, legend);
    if (count === 0) {
      const empty = document.createElement("p");
      empty.className = "chart-empty muted";
      empty.textContent = options.emptyText;
      container.appendChild(empty);
    }
    container.dataset.points = String(count);
  }

  // Parse the Prometheus text format into [{name, labels: {..}, value}]. Comment lines
  // and lines that do not parse are skipped.
  function parseMetrics(text) {
    const samples = [];
    const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (const raw of text.split("\n")) {
      if (raw === "" || raw.startsWith("#")) {
        continue;
      }
      const m = line.exec(raw);
      if (m === null) {
        continue;
      }
      const labels = {};
      if (m[3] !== undefined) {
        for (const l of m[3].matchAll(label)) {
          labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
        }
      }
      const value = Number(m[4]);
      if (!Number.isNaN(value)) {
        samples.push({ name: m[1], labels, value });
      }
    }
    return samples;
  }

  // The q-quantile (0..1) of a histogram given as [{le, count}] of bucket count
  // increases over an interval (le ascending, the last +Inf), interpolated linearly
  // inside the bucket as Prometheus's histogram_quantile does. null without requests.
  function histogramQuantile(q, buckets) {
    const total = buckets.length ? buckets[buckets.length - 1].count : 0;
    if (!(total > 0)) {
      return null;
    }
    const rank = q * total;
    let lowerBound = 0;
    let lowerCount = 0;
    for (const b of buckets) {
      if (b.count >= rank) {
        if (b.le === Infinity) {
          return lowerBound; // above the largest finite bound: report that bound
        }
        const inBucket = b.count - lowerCount;
        const fraction = inBucket > 0 ? (rank - lowerCount) / inBucket : 1;
        return lowerBound + (b.le - lowerBound) * fraction;
      }
      lowerBound = b.le;
      lowerCount = b.count;
    }
    return lowerBound;
  }

  window.VitrineCharts = { drawLineChart, parseMetrics, histogramQuantile, svgElement };
})();
