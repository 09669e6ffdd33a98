// The weir dashboard: no dependencies, no build step (served from the binary by dashboard.rs).
//
// It polls GET /api/status once a second and derives every rate from the difference between two
// snapshots' counters, timed by the server's clock, so the browser's work does not grow with the event
// rate. The object and failure lists are fetched only when their counters move (and every 10 s for
// their ages). Charts are drawn on <canvas> by the small LineChart below. Figures tests read are in
// data-* attributes (data-testid marks the elements).
'use strict';

(() => {
  const POLL_MS = 1000;
  const MAX_RETRY_MS = 10_000;
  const REQUEST_TIMEOUT_MS = 5_000;
  const WINDOW_MS = 5 * 60_000; // the most the charts show
  const MIN_SPAN_MS = 60_000; // the least: a page open for 10 s shows its first minute, not 3% of 5 min
  const AVG_MS = 10_000; // delivery is bursty (one object per buffer), so its figure is averaged
  const RECENT_MS = 30_000; // a failure counter that moved this recently marks its stage failing
  const LAG_WARN_MS = 5_000; // reads further behind a shard's newest record: delivery is lagging
  const FRESHNESS_WARN_MS = 60_000; // an undelivered record older than this: delivery is lagging
  const LIST_REFRESH_MS = 10_000;
  const LIST_LIMIT = 8;
  const LEGEND_MAX = 8;
  const TOKEN_KEY = 'weir.token';

  const $ = (selector) => document.querySelector(selector);

  /** Creates an element: `el('td', {className: 'num'}, 'text', child)`; text is never parsed as HTML. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'dataset') Object.assign(node.dataset, v);
      else node[k] = v;
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  // ---- formatting -------------------------------------------------------------------------------

  const intFormat = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => intFormat.format(n);

  function fmtRate(v) {
    if (v === null || !Number.isFinite(v)) return '—';
    if (v >= 100) return fmtInt(Math.round(v));
    return v.toFixed(1);
  }

  /** Short axis labels: 0, 250, 1.5k, 12k, 3M. */
  function fmtCompact(v) {
    const a = Math.abs(v);
    const trim = (s) => s.replace(/\.0$/, '');
    if (a >= 1e9) return trim((v / 1e9).toFixed(1)) + 'G';
    if (a >= 1e6) return trim((v / 1e6).toFixed(1)) + 'M';
    if (a >= 1e3) return trim((v / 1e3).toFixed(1)) + 'k';
    if (Number.isInteger(v)) return String(v);
    return trim(v.toFixed(a >= 10 ? 0 : 1));
  }

  function fmtMs(ms) {
    if (ms === null || !Number.isFinite(ms)) return '—';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
    const s = Math.floor(ms / 1000);
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
  }

  const fmtAxisMs = (ms) => (ms < 1000 ? `${fmtCompact(ms)} ms` : `${fmtCompact(ms / 1000)} s`);

  function fmtBytes(b) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) {
      b /= 1024;
      i += 1;
    }
    return `${i > 0 && b < 10 ? b.toFixed(1) : Math.round(b)} ${units[i]}`;
  }

  function fmtSeconds(s) {
    if (!Number.isFinite(s)) return '> 10 s';
    return s < 1 ? `${+(s * 1000).toFixed(2)} ms` : `${+s.toFixed(2)} s`;
  }

  const shardLabel = (id) => `shard ${Number.parseInt(id.replace(/^\D+/, ''), 10) || 0}`;
  const sum = (items, f) => items.reduce((acc, x) => acc + f(x), 0);
  const plural = (n, noun) => `${fmtInt(n)} ${noun}${n === 1 ? '' : 's'}`;

  // ---- charts -----------------------------------------------------------------------------------

  /** A time-series line chart of the last `span` ms on a <canvas>, sized by CSS, sharp on HiDPI. */
  class LineChart {
    constructor(canvas, { format, minTop, fill }) {
      this.canvas = canvas;
      this.ctx = canvas.getContext('2d');
      this.format = format;
      this.minTop = minTop;
      this.fill = fill;
      this.series = []; // [{name, colorVar, points: [[t, v|null], …]}]
      this.now = 0;
      this.span = MIN_SPAN_MS;
      new ResizeObserver(() => this.draw()).observe(canvas);
    }

    set(series, now, span) {
      this.series = series;
      this.now = now;
      this.span = span;
      this.draw();
    }

    draw() {
      const { canvas, ctx } = this;
      const w = canvas.clientWidth;
      const h = canvas.clientHeight;
      if (!w || !h || !this.now) return;
      const dpr = window.devicePixelRatio || 1;
      if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
        canvas.width = Math.round(w * dpr);
        canvas.height = Math.round(h * dpr);
      }
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      const css = getComputedStyle(document.documentElement);
      const color = (name) => css.getPropertyValue(name).trim();

      let max = 0;
      for (const s of this.series) for (const [, v] of s.points) if (v !== null && v > max) max = v;
      const step = niceStep(Math.max(max, this.minTop) / 4);
      const ticks = [0, 1, 2, 3, 4].map((i) => i * step);
      const top = ticks[4];

      ctx.font = '11px system-ui, sans-serif';
      const labels = ticks.map(this.format);
      const left = Math.ceil(Math.max(...labels.map((l) => ctx.measureText(l).width))) + 10;
      const plot = { x: left, y: 6, w: w - left - 4, h: h - 6 - 20 };
      const xOf = (t) => plot.x + plot.w * (1 - (this.now - t) / this.span);
      const yOf = (v) => plot.y + plot.h * (1 - v / top);

      ctx.lineWidth = 1;
      ctx.strokeStyle = color('--chart-grid');
      ctx.fillStyle = color('--chart-text');
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ticks.forEach((v, i) => {
        const y = Math.round(yOf(v)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(plot.x, y);
        ctx.lineTo(plot.x + plot.w, y);
        ctx.stroke();
        ctx.fillText(labels[i], plot.x - 6, y);
      });
      ctx.textBaseline = 'top';
      // At most five intervals on the time axis.
      const every = [15_000, 30_000, 60_000, 120_000].find((ms) => this.span / ms <= 5) || 300_000;
      for (let ago = 0; ago <= this.span; ago += every) {
        const x = xOf(this.now - ago);
        const atEdge = ago === this.span;
        if (!atEdge && x - plot.x < 24) continue; // would collide with the left edge's label
        ctx.textAlign = ago === 0 ? 'right' : atEdge ? 'left' : 'center';
        const label = ago === 0 ? 'now' : ago < 60_000 ? `−${ago / 1000} s` : `−${ago / 60_000} min`;
        ctx.fillText(label, x, plot.y + plot.h + 6);
      }

      ctx.save();
      ctx.beginPath();
      ctx.rect(plot.x, plot.y - 2, plot.w, plot.h + 4);
      ctx.clip();
      ctx.lineJoin = 'round';
      ctx.lineWidth = 1.75;
      for (const s of this.series) {
        const stroke = color(s.colorVar);
        // Runs of points without a gap (a failed poll or a restart leaves one).
        const runs = [];
        let run = [];
        let lastT = -Infinity;
        for (const [t, v] of s.points) {
          if (v === null || t - lastT > 3.5 * POLL_MS) {
            if (run.length) runs.push(run);
            run = [];
          }
          if (v !== null) run.push([xOf(t), yOf(v)]);
          lastT = t;
        }
        if (run.length) runs.push(run);
        for (const r of runs) {
          if (this.fill) {
            ctx.beginPath();
            ctx.moveTo(r[0][0], yOf(0));
            for (const [x, y] of r) ctx.lineTo(x, y);
            ctx.lineTo(r[r.length - 1][0], yOf(0));
            ctx.closePath();
            ctx.globalAlpha = 0.14;
            ctx.fillStyle = stroke;
            ctx.fill();
            ctx.globalAlpha = 1;
          }
          ctx.beginPath();
          ctx.strokeStyle = stroke;
          r.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
          if (r.length === 1) ctx.lineTo(r[0][0] + 1, r[0][1]);
          ctx.stroke();
        }
      }
      ctx.restore();
    }
  }

  /** The smallest of 1, 2, 2.5, 5 × 10^n that is ≥ raw. */
  function niceStep(raw) {
    const exp = 10 ** Math.floor(Math.log10(raw));
    const f = raw / exp;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * exp;
  }

  // ---- state ------------------------------------------------------------------------------------

  let token = readToken();
  let timer = null;
  let failures = 0;
  let retryAt = 0;
  let disconnectReason = '';
  let polls = 0;
  let prev = null; // the previous snapshot's counters
  let recent = []; // counters of the last AVG_MS, for averaged figures
  const lastBad = {}; // failure kind → server time its counter last moved
  const series = { ingest: [], delivery: [], lag: new Map() };
  let lists = { objects: -1, failed: -1, at: 0, objectList: [], failureList: [] };
  let serverNow = 0;
  let firstT = null; // server time of the first snapshot since the page opened or weir restarted

  const charts = {
    ingest: new LineChart($('[data-testid="ingest-chart"]'), { format: fmtCompact, minTop: 4, fill: true }),
    lag: new LineChart($('[data-testid="lag-chart"]'), { format: fmtAxisMs, minTop: 100, fill: false }),
    delivery: new LineChart($('[data-testid="delivery-chart"]'), { format: fmtCompact, minTop: 4, fill: true }),
  };

  function readToken() {
    try {
      return localStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return '';
    }
  }

  function storeToken(value) {
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      // Storage disabled: the token lasts until the page is closed.
    }
  }

  // ---- polling ----------------------------------------------------------------------------------

  class AuthError extends Error {}
  /** weir did not answer, or answered with an error: expected while it is down or restarting. */
  class NetError extends Error {}

  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    try {
      let response;
      try {
        response = await fetch(path, { headers, signal: abort.signal, cache: 'no-store' });
      } catch (e) {
        throw new NetError(e.name === 'AbortError' ? 'no answer within 5 s' : 'weir is unreachable');
      }
      if (response.status === 401) throw new AuthError('unauthorized');
      if (!response.ok) throw new NetError(`${path} answered HTTP ${response.status}`);
      return await response.json();
    } finally {
      clearTimeout(timeout);
    }
  }

  async function poll() {
    timer = null;
    let delay = POLL_MS;
    try {
      const status = await api('/api/status');
      update(status);
      await refreshLists(status);
      failures = 0;
      polls += 1;
      document.body.dataset.polls = String(polls);
      setConnection('live');
    } catch (e) {
      if (e instanceof AuthError) {
        askForToken(Boolean(token));
        return; // polling resumes when a token is entered
      }
      if (!(e instanceof NetError)) console.error(e); // a bug in this page, not a network problem
      failures += 1;
      delay = Math.min(POLL_MS * 2 ** failures, MAX_RETRY_MS);
      retryAt = Date.now() + delay;
      disconnectReason = e.message || String(e);
      setConnection('disconnected');
    }
    timer = setTimeout(poll, delay);
  }

  function restartPolling() {
    if (timer) clearTimeout(timer);
    timer = null;
    poll();
  }

  function setConnection(state) {
    const badge = $('[data-testid="connection"]');
    badge.dataset.state = state;
    const text = badge.querySelector('.conn-text');
    if (state === 'live') text.textContent = 'live';
    else if (state === 'auth') text.textContent = 'waiting for a token';
    else if (state === 'disconnected') {
      const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      text.textContent = `disconnected: ${disconnectReason} · retrying ${seconds ? `in ${seconds} s` : 'now'}`;
    } else text.textContent = 'connecting…';
    $('#main').classList.toggle('stale', state !== 'live');
  }

  // The retry countdown.
  setInterval(() => {
    if ($('[data-testid="connection"]').dataset.state === 'disconnected') setConnection('disconnected');
  }, 1000);

  // ---- token ------------------------------------------------------------------------------------

  function askForToken(rejected) {
    setConnection('auth');
    if (rejected) {
      token = '';
      storeToken('');
    }
    const why = $('#token-why');
    why.classList.toggle('rejected', rejected);
    why.replaceChildren(
      ...(rejected
        ? ['The token was rejected; enter a valid one.']
        : ['This weir requires a token (', el('code', {}, 'server.auth_tokens'), ' in weir.toml).']),
    );
    const dialog = $('#token-dialog');
    if (!dialog.open) dialog.showModal();
    $('#token-input').focus();
  }

  $('#token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#token-input');
    const value = input.value.trim();
    if (!value) return;
    token = value;
    storeToken(value);
    input.value = '';
    $('#token-dialog').close();
    setConnection('connecting');
    restartPolling();
  });
  // Without a token nothing can be shown, so Escape does not dismiss the dialog.
  $('#token-dialog').addEventListener('cancel', (event) => event.preventDefault());

  // ---- one snapshot -----------------------------------------------------------------------------

  function counters(s) {
    const requests = Object.entries(s.gateway.requests);
    return {
      t: s.now_ms,
      started: s.started_ms,
      accepted: s.gateway.records_accepted,
      bytes: s.gateway.bytes_accepted,
      latency: s.gateway.put_latency_seconds,
      errors5xx: sum(requests, ([code, n]) => (Number(code) >= 500 ? n : 0)),
      throttled: sum(requests, ([code, n]) => (code === '429' ? n : 0)),
      fsyncs: sum(s.streams, (st) => st.fsyncs),
      appendFailures: sum(s.streams, (st) => st.append_failures),
      delivered: sum(s.deliveries, (d) => d.records_delivered),
      deliveredBytes: sum(s.deliveries, (d) => d.bytes_delivered),
      objects: sum(s.deliveries, (d) => d.objects_delivered),
      deliveryFailures: sum(s.deliveries, (d) => d.delivery_failures),
      failedRecords: sum(s.deliveries, (d) => d.records_failed),
    };
  }

  /** Per second between two counter readings; null across a counter reset. */
  function rate(now, before, key) {
    const dt = (now.t - before.t) / 1000;
    const d = now[key] - before[key];
    return dt > 0 && d >= 0 ? d / dt : null;
  }

  function push(points, t, v) {
    points.push([t, v]);
    while (points.length && points[0][0] < t - WINDOW_MS) points.shift();
  }

  function update(s) {
    const c = counters(s);
    serverNow = c.t;
    firstT ??= c.t;
    if (prev && (c.started !== prev.started || c.t <= prev.t)) {
      // weir restarted (its counters began again) or the clock stepped back: no rates across it.
      prev = null;
      recent = [];
      firstT = null;
      push(series.ingest, c.t, null);
      push(series.delivery, c.t, null);
    }
    const rates = { ingest: null, ingestBytes: null, fsyncs: null, delivery: null, deliveryBytes: null, objects: null };
    if (prev) {
      rates.ingest = rate(c, prev, 'accepted');
      rates.ingestBytes = rate(c, prev, 'bytes');
      rates.fsyncs = rate(c, prev, 'fsyncs');
      const deliveryNow = rate(c, prev, 'delivered');
      push(series.ingest, c.t, rates.ingest);
      push(series.delivery, c.t, deliveryNow);
      for (const [kind, key] of [
        ['api5xx', 'errors5xx'],
        ['api429', 'throttled'],
        ['append', 'appendFailures'],
        ['bucket', 'deliveryFailures'],
      ]) {
        if (c[key] > prev[key]) lastBad[kind] = c.t;
      }
    }
    recent.push(c);
    while (recent.length > 1 && recent[0].t < c.t - AVG_MS) recent.shift();
    const oldest = recent[0];
    if (oldest !== c) {
      rates.delivery = rate(c, oldest, 'delivered');
      rates.deliveryBytes = rate(c, oldest, 'deliveredBytes');
      rates.objects = rate(c, oldest, 'objects');
    }

    const lagNow = new Set();
    let maxLag = null;
    for (const d of s.deliveries) {
      for (const sh of d.shards) {
        const name = s.deliveries.length > 1 ? `${d.name} ${shardLabel(sh.shard_id)}` : shardLabel(sh.shard_id);
        if (!series.lag.has(name)) series.lag.set(name, []);
        push(series.lag.get(name), c.t, sh.millis_behind_latest);
        lagNow.add(name);
        maxLag = Math.max(maxLag ?? 0, sh.millis_behind_latest);
      }
    }
    for (const [name, points] of series.lag) {
      if (lagNow.has(name)) continue;
      push(points, c.t, null);
      if (points.every(([, v]) => v === null)) series.lag.delete(name);
    }

    renderHeader(s);
    renderFigures(s, c, rates, maxLag);
    renderPipeline(s, c, rates, maxLag);
    renderReconciliation(s);
    prev = c;
  }

  function renderHeader(s) {
    $('#version').textContent = `v${s.version}`;
    const streams = s.streams.length;
    const deliveries = s.deliveries.length;
    $('#uptime').textContent =
      `up ${fmtMs(s.now_ms - s.started_ms)} · ${plural(streams, 'stream')} · ${plural(deliveries, 'delivery stream')}`;
  }

  function renderFigures(s, c, rates, maxLag) {
    const ingest = $('[data-testid="ingest-rate"]');
    ingest.textContent = fmtRate(rates.ingest);
    ingest.dataset.value = rates.ingest === null ? '' : String(rates.ingest);
    ingest.dataset.total = String(c.accepted);
    $('#ingest-sub').textContent =
      rates.ingestBytes === null
        ? `${fmtInt(c.accepted)} records accepted since start`
        : `${fmtBytes(rates.ingestBytes)}/s · ${fmtInt(c.accepted)} records accepted since start`;

    const delivery = $('[data-testid="delivery-rate"]');
    delivery.textContent = fmtRate(rates.delivery);
    delivery.dataset.value = rates.delivery === null ? '' : String(rates.delivery);
    delivery.dataset.total = String(c.delivered);
    $('#delivery-sub').textContent =
      rates.deliveryBytes === null
        ? `${fmtInt(c.delivered)} records delivered since start`
        : `${fmtBytes(rates.deliveryBytes)}/s · ${fmtRate(rates.objects)} objects/s · ` +
          `${fmtInt(c.delivered)} records since start`;

    const lag = $('[data-testid="max-lag"]');
    lag.textContent = maxLag === null ? '—' : fmtMs(maxLag);
    lag.dataset.value = maxLag === null ? '' : String(maxLag);

    const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, c.t - firstT));
    charts.ingest.set([{ name: 'records/s', colorVar: '--series-1', points: series.ingest }], c.t, span);
    charts.delivery.set([{ name: 'records/s', colorVar: '--series-2', points: series.delivery }], c.t, span);
    const lagSeries = [...series.lag].map(([name, points], i) => ({
      name,
      points,
      colorVar: `--series-${(i % 8) + 1}`,
    }));
    charts.lag.set(lagSeries, c.t, span);
    for (const [key, chart] of Object.entries(charts)) {
      const points = key === 'lag' ? [] : series[key];
      const canvas = chart.canvas;
      canvas.dataset.points = String(points.filter(([, v]) => v !== null).length);
      const last = points.length ? points[points.length - 1][1] : null;
      canvas.dataset.last = last === null ? '' : String(last);
    }
    charts.lag.canvas.dataset.series = String(lagSeries.length);

    const legend = $('#lag-legend');
    legend.replaceChildren(
      ...lagSeries.slice(0, LEGEND_MAX).map((ls) => {
        const swatch = el('span', { className: 'swatch' });
        swatch.style.setProperty('--swatch', `var(${ls.colorVar})`);
        const last = ls.points[ls.points.length - 1][1];
        return el('li', {}, swatch, `${ls.name} ${last === null ? '—' : fmtMs(last)}`);
      }),
      ...(lagSeries.length > LEGEND_MAX ? [el('li', {}, `+${lagSeries.length - LEGEND_MAX} more`)] : []),
    );
  }

  /** The q-quantile's bucket bound from the requests between two cumulative histograms. */
  function latencyQuantile(now, before, q) {
    const total = now.count - (before ? before.count : 0);
    if (total <= 0) return null;
    for (let i = 0; i < now.buckets.length; i += 1) {
      const [bound, n] = now.buckets[i];
      const then = before && before.buckets[i] ? before.buckets[i][1] : 0;
      if (n - then >= q * total) return bound;
    }
    return Infinity; // above the highest bound
  }

  function setStage(name, health, lines, title) {
    const stage = $(`[data-testid="stage-${name}"]`);
    stage.dataset.health = health;
    stage.querySelector('.pill').textContent = health === 'not-configured' ? 'not configured' : health;
    stage.querySelector('.stage-detail').replaceChildren(...lines.map((l) => el('div', {}, l)));
    stage.title = title || '';
  }

  function renderPipeline(s, c, rates, maxLag) {
    const recentBad = (kind) => lastBad[kind] !== undefined && c.t - lastBad[kind] < RECENT_MS;

    const p50 = latencyQuantile(c.latency, prev && prev.latency, 0.5);
    const p99 = latencyQuantile(c.latency, prev && prev.latency, 0.99);
    setStage(
      'api',
      recentBad('api5xx') ? 'failing' : recentBad('api429') ? 'lagging' : 'ok',
      [
        `${fmtRate(rates.ingest)} records/s`,
        p99 === null ? 'no requests this second' : `p50 ≤ ${fmtSeconds(p50)} · p99 ≤ ${fmtSeconds(p99)}`,
        `${fmtInt(c.errors5xx)} 5xx · ${fmtInt(c.throttled)} throttled since start`,
      ],
      'Health: failing after a 5xx answer, lagging after a 429 (write queue full), in the last 30 s.',
    );

    const shards = sum(s.streams, (st) => st.shards.length);
    setStage(
      'stream',
      s.streams.length === 0 ? 'not-configured' : recentBad('append') ? 'failing' : 'ok',
      [
        `${s.streams.map((st) => st.name).join(', ')} · ${plural(shards, 'shard')}`,
        `${fmtBytes(sum(s.streams, (st) => st.disk_bytes))} on disk · ${plural(sum(s.streams, (st) => st.segments), 'segment')}`,
        `${fmtRate(rates.fsyncs)} fsyncs/s · ${fmtInt(c.appendFailures)} failed appends`,
      ],
      'Health: failing after a failed append (disk full, I/O error) in the last 30 s.',
    );

    const deliveries = s.deliveries;
    const freshness = deliveries.length ? Math.max(...deliveries.map((d) => d.data_freshness_ms)) : null;
    const buffered = sum(deliveries, (d) => d.records_buffered);
    let deliveryHealth = 'ok';
    if (!deliveries.length) deliveryHealth = 'not-configured';
    else if (deliveries.some((d) => !d.healthy)) deliveryHealth = 'failing';
    else if (maxLag > LAG_WARN_MS || freshness > FRESHNESS_WARN_MS) deliveryHealth = 'lagging';
    setStage(
      'delivery',
      deliveryHealth,
      deliveries.length
        ? [
            `max lag ${fmtMs(maxLag)} · freshness ${fmtMs(freshness)}`,
            `${fmtInt(buffered)} records buffered`,
            `${fmtInt(c.failedRecords)} failed processing`,
          ]
        : ['no delivery streams'],
      'Health: failing while object writes fail or records were lost to retention; lagging when reads are ' +
        `over ${LAG_WARN_MS / 1000} s behind a shard or a buffered record is over ${FRESHNESS_WARN_MS / 1000} s old.`,
    );

    const destinations = [...new Set(deliveries.map((d) => d.destination))];
    setStage(
      'bucket',
      !deliveries.length ? 'not-configured' : recentBad('bucket') ? 'failing' : 'ok',
      deliveries.length
        ? [
            `${fmtInt(c.objects)} objects · ${fmtBytes(c.deliveredBytes)}`,
            `${fmtInt(c.deliveryFailures)} failed writes (retried)`,
            destinations.length === 1 ? destinations[0] : `${destinations.length} destinations`,
          ]
        : ['no delivery streams'],
      destinations.length ? `Objects under ${destinations.join(', ')}` : '',
    );
    $('#objects-where').textContent = destinations.length === 1 ? `under ${destinations[0]}` : '';

    const w = s.warehouse;
    if (!w) {
      setStage('warehouse', 'not-configured', ['off in weir.toml ([warehouse] enabled = false)']);
    } else {
      const tables = w.tables || [];
      let health = 'ok';
      if (tables.some((t) => !t.healthy)) health = 'failing';
      else if (w.load_lag_ms > FRESHNESS_WARN_MS) health = 'lagging';
      const unbalanced = tables.filter((t) => !t.balanced).map((t) => t.table);
      setStage(
        'warehouse',
        health,
        [
          `${fmtInt(w.rows_loaded)} rows · ${fmtInt(w.objects_loaded)} objects loaded`,
          `${fmtInt(w.objects_pending)} objects pending`,
          `load lag ${fmtMs(w.load_lag_ms)}`,
          unbalanced.length ? `not reconciled: ${unbalanced.join(', ')}` : 'every table reconciles',
        ],
        'Health: failing while objects cannot be read or loaded (retried); lagging when loading an object ' +
          `takes over ${FRESHNESS_WARN_MS / 1000} s. DuckDB at ${w.path}.`,
      );
    }
  }

  function renderReconciliation(s) {
    const table = $('[data-testid="reconciliation"]');
    table.parentElement.hidden = s.deliveries.length === 0;
    table.closest('.card').querySelector('.empty').hidden = s.deliveries.length !== 0;
    table.tBodies[0].replaceChildren(
      ...s.deliveries.map((d) => {
        const settled = d.records_delivered + d.records_dropped + d.records_failed;
        const off = d.records_in - settled - d.records_buffered;
        const holds = off === 0;
        const check = el(
          'span',
          { className: 'check' },
          el('span', { className: `badge ${holds ? 'holds' : 'off'}` }, holds ? '✓ holds' : `✗ off by ${fmtInt(off)}`),
          el(
            'span',
            { className: 'sum' },
            `${fmtInt(d.records_in)} = ${fmtInt(settled)} settled + ${fmtInt(d.records_buffered)} in flight`,
          ),
        );
        return el(
          'tr',
          {
            dataset: {
              delivery: d.name,
              in: String(d.records_in),
              delivered: String(d.records_delivered),
              dropped: String(d.records_dropped),
              failed: String(d.records_failed),
              buffered: String(d.records_buffered),
              holds: String(holds),
            },
          },
          el('td', {}, d.name),
          el('td', { className: 'num' }, fmtInt(d.records_in)),
          el('td', { className: 'num' }, fmtInt(d.records_delivered)),
          el('td', { className: 'num' }, fmtInt(d.records_dropped)),
          el('td', { className: 'num' }, fmtInt(d.records_failed)),
          el('td', { className: 'num' }, fmtInt(d.records_buffered)),
          el('td', {}, check),
        );
      }),
    );
  }

  // ---- lists ------------------------------------------------------------------------------------

  async function refreshLists(s) {
    const objects = sum(s.deliveries, (d) => d.objects_delivered);
    const failed = sum(s.deliveries, (d) => d.records_failed);
    const due = Date.now() - lists.at >= LIST_REFRESH_MS;
    const [objectList, failureList] = await Promise.all([
      objects !== lists.objects || due ? api(`/api/objects?limit=${LIST_LIMIT}`) : null,
      failed !== lists.failed || due ? api(`/api/errors?limit=${LIST_LIMIT}`) : null,
    ]);
    lists = {
      objects,
      failed,
      at: due ? Date.now() : lists.at,
      objectList: objectList || lists.objectList,
      failureList: failureList || lists.failureList,
    };
    // Rendered on every poll, fetched or not, so that ages ("3 s ago") stay current.
    renderObjects(lists.objectList);
    renderFailures(lists.failureList);
  }

  const ago = (ms) => (serverNow - ms < 1000 ? 'just now' : `${fmtMs(serverNow - ms)} ago`);

  function renderObjects(objects) {
    $('#objects-empty').hidden = objects.length > 0;
    $('[data-testid="objects"]').replaceChildren(
      ...objects.map((o) =>
        el(
          'li',
          { dataset: { key: o.key, delivery: o.delivery, records: String(o.records) } },
          el(
            'div',
            { className: 'item-head' },
            el('span', { className: 'key', title: o.key }, o.key),
            el(
              'span',
              { className: 'item-meta' },
              `${o.delivery} · ${fmtInt(o.records)} records · ${fmtBytes(o.size)} · ${ago(o.written_ms)}`,
            ),
          ),
          o.preview.length
            ? el(
                'div',
                { className: 'preview', dataset: { testid: 'object-preview' } },
                ...o.preview.map((line) => el('div', { title: line }, line)),
              )
            : null,
        ),
      ),
    );
  }

  function renderFailures(failures) {
    $('#failures-empty').hidden = failures.length > 0;
    $('[data-testid="failures"]').replaceChildren(
      ...failures.map((f) =>
        el(
          'li',
          { dataset: { testid: 'failure', delivery: f.delivery, code: f.error_code } },
          el(
            'div',
            { className: 'item-head' },
            el('span', { className: 'error-code' }, f.error_code),
            el('span', { className: 'item-meta' }, `${f.delivery} · arrived ${ago(f.arrival_ms)}`),
          ),
          el('div', { className: 'error-message' }, f.error_message),
          f.raw_data_preview ? el('div', { className: 'preview' }, el('div', {}, f.raw_data_preview)) : null,
        ),
      ),
    );
  }

  // Charts follow the colour scheme.
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    for (const chart of Object.values(charts)) chart.draw();
  });

  poll();
})();
