// The dashboard's one script (served from /assets; the Content-Security-Policy allows no inline script).
// It follows /live (server-sent events of the viewer's tenants) and, on an event — or every
// data-refresh-seconds on pages whose figures move without one — fetches the page again and
// swaps in each element marked data-live (matched by id), keeping focus where it was. It draws
// the uPlot charts whose data the page carries in <script type="application/json" class="chart-data">.
'use strict';

(function () {
  const status = document.getElementById('live-status');
  const say = (text) => {
    if (status !== null) status.textContent = text;
  };
  const clock = () => new Date().toISOString().slice(11, 19) + ' UTC';

  const COLORS = ['#0a4fb0', '#a4161a', '#0b6b2b', '#7a4a00', '#5b2a86', '#00606b'];

  function drawCharts(root) {
    if (typeof window.uPlot !== 'function') return;
    for (const block of root.querySelectorAll('script.chart-data')) {
      const holder = block.parentElement;
      if (holder === null || holder.dataset.drawn === '1') continue;
      holder.dataset.drawn = '1';
      let spec;
      try {
        spec = JSON.parse(block.textContent || '{}');
      } catch {
        continue;
      }
      for (const chart of spec.charts || []) {
        const box = document.createElement('figure');
        box.className = 'chart';
        const caption = document.createElement('figcaption');
        caption.textContent = chart.title + ' (' + chart.unit + ')';
        box.appendChild(caption);
        holder.appendChild(box);
        const labels = spec.labels;
        const byVersion = chart.x === 'version';
        const series = [
          byVersion ? { label: 'version', value: (u, v) => (labels && labels[v] !== undefined ? labels[v] : v) } : { label: 'time' },
          ...spec.versions.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 2, dash: i % 2 === 1 ? [6, 4] : undefined, points: { show: true } })),
        ];
        const options = {
          width: Math.min(560, Math.max(320, holder.clientWidth / 2 - 16)),
          height: 220,
          series,
          scales: { x: { time: !byVersion } },
          axes: byVersion ? [{ values: (u, splits) => splits.map((v) => (labels && labels[v] !== undefined ? labels[v] : '')) }, {}] : [{}, {}],
        };
        new window.uPlot(options, chart.data, box);
      }
    }
  }

  async function refresh(why) {
    let response;
    try {
      response = await fetch(location.href, { headers: { 'x-beacon-refresh': '1' }, credentials: 'same-origin', cache: 'no-store' });
    } catch {
      say('Live updates: the server cannot be reached (' + clock() + ')');
      return;
    }
    if (response.status === 401) {
      say('Your session has ended: reload the page to sign in again.');
      return;
    }
    if (!response.ok) return;
    const next = new DOMParser().parseFromString(await response.text(), 'text/html');
    const focused = document.activeElement;
    const focusId = focused && focused.id ? focused.id : null;
    const focusHref = focused && focused.getAttribute ? focused.getAttribute('href') : null;
    for (const fresh of next.querySelectorAll('[data-live][id]')) {
      const current = document.getElementById(fresh.id);
      if (current === null) continue;
      const adopted = document.importNode(fresh, true);
      current.replaceWith(adopted);
      drawCharts(adopted);
    }
    // Focus stays on the same control or link when it was inside a part that was replaced.
    if (focused !== null && !document.contains(focused)) {
      const again = focusId !== null ? document.getElementById(focusId) : focusHref !== null ? document.querySelector('main a[href="' + CSS.escape(focusHref) + '"]') : null;
      if (again !== null) again.focus();
    }
    say('Updated at ' + clock() + (why ? ' (' + why + ')' : ''));
  }

  let pending = null;
  function soon(why) {
    if (pending !== null) clearTimeout(pending);
    pending = setTimeout(() => {
      pending = null;
      void refresh(why);
    }, 300);
  }

  function follow() {
    const source = new EventSource('/live');
    source.onopen = () => say('Live updates: connected (' + clock() + ')');
    source.onmessage = (message) => {
      let reason = 'event';
      try {
        const e = JSON.parse(message.data);
        reason = e.reason + (e.object ? ' ' + e.object : '');
      } catch {
        // an event we cannot read still means the page may have changed
      }
      soon(reason);
    };
    source.onerror = () => say('Live updates: reconnecting…');
  }

  document.addEventListener('DOMContentLoaded', () => {
    drawCharts(document);
    follow();
    const every = Number(document.body.dataset.refreshSeconds);
    if (every > 0)
      setInterval(() => {
        if (document.visibilityState === 'visible') void refresh('');
      }, every * 1000);
  });
})();
