// Flask-Stash dashboard: draws the figures of /data. Text goes in with textContent only.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var OUTCOMES = [
    ["hits", "hits", "#2e9e5b"], ["stale", "stale", "#7cc49a"],
    ["coalesced", "coalesced", "#3b82c4"], ["misses", "misses", "#e8a33d"],
    ["passes", "passes", "#9aa3b2"], ["errors", "errors", "#d64545"]
  ];
  var script = document.getElementById("dashboard-script");

  function el(name, text, cls) {
    var node = document.createElement(name);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function svg(name, attrs) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function byId(id) { return document.getElementById(id); }

  function ratio(r) { return r === null || r === undefined ? "\u2013" : (r * 100).toFixed(1) + " %"; }
  function seconds(s) {
    if (s > 0 && s < 0.001) return Math.max(1, Math.round(s * 1e6)) + " \u00b5s";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 120) return s.toFixed(s < 10 ? 2 : 1) + " s";
    if (s < 7200) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return (s / 3600).toFixed(1) + " h";
  }
  function bytes(n) {
    var units = ["B", "kB", "MB", "GB"], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function clock(t) { return new Date(t * 1000).toLocaleTimeString(); }
  function span(s) { return s >= 120 ? Math.round(s / 60) + " minutes" : s + " s"; }

  function card(label, value, sub, cls) {
    var box = el("div", null, "card");
    box.appendChild(el("div", label, "label"));
    var v = el("div", null, "value");
    if (cls) v.appendChild(el("span", value, "badge " + cls)); else v.textContent = value;
    box.appendChild(v);
    if (sub) box.appendChild(el("div", sub, "sub"));
    return box;
  }

  function figuresOf(stats) { return stats.everyone || stats.process; }

  function drawCards(data) {
    var f = figuresOf(data.stats).total, ping = data.ping, cards = byId("cards");
    clear(cards);
    cards.appendChild(card("hit ratio", ratio(f.hit_ratio), f.calls + " calls"));
    cards.appendChild(card("time saved", seconds(f.time_saved), "compute time not spent"));
    cards.appendChild(card("served from cache", f.hits + f.stale + f.coalesced,
      f.stale + " stale, " + f.coalesced + " coalesced"));
    cards.appendChild(card("computed", f.misses + f.passes, f.passes + " not storable"));
    cards.appendChild(card("backend failures", f.errors, "calls computed without the cache; " +
      data.errors.length + " recent errors below"));
    cards.appendChild(card("stored", bytes(f.bytes_stored), f.writes + " writes" +
      (data.stats.evictions === null ? "" : ", " + data.stats.evictions + " evicted")));
    cards.appendChild(card("backend", ping.healthy ? "healthy" : (ping.reachable ? "degraded" : "down"),
      ping.latency_ms + " ms ping", ping.healthy ? "ok" : (ping.reachable ? "warn" : "bad")));
  }

  function axes(chart, w, h, pad, points, interval) {
    chart.appendChild(svg("line", {x1: pad, y1: h - 18, x2: w, y2: h - 18, "class": "axis"}));
    var n = points.length, marks = [n - 1, Math.round((n - 1) * 2 / 3), Math.round((n - 1) / 3), 0];
    marks.forEach(function (i) {
      var x = pad + (w - pad) * (i + 0.5) / n, ago = (n - 1 - i) * interval;
      var label = svg("text", {x: x, y: h - 4, "text-anchor": i === 0 ? "start" : (i === n - 1 ? "end" : "middle")});
      label.textContent = ago ? "-" + span(ago) : "now";
      chart.appendChild(label);
    });
  }

  function drawCalls(history) {
    var chart = byId("calls-chart"), w = 720, h = 190, pad = 30, points = history.points;
    clear(chart);
    var most = 1;
    points.forEach(function (p) {
      most = Math.max(most, OUTCOMES.reduce(function (sum, o) { return sum + p[o[0]]; }, 0));
    });
    var top = svg("text", {x: 0, y: 10}); top.textContent = String(most); chart.appendChild(top);
    var step = (w - pad) / points.length, height = h - 30;
    points.forEach(function (p, i) {
      var y = h - 18;
      OUTCOMES.forEach(function (o) {
        if (!p[o[0]]) return;
        var bar = height * p[o[0]] / most;
        y -= bar;
        var rect = svg("rect", {x: pad + i * step, y: y, width: Math.max(step - 1, 1), height: bar,
          fill: o[2], "class": "seg " + o[0]});
        var tip = svg("title", {}); tip.textContent = clock(p.t) + ": " + p[o[0]] + " " + o[1];
        rect.appendChild(tip);
        chart.appendChild(rect);
      });
    });
    axes(chart, w, h, pad, points, history.interval);
    legend(byId("calls-legend"), OUTCOMES.map(function (o) { return [o[1], o[2]]; }));
  }

  function line(points, value, w, h, pad, cls, color) {
    var step = (w - pad) / points.length, d = "", height = h - 30;
    points.forEach(function (p, i) {
      var v = value(p);
      if (v === null) return;
      var x = pad + (i + 0.5) * step, y = h - 18 - height * v;
      d += (d ? " L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
    });
    return svg("path", {d: d || "M0 0", fill: "none", stroke: color, "stroke-width": 2, "class": "line " + cls,
      "vector-effect": "non-scaling-stroke"});
  }

  function drawRatio(history) {
    var chart = byId("ratio-chart"), w = 360, h = 190, pad = 30, points = history.points;
    clear(chart);
    var mostSaved = Math.max.apply(null, points.map(function (p) { return p.time_saved; }).concat([1e-9]));
    function hitRatio(p) {
      var calls = OUTCOMES.reduce(function (sum, o) { return sum + p[o[0]]; }, 0);
      return calls ? (p.hits + p.stale + p.coalesced) / calls : null;
    }
    chart.appendChild(line(points, hitRatio, w, h, pad, "ratio", "#2e9e5b"));
    var step = (w - pad) / points.length;
    points.forEach(function (p, i) {
      var r = hitRatio(p);
      if (r === null) return;
      var dot = svg("circle", {cx: pad + (i + 0.5) * step, cy: h - 18 - (h - 30) * r, r: 2.5,
        fill: "#2e9e5b", "class": "dot"});
      var tip = svg("title", {}); tip.textContent = clock(p.t) + ": " + ratio(r);
      dot.appendChild(tip);
      chart.appendChild(dot);
    });
    chart.appendChild(line(points, function (p) { return p.time_saved / mostSaved; },
      w, h, pad, "saved", "#3b82c4"));
    var top = svg("text", {x: 0, y: 10}); top.textContent = "100 %"; chart.appendChild(top);
    axes(chart, w, h, pad, points, history.interval);
    legend(byId("ratio-legend"), [["hit ratio", "#2e9e5b"],
      ["time saved (max " + seconds(mostSaved) + " per interval)", "#3b82c4"]]);
  }

  function legend(box, items) {
    clear(box);
    items.forEach(function (item) {
      var entry = el("span"), swatch = el("i");
      swatch.style.background = item[1];
      entry.appendChild(swatch);
      entry.appendChild(document.createTextNode(item[0]));
      box.appendChild(entry);
    });
  }

  function drawScopes(stats) {
    var body = byId("scopes").tBodies[0], scopes = figuresOf(stats).scopes;
    clear(body);
    if (!scopes.length) {
      var row = body.insertRow(), cell = el("td", "Nothing cached yet: call a cached view or function.", "empty");
      cell.colSpan = 11; row.appendChild(cell);
      return;
    }
    scopes.forEach(function (s) {
      var row = body.insertRow();
      row.className = "scope";
      var name = el("td", s.scope, "name");
      name.appendChild(document.createTextNode(" "));
      name.appendChild(el("span", s.kind, "kind"));
      row.appendChild(name);
      row.appendChild(el("td", s.calls));
      var r = el("td", ratio(s.hit_ratio)), bar = el("span", null, "bar"), fill = el("b");
      fill.style.width = ((s.hit_ratio || 0) * 100).toFixed(1) + "%";
      bar.appendChild(fill); r.appendChild(bar); row.appendChild(r);
      ["hits", "misses", "stale", "coalesced", "passes", "errors"].forEach(function (k) {
        row.appendChild(el("td", s[k]));
      });
      row.appendChild(el("td", seconds(s.time_saved)));
      row.appendChild(el("td", bytes(s.bytes_stored)));
    });
  }

  function drawHealth(data) {
    var box = byId("health"), h = data.stats.health, ping = data.ping;
    clear(box);
    var rows = [
      ["backend", data.stats.backend + (data.stats.shared ? " (shared by every process)" : " (this process only)")],
      ["breaker", h.state], ["reachable", ping.reachable ? "yes, " + ping.latency_ms + " ms" : "no"],
      ["failed calls", h.failed_calls], ["skipped calls", h.skipped_calls],
      ["failing for", h.failing_for ? seconds(h.failing_for) : "\u2013"],
      ["pending invalidations", ping.pending_invalidations],
      ["last error", h.last_error || ping.error || "none"]
    ];
    rows.forEach(function (r) {
      box.appendChild(el("dt", r[0]));
      var dd = el("dd");
      if (r[0] === "breaker") dd.appendChild(el("span", r[1], "badge " + (r[1] === "closed" ? "ok" : "bad")));
      else dd.textContent = String(r[1]);
      box.appendChild(dd);
    });
  }

  function drawErrors(errors) {
    var body = byId("errors").tBodies[0];
    clear(body);
    if (!errors.length) {
      var row = body.insertRow(), cell = el("td", "No errors.", "empty");
      cell.colSpan = 4; row.appendChild(cell);
      return;
    }
    errors.forEach(function (e) {
      var row = body.insertRow();
      row.className = "error";
      row.appendChild(el("td", clock(e.last), "text"));
      row.appendChild(el("td", e.operation, "text"));
      row.appendChild(el("td", e.count));
      row.appendChild(el("td", e.message, "message"));
    });
  }

  function draw(data) {
    byId("backend").textContent = data.stats.backend + " \u00b7 pid " + data.stats.pid;
    byId("scope-note").textContent = data.stats.everyone ? "figures of every process" : "figures of this process";
    byId("updated").textContent = "updated " + clock(data.generated);
    byId("interval").textContent = data.history.interval + " s";
    byId("span").textContent = span(data.history.span);
    drawCards(data);
    drawCalls(data.history);
    drawRatio(data.history);
    drawScopes(data.stats);
    drawHealth(data);
    drawErrors(data.errors);
    document.body.setAttribute("data-drawn", "yes");
  }

  function refresh() {
    fetch(script.getAttribute("data-url"), {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(draw)
      .catch(function (e) { byId("updated").textContent = "update failed (" + e.message + ")"; });
  }

  var initial = JSON.parse(byId("initial-data").textContent);
  draw(initial);
  setInterval(refresh, initial.refresh * 1000);
})();
