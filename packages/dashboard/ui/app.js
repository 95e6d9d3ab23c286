/**
 * The Sluice dashboard UI: one vanilla JavaScript module, no framework, no build step.
 *
 * - Everything it shows comes from the JSON API next to it. URLs are relative (`api/overview`), so
 *   the dashboard works under any mount path; views live in the URL hash (`#/queues/emails?state=dead`).
 * - Everything from the server goes into the page as text nodes or attribute values, never as HTML:
 *   a payload holding `<script>` is shown as those characters. (The Content-Security-Policy forbids
 *   inline scripts as well, as a second line.)
 * - Live: a Server-Sent Events stream (read with `fetch`, so it can carry the bearer token) says which
 *   queues changed and the current view re-reads itself; a slower poll covers the rest.
 * - Every action asks for confirmation in a dialog and sends the CSRF token the API issued.
 */

const TOKEN_KEY = 'sluice.dashboard.token';
const PAGE_SIZE = 25;
/** Groups per page of a queue's group list. */
const GROUP_PAGE_SIZE = 10;
const STATES = ['ready', 'scheduled', 'running', 'completed', 'dead', 'cancelled'];

/** States whose count is the records the queue's retention keeps, not every job that got there. */
const KEPT_STATES = ['completed', 'dead', 'cancelled'];
const KEPT_TITLE =
  'Records the queue’s retention keeps, not every job that ever got here (see the totals since the queue was created)';

/** What can be done to a job in each state, in the order the buttons appear. */
const JOB_ACTIONS_BY_STATE = {
  ready: ['cancel', 'remove'],
  scheduled: ['promote', 'cancel', 'remove'],
  running: ['cancel'],
  completed: ['remove'],
  dead: ['retry', 'remove'],
  cancelled: ['retry', 'remove'],
};

/** The job actions: labels, wording, and the single-job request. */
const JOB_ACTIONS = {
  retry: {
    label: 'Retry',
    done: 'sent back to ready',
    message: 'The job goes back to ready with a fresh set of attempts.',
    request: (url) => api(`${url}/retry`, { method: 'POST' }),
  },
  promote: {
    label: 'Run now',
    done: 'due now',
    message: 'The job becomes due at once instead of at its scheduled time.',
    request: (url) => api(`${url}/promote`, { method: 'POST' }),
  },
  cancel: {
    label: 'Cancel',
    done: 'cancelled',
    danger: true,
    confirmLabel: 'Cancel the job',
    message: 'A waiting job will not run; a running one is told to abort. It ends as cancelled.',
    request: (url) => api(`${url}/cancel`, { method: 'POST' }),
  },
  remove: {
    label: 'Delete',
    done: 'deleted',
    danger: true,
    confirmLabel: 'Delete',
    message: 'The job and its history are deleted for good. This cannot be undone.',
    request: (url) => api(url, { method: 'DELETE' }),
  },
};

const app = {
  /** `GET api/session`: title, readOnly, csrfToken, refreshIntervalMs, login. */
  session: null,
  /** The mounted view: `{ title, crumbs, queues(), refresh(), root }`. */
  view: null,
  /** Server clock minus browser clock, so relative times do not depend on the browser's clock. */
  skew: 0,
  pollTimer: 0,
  refreshTimer: 0,
  refreshing: false,
  refreshAgain: false,
  live: { controller: null, key: '' },
};

// ------------------------------------------------------------------------------------ DOM helpers

/**
 * Creates an element. `attrs` keys: `class`, `dataset`, `on<event>` (listeners), anything else is an
 * attribute (`true` for a bare attribute; `null`, `undefined` and `false` are skipped). Children are
 * nodes or values shown as text.
 */
function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.setAttribute('class', String(value));
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const byId = (id) => document.getElementById(id);

/** Replaces an element's children, with the same rules as `h` (nullish and `false` are skipped). */
function put(el, ...children) {
  el.replaceChildren();
  return build(el, {}, children);
}

// ------------------------------------------------------------------------------------ formatting

const numberFormat = new Intl.NumberFormat();
const fmtNumber = (n) => numberFormat.format(n);
const fmtPercent = (ratio) => `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.1 ? 1 : 0)}%`;

function fmtDuration(ms) {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(abs < 10_000 ? 1 : 0)} s`;
  if (abs < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (abs < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

/** A duration as the exact whole unit it is (`7 d`, `36 h`, `90 min`), for settings people typed. */
function fmtExactDuration(ms) {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1000],
  ]) {
    if (ms % size === 0) return `${fmtNumber(ms / size)} ${unit}`;
  }
  return `${fmtNumber(ms)} ms`;
}

/** A retention in words: what a queue keeps of its finished or dead jobs. */
function fmtRetention(r) {
  switch (r.keep) {
    case 'none':
      return 'none (deleted as they finish)';
    case 'all':
      return 'all';
    case 'count':
      return (
        `the newest ${fmtNumber(r.count)}` +
        (r.ageMs === undefined ? '' : `, none older than ${fmtExactDuration(r.ageMs)}`)
      );
    case 'age':
      return `for ${fmtExactDuration(r.ageMs)}`;
    default:
      return pretty(r);
  }
}

const AGE_UNITS = { min: 60_000, h: 3_600_000, d: 86_400_000 };

const serverNow = () => Date.now() + app.skew;

function fmtRelative(ms) {
  const delta = ms - serverNow();
  if (Math.abs(delta) < 1000) return 'just now';
  return delta < 0 ? `${fmtDuration(-delta)} ago` : `in ${fmtDuration(delta)}`;
}

/** A `<time>` showing a relative time, with the absolute one on hover. */
function time(ms) {
  if (ms === undefined || ms === null) return h('span', { class: 'muted' }, '—');
  const date = new Date(ms);
  return h('time', { datetime: date.toISOString(), title: date.toLocaleString() }, fmtRelative(ms));
}

/** A date and time in the browser's zone, e.g. "Mon 5 Jan, 09:00:00". */
function fmtDateTime(ms) {
  return new Date(ms).toLocaleString([], {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** A schedule's next tick: absolute and relative, the following ticks on hover. */
function nextRun(entry) {
  const [next, ...later] = entry.upcoming.length ? entry.upcoming : [entry.nextRunAt];
  const date = new Date(next);
  return h(
    'time',
    {
      datetime: date.toISOString(),
      title: later.length ? `then ${later.map(fmtDateTime).join(', ')}` : date.toLocaleString(),
    },
    fmtDateTime(next),
    h('span', { class: 'muted' }, ` (${fmtRelative(next)})`),
  );
}

function fmtPeriod(ms) {
  return ms % 1000 === 0 ? (ms === 1000 ? 's' : `${ms / 1000} s`) : `${fmtNumber(ms)} ms`;
}

/** Pretty JSON for a `<pre>`; shown with `textContent`, so markup in strings stays text. */
function pretty(value) {
  if (value === undefined) return '';
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function stateBadge(state, attrs = {}) {
  return h('span', { class: `badge state state-${state}`, ...attrs }, state);
}

// ------------------------------------------------------------------------------------ API client

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `request failed (${status})`);
    this.status = status;
    this.code = body?.error?.code ?? 'unknown';
    this.login = body?.error?.login ?? 'token';
  }
}

function authHeaders(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

/** Calls the API; state-changing calls carry the CSRF token and get one more try with a fresh token. */
async function api(path, { method = 'GET', body, retry = true } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  if (method !== 'GET') headers['X-CSRF-Token'] = app.session?.csrfToken ?? '';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  const payload = await res.json().catch(() => null);
  if (res.ok) {
    if (payload && typeof payload.now === 'number') app.skew = payload.now - Date.now();
    return payload;
  }
  const error = new ApiError(res.status, payload);
  if (error.code === 'csrf' && retry && method !== 'GET') {
    // The token expired with a server restart: fetch a new one and try once more.
    app.session = await api('session');
    return api(path, { method, body, retry: false });
  }
  throw error;
}

const enc = encodeURIComponent;

// ------------------------------------------------------------------------------------ feedback

function toast(message, kind = 'ok') {
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  byId('toasts').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

/** Asks before an action. Resolves `true` when confirmed. */
function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false }) {
  const dialog = byId('confirm');
  const ok = byId('confirm-ok');
  const cancel = byId('confirm-cancel');
  // One question at a time: a second one while the first is open is declined, the first left as it is.
  if (dialog.open) return Promise.resolve(false);
  byId('confirm-title').textContent = title;
  byId('confirm-message').textContent = message;
  ok.textContent = confirmLabel;
  ok.className = danger ? 'danger' : '';
  return new Promise((resolve) => {
    const finish = (result) => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      resolve(result);
    };
    const onOk = () => finish(true);
    const onCancel = () => finish(false);
    const onClose = () => finish(false);
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    cancel.focus();
  });
}

/** A button that confirms, calls the API, reports, and refreshes the view. */
function actionButton({ label, action, title, message, confirmLabel, danger, small, request, done }) {
  const button = h(
    'button',
    {
      type: 'button',
      class: `${danger ? 'danger' : 'secondary'}${small ? ' small' : ''}`,
      dataset: { action },
    },
    label,
  );
  button.addEventListener('click', async () => {
    if (!(await confirmDialog({ title, message, confirmLabel: confirmLabel ?? label, danger }))) return;
    button.disabled = true;
    try {
      const result = await request();
      toast(done ? done(result) : `${label}: done`);
    } catch (error) {
      if (!handleAuthError(error)) toast(error.message, 'error');
    } finally {
      button.disabled = false;
      await refreshNow();
    }
  });
  return button;
}

const canAct = () => app.session && !app.session.readOnly;

// ------------------------------------------------------------------------------------ charts

/** Completed (bars) and failed (stacked on top) jobs per minute, as inline SVG. */
function historyChart(history, { width = 600, height = 110 } = {}) {
  const n = Math.max(1, history.length);
  const max = Math.max(1, ...history.map((b) => b.completed + b.failed));
  const slot = width / n;
  const bar = Math.max(1, slot - 1);
  const label = `${history.reduce((t, b) => t + b.completed, 0)} completed and ${history.reduce(
    (t, b) => t + b.failed,
    0,
  )} failed over the last ${n} minutes`;
  const chart = s('svg', {
    class: 'chart',
    viewBox: `0 0 ${width} ${height + 18}`,
    role: 'img',
    'aria-label': label,
  });
  chart.append(
    s('line', { class: 'chart-grid', x1: 0, x2: width, y1: 0.5, y2: 0.5 }),
    s('line', { class: 'chart-axis', x1: 0, x2: width, y1: height + 0.5, y2: height + 0.5 }),
  );
  history.forEach((b, i) => {
    const x = i * slot;
    const hc = (b.completed / max) * height;
    const hf = (b.failed / max) * height;
    const at = new Date(b.minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    chart.append(
      s(
        'g',
        {},
        s('title', {}, `${at} — ${b.completed} completed, ${b.failed} failed`),
        s('rect', { class: 'chart-hit', x, y: 0, width: slot, height }),
        hc > 0 ? s('rect', { class: 'chart-completed', x, y: height - hc, width: bar, height: hc }) : null,
        hf > 0 ? s('rect', { class: 'chart-failed', x, y: height - hc - hf, width: bar, height: hf }) : null,
      ),
    );
  });
  chart.append(
    s('text', { class: 'chart-label', x: 2, y: height + 14 }, `${n} min ago`),
    s('text', { class: 'chart-label', x: width - 2, y: height + 14, 'text-anchor': 'end' }, 'now'),
    s('text', { class: 'chart-label', x: 2, y: 12 }, `${fmtNumber(max)}/min`),
  );
  return h(
    'figure',
    { class: 'chart-figure' },
    chart,
    h(
      'figcaption',
      { class: 'legend' },
      h('span', { class: 'legend-completed' }, 'completed'),
      h('span', { class: 'legend-failed' }, 'failed'),
    ),
  );
}

function throughputLine(lastHour) {
  return h(
    'p',
    { class: 'rates' },
    h('strong', {}, fmtNumber(lastHour.completed)),
    ' completed · ',
    h('strong', {}, fmtNumber(lastHour.failed)),
    ' failed · ',
    h(
      'strong',
      { class: lastHour.failureRate > 0.05 ? 'text-danger' : '' },
      fmtPercent(lastHour.failureRate),
    ),
    ' failure rate',
    h('span', { class: 'muted' }, ` · ${lastHour.perMinute.toFixed(1)}/min`),
  );
}

function rateLimits(limits, queue) {
  if (limits.length === 0) return h('p', { class: 'muted' }, 'No rate limit reported by live workers.');
  return h(
    'ul',
    { class: 'limits' },
    limits.map((l) =>
      h(
        'li',
        { dataset: { limit: l.key } },
        h(
          'span',
          { class: 'limit-key' },
          queue ? h('a', { href: `#/queues/${enc(queue)}/limits/${enc(l.key)}` }, l.key) : l.key,
          l.leadCapped
            ? h(
                'span',
                { class: 'badge badge-warn', title: 'The lead of new slots is at its cap' },
                'lead capped',
              )
            : null,
          l.marginCapped
            ? h(
                'span',
                {
                  class: 'badge badge-warn',
                  title: 'The margin is at its cap: requests leave later than it allows for',
                },
                'margin capped',
              )
            : null,
        ),
        h('meter', {
          min: 0,
          max: l.allowed,
          value: l.used ?? 0,
          high: Math.max(1, l.allowed * 0.8),
          optimum: 0,
          title: `${l.used ?? '?'} of ${l.allowed}`,
        }),
        h(
          'span',
          { class: 'limit-usage' },
          `${l.used === null ? '?' : fmtNumber(l.used)} / ${fmtNumber(l.allowed)} per ${fmtPeriod(l.periodMs)}`,
          l.per === 'call' ? ' (calls)' : '',
        ),
      ),
    ),
  );
}

/** A table cell labelled with its column, for the stacked layout of narrow screens (`.table.stack`). */
function td(label, attrs, ...children) {
  return h('td', { 'data-label': label, ...attrs }, ...children);
}

function workersTable(workers) {
  if (workers === null) return h('p', { class: 'muted' }, 'This store does not report workers.');
  if (workers.length === 0) return h('p', { class: 'muted' }, 'No live workers.');
  return h(
    'table',
    { class: 'table stack', dataset: { testid: 'workers' } },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Worker'),
        h('th', {}, 'Started'),
        h('th', {}, 'Seen'),
        h('th', {}, 'Pipelines'),
      ),
    ),
    h(
      'tbody',
      {},
      workers.map((w) =>
        h(
          'tr',
          { dataset: { worker: w.id } },
          td(
            'Worker',
            {},
            h('code', { class: 'worker-id' }, w.id),
            h('div', { class: 'muted' }, `${w.host} · pid ${w.pid}`),
          ),
          td('Started', {}, time(w.startedAt)),
          td('Seen', {}, time(w.lastSeenAt)),
          td(
            'Pipelines',
            {},
            h(
              'ul',
              { class: 'plain' },
              w.pipelines.map((p) =>
                h(
                  'li',
                  {},
                  h('a', { href: `#/queues/${enc(p.queue)}` }, p.name),
                  h(
                    'span',
                    { class: 'muted' },
                    ` on ${p.queue} · ${p.inFlight} running · concurrency ${p.concurrency}`,
                  ),
                  p.paused ? h('span', { class: 'badge badge-warn' }, 'paused') : null,
                ),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

// ------------------------------------------------------------------------------------ views

/** Queues above this many are shown as a list unless the user picked the cards. */
const LIST_VIEW_FROM = 12;
const LAYOUT_KEY = 'sluice.dashboard.overviewLayout';

/** Filters of the overview: which queues a chip keeps. */
const QUEUE_FILTERS = {
  all: { label: 'All', keep: () => true },
  paused: { label: 'Paused', keep: (q) => q.paused },
  dead: { label: 'With dead jobs', keep: (q) => q.counts.dead > 0 },
  failing: { label: 'Failures last hour', keep: (q) => q.lastHour.failed > 0 },
  backlog: { label: 'With a backlog', keep: (q) => q.counts.ready + q.counts.scheduled > 0 },
  idle: { label: 'No live pipeline', keep: (q) => q.pipelines === 0 },
};

/** Columns the list view sorts on; numbers sort largest first. */
const QUEUE_SORTS = {
  name: { label: 'Queue', value: (q) => q.name },
  ready: { label: 'ready', value: (q) => q.counts.ready },
  scheduled: { label: 'scheduled', value: (q) => q.counts.scheduled },
  running: { label: 'running', value: (q) => q.counts.running },
  completed: { label: 'completed', value: (q) => q.counts.completed },
  dead: { label: 'dead', value: (q) => q.counts.dead },
  cancelled: { label: 'cancelled', value: (q) => q.counts.cancelled },
  throughput: { label: 'Done/h', value: (q) => q.lastHour.completed },
  failures: { label: 'Fail %', value: (q) => q.lastHour.failureRate },
  workers: { label: 'Pipelines', value: (q) => q.pipelines },
};

function overviewView(query) {
  let queueNames = [];
  let latest = null;
  const chosenLayout = query.get('layout') ?? localStorage.getItem(LAYOUT_KEY);
  const options = {
    search: query.get('q') ?? '',
    filter: Object.hasOwn(QUEUE_FILTERS, query.get('filter') ?? '') ? query.get('filter') : 'all',
    sort: Object.hasOwn(QUEUE_SORTS, query.get('sort') ?? '') ? query.get('sort') : 'name',
  };
  const summary = h('p', { class: 'muted' });
  const cards = h('div');
  const workers = h('div');

  /** Keeps the view's options in the URL without a navigation (hash changes would re-mount the view). */
  const remember = () => {
    const params = new URLSearchParams();
    if (options.search) params.set('q', options.search);
    if (options.filter !== 'all') params.set('filter', options.filter);
    if (options.sort !== 'name') params.set('sort', options.sort);
    if (layoutChoice) params.set('layout', layoutChoice);
    const text = params.toString();
    history.replaceState(null, '', `#/${text ? `?${text}` : ''}`);
  };
  let layoutChoice = chosenLayout === 'list' || chosenLayout === 'cards' ? chosenLayout : null;
  const layout = () => layoutChoice ?? ((latest?.queues.length ?? 0) > LIST_VIEW_FROM ? 'list' : 'cards');

  const search = h('input', {
    type: 'search',
    name: 'q',
    value: options.search,
    placeholder: 'Filter queues by name',
    maxlength: 200,
    'aria-label': 'Filter queues by name',
    dataset: { testid: 'queue-search' },
  });
  search.addEventListener('input', () => {
    options.search = search.value.trim();
    remember();
    renderQueues();
  });
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Show' });
  const layoutSwitch = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Layout' });
  const shown = h('span', { class: 'muted small', dataset: { testid: 'queue-shown' } });
  const root = h(
    'div',
    {},
    h('section', { class: 'page-head' }, h('h1', {}, 'Queues'), summary),
    h(
      'div',
      { class: 'toolbar overview-toolbar' },
      search,
      chips,
      h('span', { class: 'spacer' }),
      shown,
      layoutSwitch,
    ),
    cards,
    h('section', { class: 'card' }, h('h2', {}, 'Live workers'), workers),
  );

  const renderControls = () => {
    const counts = latest ? latest.queues : [];
    put(
      chips,
      Object.entries(QUEUE_FILTERS).map(([key, f]) => {
        const n = counts.filter(f.keep).length;
        const button = h(
          'button',
          {
            type: 'button',
            class: 'chip',
            'aria-pressed': String(options.filter === key),
            dataset: { filter: key },
          },
          f.label,
          key === 'all' ? null : h('span', { class: 'chip-count' }, fmtNumber(n)),
        );
        button.addEventListener('click', () => {
          options.filter = key;
          remember();
          renderControls();
          renderQueues();
        });
        return button;
      }),
    );
    put(
      layoutSwitch,
      ['list', 'cards'].map((kind) => {
        const button = h(
          'button',
          {
            type: 'button',
            class: 'chip',
            'aria-pressed': String(layout() === kind),
            dataset: { layout: kind },
          },
          kind === 'list' ? 'List' : 'Cards',
        );
        button.addEventListener('click', () => {
          layoutChoice = kind;
          localStorage.setItem(LAYOUT_KEY, kind);
          remember();
          renderControls();
          renderQueues();
        });
        return button;
      }),
    );
  };

  const matching = () => {
    if (!latest) return [];
    const needle = options.search.toLowerCase();
    const keep = QUEUE_FILTERS[options.filter].keep;
    const list = latest.queues.filter((q) => keep(q) && q.name.toLowerCase().includes(needle));
    if (options.sort !== 'name') {
      const value = QUEUE_SORTS[options.sort].value;
      list.sort((a, b) => value(b) - value(a) || a.name.localeCompare(b.name));
    }
    return list;
  };

  const sortHeader = (key, attrs = {}) => {
    const button = h(
      'button',
      { type: 'button', class: 'sort', dataset: { sort: key } },
      QUEUE_SORTS[key].label,
      options.sort === key ? h('span', { 'aria-hidden': 'true' }, key === 'name' ? ' ▲' : ' ▼') : null,
    );
    button.addEventListener('click', () => {
      options.sort = key;
      remember();
      renderQueues();
    });
    return h(
      'th',
      {
        ...attrs,
        'aria-sort': options.sort === key ? (key === 'name' ? 'ascending' : 'descending') : null,
      },
      button,
    );
  };

  const row = (q) =>
    h(
      'tr',
      { dataset: { testid: 'queue-row', queue: q.name } },
      td(
        'Queue',
        { class: 'queue-name' },
        h('a', { href: `#/queues/${enc(q.name)}` }, q.name),
        q.paused ? h('span', { class: 'badge badge-warn', dataset: { testid: 'paused' } }, 'paused') : null,
      ),
      STATES.map((state) =>
        td(
          state,
          { class: `num count-cell${q.counts[state] ? '' : ' zero'}`, dataset: { state } },
          h('a', { href: `#/queues/${enc(q.name)}?state=${state}` }, fmtNumber(q.counts[state])),
        ),
      ),
      td('Done/h', { class: 'num' }, fmtNumber(q.lastHour.completed)),
      td(
        'Fail %',
        { class: `num${q.lastHour.failureRate > 0.05 ? ' text-danger' : ''}` },
        q.lastHour.completed + q.lastHour.failed ? fmtPercent(q.lastHour.failureRate) : '—',
      ),
      td(
        'Pipelines',
        { class: 'num' },
        q.pipelines ? `${q.pipelines} · ${q.inFlight} running` : h('span', { class: 'muted' }, 'none'),
      ),
    );

  const list = (queues) =>
    h(
      'div',
      { class: 'card table-card' },
      h(
        'table',
        { class: 'table dense', dataset: { testid: 'queue-list' } },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            sortHeader('name'),
            STATES.map((state) => sortHeader(state, { class: `num state-head state-${state}` })),
            sortHeader('throughput', { class: 'num' }),
            sortHeader('failures', { class: 'num' }),
            sortHeader('workers', { class: 'num' }),
          ),
        ),
        h('tbody', {}, queues.map(row)),
      ),
    );

  const renderQueues = () => {
    if (!latest) return;
    const all = latest.queues;
    if (all.length === 0) {
      put(
        cards,
        h(
          'p',
          { class: 'empty' },
          'No queues yet. A queue appears when its first job is added or a worker starts on it.',
        ),
      );
      put(shown);
      return;
    }
    const queues = matching();
    shown.textContent =
      queues.length === all.length
        ? `${fmtNumber(all.length)} shown`
        : `${queues.length} of ${all.length} shown`;
    if (queues.length === 0) {
      put(cards, h('p', { class: 'empty' }, 'No queue matches.'));
    } else if (layout() === 'list') {
      put(cards, list(queues));
    } else {
      put(cards, h('div', { class: 'cards' }, queues.map(card)));
    }
  };

  const card = (q) =>
    h(
      'article',
      { class: 'card queue-card', dataset: { testid: 'queue-card', queue: q.name } },
      h(
        'header',
        { class: 'card-head' },
        h('h2', {}, h('a', { href: `#/queues/${enc(q.name)}` }, q.name)),
        q.paused ? h('span', { class: 'badge badge-warn', dataset: { testid: 'paused' } }, 'paused') : null,
      ),
      h(
        'dl',
        { class: 'counts' },
        STATES.map((state) =>
          h(
            'a',
            {
              class: `count state-${state}`,
              href: `#/queues/${enc(q.name)}?state=${state}`,
              title: KEPT_STATES.includes(state) ? KEPT_TITLE : null,
              dataset: { state },
            },
            h('dt', {}, state),
            h('dd', {}, fmtNumber(q.counts[state])),
          ),
        ),
      ),
      historyChart(q.history, { width: 360, height: 70 }),
      throughputLine(q.lastHour),
      rateLimits(q.rateLimits, q.name),
      h(
        'p',
        { class: 'muted small' },
        `${q.pipelines} live pipeline${q.pipelines === 1 ? '' : 's'} · ${q.inFlight} running`,
      ),
    );

  return {
    title: 'Overview',
    crumbs: [],
    root,
    queues: () => queueNames,
    async refresh() {
      const data = await api('overview');
      latest = data;
      queueNames = data.queues.map((q) => q.name);
      const paused = data.queues.filter((q) => q.paused).length;
      summary.textContent =
        `${data.queues.length} queue${data.queues.length === 1 ? '' : 's'}` +
        (paused ? ` · ${paused} paused` : '') +
        (data.workers ? ` · ${data.workers.length} live worker${data.workers.length === 1 ? '' : 's'}` : '');
      renderControls();
      renderQueues();
      put(workers, workersTable(data.workers));
    },
  };
}

function queueView(queue, query) {
  const state = STATES.includes(query.get('state')) ? query.get('state') : 'ready';
  const page = Math.max(1, Number.parseInt(query.get('page') ?? '1', 10) || 1);
  const nameFilter = query.get('name') ?? '';
  const textFilter = query.get('text') ?? '';
  const groupFilter = query.get('group') ?? '';
  const groupPage = Math.max(1, Number.parseInt(query.get('gpage') ?? '1', 10) || 1);
  const link = (changes) => {
    const next = new URLSearchParams({ state });
    if (nameFilter) next.set('name', nameFilter);
    if (groupFilter) next.set('group', groupFilter);
    if (textFilter) next.set('text', textFilter);
    if (groupPage > 1) next.set('gpage', String(groupPage));
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === '') next.delete(k);
      else next.set(k, String(v));
    }
    if (next.get('page') === '1') next.delete('page');
    if (next.get('gpage') === '1') next.delete('gpage');
    return `#/queues/${enc(queue)}?${next}`;
  };

  const heading = h('h1', {}, queue);
  const actions = h('div', { class: 'actions' });
  const chart = h('div');
  const rates = h('div');
  const limits = h('div');
  const workers = h('div');
  const schedules = h('div');
  const config = h('div');
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Job states' });
  const bulk = h('div', { class: 'actions' });
  /** Ids of the jobs ticked on this page; kept across live refreshes while they stay on it. */
  const selected = new Set();
  let pageIds = [];
  const selectionBar = h('div', { class: 'selection', dataset: { testid: 'selection' } });
  const rowActions = canAct() ? JOB_ACTIONS_BY_STATE[state] : [];
  const jobUrl = (id) => `queues/${enc(queue)}/jobs/${enc(id)}`;

  const renderSelection = () => {
    if (rowActions.length === 0) {
      put(selectionBar);
      return;
    }
    const n = selected.size;
    const ids = [...selected];
    put(
      selectionBar,
      h(
        'span',
        { class: 'muted', dataset: { testid: 'selected-count' } },
        n ? `${n} selected` : 'Select jobs to act on several at once',
      ),
      rowActions.map((action) => {
        const info = JOB_ACTIONS[action];
        const button = h(
          'button',
          {
            type: 'button',
            class: `${info.danger ? 'danger' : 'secondary'} small`,
            dataset: { bulk: action },
            disabled: n === 0,
          },
          `${info.label} selected`,
        );
        button.addEventListener('click', async () => {
          const ok = await confirmDialog({
            title: `${info.label}: ${n} job${n === 1 ? '' : 's'}?`,
            message: `${info.message} (${ids.join(', ').slice(0, 300)})`,
            confirmLabel: `${info.label} ${n}`,
            danger: info.danger,
          });
          if (!ok) return;
          button.disabled = true;
          try {
            const r = await api(`queues/${enc(queue)}/jobs/bulk`, { method: 'POST', body: { action, ids } });
            const refused = r.results.filter((x) => !x.ok);
            toast(
              `${r.done} job${r.done === 1 ? '' : 's'} ${info.done}` +
                (refused.length
                  ? ` · ${refused.length} left alone (${refused[0].id}: ${refused[0].error})`
                  : ''),
              refused.length && !r.done ? 'error' : 'ok',
            );
            selected.clear();
          } catch (error) {
            if (!handleAuthError(error)) toast(error.message, 'error');
          } finally {
            renderSelection();
            await refreshNow();
          }
        });
        return button;
      }),
    );
  };

  const jobs = h('div', { class: 'table-wrap' });
  const pager = h('div', { class: 'pager' });

  const lookup = h(
    'form',
    { class: 'inline-form', role: 'search', dataset: { testid: 'lookup' } },
    h(
      'label',
      {},
      'Job id ',
      h('input', { name: 'id', required: true, maxlength: 256, placeholder: 'e.g. 42' }),
    ),
    h('button', { type: 'submit', class: 'secondary' }, 'Open'),
  );
  lookup.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = lookup.elements.namedItem('id').value.trim();
    if (id) location.hash = `#/queues/${enc(queue)}/jobs/${enc(id)}`;
  });
  const filter = h(
    'form',
    { class: 'inline-form', role: 'search', dataset: { testid: 'filter' } },
    h('label', {}, 'Name ', h('input', { name: 'name', value: nameFilter, maxlength: 200 })),
    h('label', {}, 'Group ', h('input', { name: 'group', value: groupFilter, maxlength: 256 })),
    h('label', {}, 'Payload contains ', h('input', { name: 'text', value: textFilter, maxlength: 200 })),
    h('button', { type: 'submit', class: 'secondary' }, 'Filter'),
    nameFilter || textFilter || groupFilter
      ? h('a', { href: link({ name: null, text: null, group: null, page: null }) }, 'Clear')
      : null,
  );
  filter.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = link({
      name: filter.elements.namedItem('name').value.trim(),
      group: filter.elements.namedItem('group').value.trim(),
      text: filter.elements.namedItem('text').value.trim(),
      page: null,
    });
  });

  /** The groups card: the list (rebuilt on each refresh) above the limit form (built once). */
  const groupsBody = h('div', {});
  /**
   * Sets or clears one group's rate-limit numbers; built once and never moved by a refresh, so what
   * someone types survives refreshes and the field being typed in keeps its focus.
   */
  const groupLimitForm = h(
    'form',
    { class: 'inline-form group-limit-form', dataset: { testid: 'group-limit-form' } },
    h(
      'label',
      {},
      'Group ',
      h('input', { name: 'group', required: true, maxlength: 256, value: groupFilter, placeholder: 'name' }),
    ),
    h(
      'label',
      {},
      'Allowed ',
      h('input', { name: 'allowed', type: 'number', min: 1, max: 1000000, step: 1, required: true }),
    ),
    h(
      'label',
      {},
      'per (ms) ',
      h('input', { name: 'periodMs', type: 'number', min: 1, max: 86400000, step: 1, required: true }),
    ),
    h('button', { type: 'submit', dataset: { action: 'set-group-limit' } }, 'Set group limit'),
  );
  const setGroupLimit = async (group, body, done) => {
    try {
      await api(`queues/${enc(queue)}/groups/${enc(group)}/limit`, { method: 'PUT', body });
      toast(done);
    } catch (error) {
      if (!handleAuthError(error)) toast(error.message, 'error');
    }
    await refreshNow();
  };
  groupLimitForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const group = groupLimitForm.elements.namedItem('group').value;
    const allowed = Number(groupLimitForm.elements.namedItem('allowed').value);
    const periodMs = Number(groupLimitForm.elements.namedItem('periodMs').value);
    if (!group || !Number.isInteger(allowed) || allowed < 1 || !Number.isInteger(periodMs) || periodMs < 1) {
      return;
    }
    const numbers = `${fmtNumber(allowed)} per ${fmtPeriod(periodMs)}`;
    const ok = await confirmDialog({
      title: `Set group ${group} to ${numbers}?`,
      message: `Workers on every node check these numbers for group "${group}" from their next reserve, instead of the groups.rateLimit their pipeline declares (pipelines without one put no rate limit on groups). Jobs already started in the window still count.`,
      confirmLabel: 'Set group limit',
    });
    if (ok) await setGroupLimit(group, { allowed, periodMs }, `Group ${group}: ${numbers}`);
  });
  const clearGroupLimit = h(
    'button',
    { type: 'button', class: 'secondary', dataset: { action: 'clear-group-limit' } },
    'Clear',
  );
  clearGroupLimit.addEventListener('click', async () => {
    const group = groupLimitForm.elements.namedItem('group').value;
    if (!group) {
      groupLimitForm.elements.namedItem('group').reportValidity();
      return;
    }
    const ok = await confirmDialog({
      title: `Clear the numbers of group ${group}?`,
      message: `Workers go back to the groups.rateLimit their pipeline declares for group "${group}".`,
      confirmLabel: 'Clear group limit',
    });
    if (ok) await setGroupLimit(group, { clear: true }, `Group ${group}: back to the pipeline's numbers`);
  });
  groupLimitForm.append(clearGroupLimit);
  const groupLimitSection = h(
    'div',
    { dataset: { testid: 'group-limit-section' } },
    h('h3', {}, 'Rate limit of one group'),
    h(
      'p',
      { class: 'muted small' },
      'For pipelines that declare groups.rateLimit: every worker checks these numbers for the group from its next reserve, instead of its own.',
    ),
    groupLimitForm,
  );
  groupLimitSection.hidden = true;
  const groups = h('div', { dataset: { testid: 'groups' } }, groupsBody, groupLimitSection);
  /** Under a group's name: the numbers set for it alone, and (when they can be set) a way to change them. */
  const groupLimitLine = (x, canSet) => {
    const numbers = x.limitOverride;
    const change = canSet
      ? h(
          'button',
          {
            type: 'button',
            class: 'button-link',
            dataset: { action: 'edit-group-limit' },
            title: `Change or clear the numbers of group ${x.group}`,
          },
          'change',
        )
      : null;
    change?.addEventListener('click', () => {
      const field = (name) => groupLimitForm.elements.namedItem(name);
      field('group').value = x.group;
      field('allowed').value = String(numbers.allowed);
      field('periodMs').value = String(numbers.periodMs);
      field('allowed').focus();
      groupLimitForm.scrollIntoView({ block: 'nearest' });
    });
    return h(
      'div',
      {
        class: 'group-limit small',
        dataset: { testid: 'group-limit' },
        title:
          'Set for this group: every worker checks these numbers instead of its pipeline’s groups.rateLimit',
      },
      'limit ',
      h('strong', {}, `${fmtNumber(numbers.allowed)} per ${fmtPeriod(numbers.periodMs)}`),
      change ? [' · ', change] : null,
    );
  };
  /** Built once, so what someone is typing survives live refreshes. */
  const addForm = h(
    'form',
    { class: 'add-job-form', dataset: { testid: 'add-job' } },
    h(
      'label',
      { class: 'wide' },
      'Payload (JSON) ',
      h('textarea', { name: 'data', rows: 3, required: true, spellcheck: 'false' }, '{}'),
    ),
    h('label', {}, 'Group ', h('input', { name: 'group', maxlength: 256, placeholder: 'none' })),
    h('label', {}, 'Name ', h('input', { name: 'name', maxlength: 256, placeholder: queue })),
    h(
      'label',
      {},
      'Priority ',
      h('input', { name: 'priority', type: 'number', min: 0, max: 1000000, step: 1, placeholder: '0' }),
    ),
    h(
      'label',
      {},
      'Delay (s) ',
      h('input', { name: 'delay', type: 'number', min: 0, step: 1, placeholder: '0' }),
    ),
    h('button', { type: 'submit', dataset: { action: 'add-job' } }, 'Add job'),
  );
  addForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const field = (name) => addForm.elements.namedItem(name).value.trim();
    let data;
    try {
      data = JSON.parse(field('data'));
    } catch (error) {
      toast(`The payload is not JSON: ${error.message}`, 'error');
      return;
    }
    const body = { data };
    if (field('group')) body.group = field('group');
    if (field('name')) body.name = field('name');
    if (field('priority')) body.priority = Number(field('priority'));
    if (field('delay')) body.delayMs = Number(field('delay')) * 1000;
    const button = addForm.querySelector('button');
    button.disabled = true;
    try {
      const r = await api(`queues/${enc(queue)}/jobs`, { method: 'POST', body });
      toast(
        r.duplicate
          ? `Job ${r.id} already exists: nothing added`
          : `Job ${r.id} added${body.group ? ` to group ${body.group}` : ''}`,
      );
    } catch (error) {
      if (!handleAuthError(error)) toast(error.message, 'error');
    } finally {
      button.disabled = false;
    }
    await refreshNow();
  });

  const root = h(
    'div',
    {},
    h('section', { class: 'page-head' }, heading, actions),
    h(
      'div',
      { class: 'grid-2' },
      h('article', { class: 'card' }, h('h2', {}, 'Last hour'), chart, rates),
      h(
        'article',
        { class: 'card' },
        h('h2', {}, 'Rate limits'),
        limits,
        h('h2', {}, 'Live workers'),
        workers,
      ),
    ),
    h(
      'div',
      { class: 'grid-2' },
      h('article', { class: 'card' }, h('h2', {}, 'Cron schedules'), schedules),
      h('article', { class: 'card' }, h('h2', {}, 'Configuration'), config),
    ),
    h(
      'div',
      { class: 'grid-2' },
      h('article', { class: 'card' }, h('h2', {}, 'Groups'), groups),
      canAct() ? h('article', { class: 'card' }, h('h2', {}, 'Add a job'), addForm) : null,
    ),
    h(
      'section',
      { class: 'card' },
      tabs,
      h('div', { class: 'toolbar' }, lookup, filter, bulk),
      selectionBar,
      jobs,
      pager,
    ),
  );

  const renderActions = (q) => {
    put(
      heading,
      queue,
      ' ',
      q.paused ? h('span', { class: 'badge badge-warn', dataset: { testid: 'paused' } }, 'paused') : null,
    );
    if (!canAct()) {
      put(actions);
      return;
    }
    const concurrencyForm = h(
      'form',
      { class: 'inline-form', dataset: { testid: 'concurrency' } },
      h(
        'label',
        {},
        'Concurrency ',
        h('input', {
          name: 'concurrency',
          type: 'number',
          min: 1,
          max: 10000,
          required: true,
          value: q.concurrency ?? '',
          placeholder: 'default',
        }),
      ),
      h('button', { type: 'submit', class: 'secondary', dataset: { action: 'set-concurrency' } }, 'Set'),
    );
    concurrencyForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const value = Number(concurrencyForm.elements.namedItem('concurrency').value);
      if (!Number.isInteger(value) || value < 1) return;
      const ok = await confirmDialog({
        title: `Set concurrency of ${queue}?`,
        message: `Every worker's pipelines on "${queue}" will run at most ${value} handler calls at once.`,
        confirmLabel: `Set to ${value}`,
      });
      if (!ok) return;
      try {
        await api(`queues/${enc(queue)}/concurrency`, { method: 'PUT', body: { concurrency: value } });
        toast(`Concurrency of ${queue} set to ${value}`);
      } catch (error) {
        if (!handleAuthError(error)) toast(error.message, 'error');
      }
      await refreshNow();
    });
    put(
      actions,
      q.paused
        ? actionButton({
            label: 'Resume',
            action: 'resume',
            title: `Resume ${queue}?`,
            message: 'Workers start taking jobs from this queue again.',
            request: () => api(`queues/${enc(queue)}/resume`, { method: 'POST' }),
            done: () => `${queue} resumed`,
          })
        : actionButton({
            label: 'Pause',
            action: 'pause',
            title: `Pause ${queue}?`,
            message: 'Workers on every node stop starting jobs from this queue; running jobs finish.',
            danger: true,
            request: () => api(`queues/${enc(queue)}/pause`, { method: 'POST' }),
            done: () => `${queue} paused`,
          }),
      concurrencyForm,
      q.concurrency !== null
        ? actionButton({
            label: 'Clear override',
            action: 'clear-concurrency',
            title: 'Clear the concurrency override?',
            message: 'Each pipeline goes back to the concurrency it was configured with.',
            request: () =>
              api(`queues/${enc(queue)}/concurrency`, { method: 'PUT', body: { concurrency: null } }),
            done: () => 'Concurrency override cleared',
          })
        : null,
    );
  };

  const renderBulk = () => {
    if (!canAct()) {
      put(bulk);
      return;
    }
    const buttons = [];
    if (state === 'dead') {
      buttons.push(
        actionButton({
          label: 'Retry all dead',
          action: 'retry-dead',
          title: 'Retry every dead job?',
          message: `Every job in the dead-letter queue of "${queue}" goes back to ready with a fresh set of attempts.`,
          request: () => api(`queues/${enc(queue)}/dead/retry`, { method: 'POST' }),
          done: (r) => `${r.count} job${r.count === 1 ? '' : 's'} sent back to ready`,
        }),
      );
    }
    if (state === 'dead' || state === 'completed' || state === 'cancelled') {
      buttons.push(
        actionButton({
          label: `Purge ${state}`,
          action: `purge-${state}`,
          title: `Delete every ${state} job?`,
          message: `Every ${state} job of "${queue}" is deleted for good. This cannot be undone.`,
          confirmLabel: 'Delete them',
          danger: true,
          request: () => api(`queues/${enc(queue)}/${state}/purge`, { method: 'POST' }),
          done: (r) => `${r.count} ${state} job${r.count === 1 ? '' : 's'} deleted`,
        }),
      );
    }
    put(bulk, ...buttons);
  };
  renderBulk();

  const whenColumn = {
    ready: ['Due', (j) => time(j.runAt)],
    scheduled: ['Runs', (j) => time(j.runAt)],
    running: [
      'Started',
      (j) => [
        time(j.startedAt),
        j.workerId
          ? h(
              'div',
              { class: 'muted small worker-id', dataset: { testid: 'job-worker' } },
              `on ${j.workerId}`,
            )
          : null,
      ],
    ],
    completed: ['Finished', (j) => time(j.finishedAt)],
    dead: ['Died', (j) => time(j.finishedAt)],
    cancelled: ['Cancelled', (j) => time(j.finishedAt)],
  }[state];

  const selectAll = h('input', {
    type: 'checkbox',
    'aria-label': 'Select every job on this page',
    dataset: { select: 'all' },
  });
  selectAll.addEventListener('change', () => {
    for (const id of pageIds) {
      if (selectAll.checked) selected.add(id);
      else selected.delete(id);
    }
    for (const box of jobs.querySelectorAll('input[data-select]:not([data-select="all"])')) {
      box.checked = selectAll.checked;
      box.closest('tr')?.classList.toggle('is-selected', selectAll.checked);
    }
    syncSelectAll();
    renderSelection();
  });
  const syncSelectAll = () => {
    const n = pageIds.filter((id) => selected.has(id)).length;
    selectAll.checked = n > 0 && n === pageIds.length;
    selectAll.indeterminate = n > 0 && n < pageIds.length;
  };
  const checkbox = (id) => {
    const box = h('input', {
      type: 'checkbox',
      'aria-label': `Select job ${id}`,
      checked: selected.has(id),
      dataset: { select: id },
    });
    box.addEventListener('change', () => {
      if (box.checked) selected.add(id);
      else selected.delete(id);
      box.closest('tr')?.classList.toggle('is-selected', box.checked);
      syncSelectAll();
      renderSelection();
    });
    return box;
  };

  const renderJobs = (list) => {
    const grouped = list.jobs.some((j) => j.group !== undefined);
    pageIds = list.jobs.map((j) => j.id);
    // Jobs that left this page (they changed state, or were deleted) are no longer selected.
    for (const id of selected) if (!pageIds.includes(id)) selected.delete(id);
    syncSelectAll();
    renderSelection();
    if (list.jobs.length === 0) {
      put(jobs, h('p', { class: 'empty' }, list.filter ? 'No job matches the filter.' : `No ${state} jobs.`));
    } else {
      put(
        jobs,
        h(
          'table',
          { class: 'table jobs stack', dataset: { testid: 'jobs' } },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              rowActions.length ? h('th', { class: 'select' }, selectAll) : null,
              h('th', {}, 'Id'),
              h('th', {}, 'Name'),
              grouped ? h('th', {}, 'Group') : null,
              h('th', {}, 'Attempts'),
              h('th', {}, 'Added'),
              h('th', {}, whenColumn[0]),
              h('th', {}, 'Detail'),
              h('th', {}, 'Payload'),
              rowActions.length ? h('th', {}, 'Actions') : null,
            ),
          ),
          h(
            'tbody',
            {},
            list.jobs.map((j) =>
              h(
                'tr',
                { dataset: { job: j.id }, class: selected.has(j.id) ? 'is-selected' : null },
                rowActions.length ? td('', { class: 'select' }, checkbox(j.id)) : null,
                td(
                  'Id',
                  {},
                  h('a', { href: `#/queues/${enc(queue)}/jobs/${enc(j.id)}` }, h('code', {}, j.id)),
                ),
                td('Name', {}, j.name),
                grouped
                  ? td(
                      'Group',
                      { dataset: { testid: 'job-group' } },
                      j.group === undefined
                        ? ''
                        : h('a', { href: link({ group: j.group, page: null }) }, j.group),
                    )
                  : null,
                td('Attempts', { class: 'num' }, `${j.attempt}/${j.maxAttempts}`),
                td('Added', {}, time(j.createdAt)),
                td(whenColumn[0], {}, whenColumn[1](j)),
                td(
                  'Detail',
                  { class: 'detail' },
                  j.reason ?? (j.lastError ? `${j.lastError.name}: ${j.lastError.message}` : ''),
                ),
                td('Payload', {}, h('code', { class: 'preview' }, j.preview)),
                rowActions.length
                  ? td(
                      'Actions',
                      { class: 'row-actions' },
                      rowActions.map((action) => {
                        const info = JOB_ACTIONS[action];
                        return actionButton({
                          label: info.label,
                          action,
                          small: true,
                          title: `${info.label}: job ${j.id}?`,
                          message: info.message,
                          confirmLabel: info.confirmLabel,
                          danger: info.danger,
                          request: () => info.request(jobUrl(j.id)),
                          done: () => `Job ${j.id} ${info.done}`,
                        });
                      }),
                    )
                  : null,
              ),
            ),
          ),
        ),
      );
    }
    const first = list.offset + 1;
    const last = list.offset + list.jobs.length;
    const info = list.filter
      ? `${list.jobs.length ? `${first}–${last}` : 'no'} matches` +
        (list.filter.complete ? '' : ` (searched the first ${fmtNumber(list.filter.scanned)} jobs)`)
      : list.jobs.length
        ? `${fmtNumber(first)}–${fmtNumber(last)} of ${fmtNumber(list.total)}`
        : '';
    put(
      pager,
      page > 1 ? h('a', { href: link({ page: page - 1 }), rel: 'prev' }, '← Previous') : h('span'),
      h('span', { class: 'muted' }, info),
      list.hasMore ? h('a', { href: link({ page: page + 1 }), rel: 'next' }, 'Next →') : h('span'),
    );
  };

  const renderGroups = (g) => {
    groupLimitSection.hidden = !(g !== null && canAct() && g.canSetLimit);
    if (g === null) {
      put(groupsBody, h('p', { class: 'muted' }, 'This store cannot list groups.'));
      return;
    }
    if (g.total === 0) {
      put(groupsBody, h('p', { class: 'muted' }, 'No group holds a job, and none is paused.'));
      return;
    }
    const first = g.offset + 1;
    const last = g.offset + g.groups.length;
    put(
      groupsBody,
      h(
        'p',
        { class: 'muted small', dataset: { testid: 'groups-summary' } },
        `${fmtNumber(g.total)} group${g.total === 1 ? '' : 's'} with jobs, busiest first` +
          (g.paused ? ` · ${fmtNumber(g.paused)} paused` : '') +
          (g.complete ? '' : ` · the first ${fmtNumber(g.scanLimit)} by name were read`),
      ),
      g.groups.length === 0
        ? h('p', { class: 'empty' }, 'No groups on this page.')
        : h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { class: 'table group-list', dataset: { testid: 'group-list' } },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', {}, 'Group'),
                  h('th', { class: 'num' }, 'Ready'),
                  h('th', { class: 'num' }, 'Active'),
                  h('th', {}, 'State'),
                  g.canPause ? h('th', {}, 'Actions') : null,
                ),
              ),
              h(
                'tbody',
                {},
                g.groups.map((x) =>
                  h(
                    'tr',
                    { dataset: { group: x.group } },
                    td(
                      'Group',
                      { class: 'group-name' },
                      h('a', { href: link({ group: x.group, page: null }), title: 'Show its jobs' }, x.group),
                      x.limitOverride ? groupLimitLine(x, canAct() && g.canSetLimit) : null,
                    ),
                    td('Ready', { class: 'num' }, fmtNumber(x.ready)),
                    td(
                      'Active',
                      { class: 'num', title: 'running, or retrying with its slot' },
                      fmtNumber(x.active),
                    ),
                    td(
                      'State',
                      { dataset: { testid: 'group-state' } },
                      x.paused
                        ? h('span', { class: 'badge badge-warn' }, 'paused')
                        : h('span', { class: 'muted' }, 'active'),
                      x.limitedUntil !== undefined
                        ? h(
                            'span',
                            {
                              class: 'badge',
                              dataset: { testid: 'group-limited' },
                              title:
                                'Held back by its rate limit: it takes no turn until its window has room',
                            },
                            `limited ${fmtDuration(Math.max(0, x.limitedUntil - g.now))}`,
                          )
                        : null,
                      x.weight !== undefined
                        ? h(
                            'span',
                            {
                              class: 'badge',
                              dataset: { testid: 'group-weight' },
                              title: `Takes ${x.weight} turns in a row each round`,
                            },
                            `weight ${x.weight}`,
                          )
                        : null,
                    ),
                    g.canPause
                      ? td(
                          'Actions',
                          { class: 'row-actions' },
                          x.paused
                            ? actionButton({
                                label: 'Resume',
                                action: 'resume-group',
                                small: true,
                                title: `Resume group ${x.group}?`,
                                message: `Workers start taking jobs of group "${x.group}" again.`,
                                request: () =>
                                  api(`queues/${enc(queue)}/groups/${enc(x.group)}/resume`, {
                                    method: 'POST',
                                  }),
                                done: () => `Group ${x.group} resumed`,
                              })
                            : actionButton({
                                label: 'Pause',
                                action: 'pause-group',
                                small: true,
                                danger: true,
                                title: `Pause group ${x.group}?`,
                                message: `Workers on every node stop starting jobs of group "${x.group}"; its running jobs finish, and the other groups go on.`,
                                request: () =>
                                  api(`queues/${enc(queue)}/groups/${enc(x.group)}/pause`, {
                                    method: 'POST',
                                  }),
                                done: () => `Group ${x.group} paused`,
                              }),
                        )
                      : null,
                  ),
                ),
              ),
            ),
          ),
      h(
        'div',
        { class: 'pager', dataset: { testid: 'groups-pager' } },
        groupPage > 1 ? h('a', { href: link({ gpage: groupPage - 1 }), rel: 'prev' }, '← Busier') : h('span'),
        h(
          'span',
          { class: 'muted' },
          g.groups.length ? `${fmtNumber(first)}–${fmtNumber(last)} of ${fmtNumber(g.total)}` : '',
        ),
        g.hasMore ? h('a', { href: link({ gpage: groupPage + 1 }), rel: 'next' }, 'Quieter →') : h('span'),
      ),
    );
  };

  const renderSchedules = (q) => {
    if (q.schedules.length === 0) {
      put(schedules, h('p', { class: 'muted' }, 'No cron schedules are configured for this queue.'));
      return;
    }
    put(
      schedules,
      h(
        'table',
        { class: 'table stack', dataset: { testid: 'schedules' } },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Name'),
            h('th', {}, 'Cron'),
            h('th', {}, 'Next run'),
            h('th', {}, 'Payload'),
          ),
        ),
        h(
          'tbody',
          {},
          q.schedules.map((e) =>
            h(
              'tr',
              { dataset: { schedule: e.name } },
              td('Name', {}, e.name),
              td('Cron', {}, h('code', {}, e.cron), h('span', { class: 'muted' }, ' UTC')),
              td(
                'Next run',
                { dataset: { testid: 'next-run' } },
                e.error
                  ? h('span', { class: 'text-danger', title: e.error }, 'invalid: workers skip it')
                  : e.nextRunAt === undefined
                    ? h('span', { class: 'muted' }, 'none within 5 years')
                    : nextRun(e),
              ),
              td('Payload', {}, h('code', { class: 'preview' }, pretty(e.data))),
            ),
          ),
        ),
      ),
      q.invalidSchedules
        ? h('p', { class: 'muted' }, `${q.invalidSchedules} entries could not be read.`)
        : null,
    );
  };

  /** Built once, so what someone is typing survives live refreshes. */
  const retentionForm = h(
    'form',
    { class: 'inline-form retention-form', dataset: { testid: 'retention-form' } },
    h(
      'label',
      {},
      'Jobs ',
      h(
        'select',
        { name: 'which' },
        h('option', { value: 'finished' }, 'finished (completed, cancelled)'),
        h('option', { value: 'dead' }, 'dead'),
      ),
    ),
    h(
      'label',
      {},
      'Keep ',
      h(
        'select',
        { name: 'keep' },
        h('option', { value: 'count' }, 'the newest…'),
        h('option', { value: 'age' }, 'for…'),
        h('option', { value: 'all' }, 'all'),
        h('option', { value: 'none' }, 'none'),
        h('option', { value: 'default' }, 'the default'),
      ),
    ),
    h(
      'label',
      {},
      'Count ',
      h('input', { name: 'count', type: 'number', min: 0, step: 1, placeholder: '1000' }),
    ),
    h(
      'label',
      {},
      'Age ',
      h('input', { name: 'age', type: 'number', min: 1, step: 1, placeholder: 'any' }),
      h(
        'select',
        { name: 'unit', 'aria-label': 'Age unit' },
        Object.keys(AGE_UNITS).map((u) => h('option', { value: u, selected: u === 'h' ? true : null }, u)),
      ),
    ),
    h('button', { type: 'submit', class: 'secondary', dataset: { action: 'set-retention' } }, 'Set'),
    h(
      'p',
      { class: 'muted small' },
      'Count and age together keep the newest jobs up to the count, none older than the age.',
    ),
  );
  retentionForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const field = (name) => retentionForm.elements.namedItem(name).value.trim();
    const which = field('which');
    const keep = field('keep');
    const count = field('count') === '' ? undefined : Number(field('count'));
    const ageMs = field('age') === '' ? undefined : Number(field('age')) * AGE_UNITS[field('unit')];
    let retention;
    if (keep === 'default') retention = null;
    else if (keep === 'none' || keep === 'all') retention = { keep };
    else if (keep === 'count') {
      if (count === undefined) {
        toast('Give the number of jobs to keep', 'error');
        return;
      }
      retention = { keep, count, ...(ageMs === undefined ? {} : { ageMs }) };
    } else {
      if (ageMs === undefined) {
        toast('Give how long to keep jobs', 'error');
        return;
      }
      retention = { keep, ageMs };
    }
    const what = which === 'dead' ? 'dead jobs' : 'finished jobs';
    const ok = await confirmDialog({
      title: `Change how ${queue} keeps ${what}?`,
      message:
        (retention === null ? `Back to the default.` : `Keep ${fmtRetention(retention)}.`) +
        ' Records past it are deleted as jobs finish and in workers’ recovery rounds; deleted records cannot come back.',
      confirmLabel: 'Change retention',
      danger: true,
    });
    if (!ok) return;
    try {
      await api(`queues/${enc(queue)}/retention`, { method: 'PUT', body: { [which]: retention } });
      toast(`Retention of ${what} of ${queue} changed`);
    } catch (error) {
      if (!handleAuthError(error)) toast(error.message, 'error');
    }
    await refreshNow();
  });

  /** Every job since the queue was created (`stats.totals`), whatever the retention deleted since. */
  const totalsLine = (t) => {
    const n = (key, label) => [h('span', { dataset: { total: key } }, fmtNumber(t[key] ?? 0)), ` ${label}`];
    return [
      n('enqueued', 'added'),
      ' · ',
      n('completed', 'completed'),
      ' · ',
      n('dead', 'dead-lettered'),
      ' · ',
      n('cancelled', 'cancelled'),
      ' · ',
      n('failed', 'failed attempts'),
      // Stores of earlier versions report only the sum.
      t.handlerFailures === undefined
        ? null
        : [' (', n('handlerFailures', 'handler failures'), ', ', n('leaseExpiries', 'lease expiries'), ')'],
    ];
  };

  const retentionText = (r) => [
    fmtRetention(r.retention),
    r.isDefault ? h('span', { class: 'muted' }, ' (default)') : null,
  ];

  const renderConfig = (q) => {
    put(
      config,
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Concurrency'),
        h('dd', {}, q.concurrency === null ? "each pipeline's own" : `${q.concurrency} (override)`),
        h('dt', {}, 'Finished jobs kept'),
        h('dd', { dataset: { testid: 'retention-finished' } }, retentionText(q.retention.finished)),
        h('dt', {}, 'Dead jobs kept'),
        h('dd', { dataset: { testid: 'retention-dead' } }, retentionText(q.retention.dead)),
        h('dt', {}, 'Since the queue was created'),
        h('dd', { dataset: { testid: 'totals' } }, totalsLine(q.totals)),
      ),
      canAct() && q.retention.canSet ? retentionForm : null,
      q.config.schema
        ? h(
            'details',
            {},
            h('summary', {}, 'Payload schema'),
            h('pre', { class: 'code' }, pretty(q.config.schema)),
          )
        : h('p', { class: 'muted' }, 'No payload schema.'),
    );
  };

  return {
    title: queue,
    crumbs: [{ label: queue }],
    root,
    queues: () => [queue],
    async refresh() {
      const params = new URLSearchParams({
        state,
        offset: String((page - 1) * PAGE_SIZE),
        limit: String(PAGE_SIZE),
      });
      if (nameFilter) params.set('name', nameFilter);
      if (groupFilter) params.set('group', groupFilter);
      if (textFilter) params.set('text', textFilter);
      const groupParams = new URLSearchParams({
        offset: String((groupPage - 1) * GROUP_PAGE_SIZE),
        limit: String(GROUP_PAGE_SIZE),
      });
      const [q, list, groupList] = await Promise.all([
        api(`queues/${enc(queue)}`),
        api(`queues/${enc(queue)}/jobs?${params}`),
        api(`queues/${enc(queue)}/groups?${groupParams}`).catch((error) => {
          if (error instanceof ApiError && error.status === 501) return null;
          throw error;
        }),
      ]);
      renderActions(q);
      put(chart, historyChart(q.history));
      put(rates, throughputLine(q.lastHour));
      put(limits, rateLimits(q.rateLimits, q.name));
      put(workers, workersTable(q.workers));
      renderSchedules(q);
      renderGroups(groupList);
      renderConfig(q);
      put(
        tabs,
        ...STATES.map((st) =>
          h(
            'a',
            {
              class: `tab state-${st}`,
              href: `#/queues/${enc(queue)}?state=${st}`,
              'aria-current': st === state ? 'page' : null,
              title: KEPT_STATES.includes(st) ? KEPT_TITLE : null,
              dataset: { state: st },
            },
            h('span', { class: 'tab-label' }, KEPT_STATES.includes(st) ? `${st} (kept)` : st),
            h('span', { class: 'tab-count' }, fmtNumber(q.counts[st])),
          ),
        ),
      );
      renderJobs(list);
    },
  };
}

/** One failed attempt: its number, when, the error, and the stack trace folded away. */
function errorEntry(e, maxAttempts) {
  return h(
    'li',
    { class: 'error-entry', dataset: { testid: 'job-error', attempt: String(e.attempt) } },
    h(
      'div',
      { class: 'error-head' },
      h('strong', { class: 'error-attempt' }, `Attempt ${e.attempt} of ${maxAttempts}`),
      h(
        'time',
        { datetime: new Date(e.at).toISOString(), title: new Date(e.at).toLocaleString() },
        fmtDateTime(e.at),
        h('span', { class: 'muted' }, ` (${fmtRelative(e.at)})`),
      ),
      e.code ? h('code', { class: 'error-code' }, e.code) : null,
    ),
    h(
      'p',
      { class: 'error-message' },
      h('span', { class: 'error-name' }, e.name),
      ': ',
      h('span', { dataset: { testid: 'error-message' } }, e.message),
    ),
    e.stack ? h('details', {}, h('summary', {}, 'Stack trace'), h('pre', { class: 'code' }, e.stack)) : null,
  );
}

/** How many log lines a store keeps per job (`MAX_JOB_LOG_LINES`). */
const MAX_JOB_LOG_LINES = 100;

/**
 * A job's progress and log lines as its handler reported them (`ctx.progress`, `ctx.log`): a number
 * from 0 to 100 as a bar, anything else as JSON. Shown while the job runs, and after when it reported.
 */
function progressCard(job) {
  const logs = job.logs ?? [];
  if (job.progress === undefined && logs.length === 0 && job.state !== 'running') return null;
  const p = job.progress;
  const asPercent = typeof p === 'number' && p >= 0 && p <= 100;
  return h(
    'article',
    { class: 'card', dataset: { testid: 'job-progress-card' } },
    h('h2', {}, 'Progress'),
    p === undefined
      ? h('p', { class: 'muted', dataset: { testid: 'job-progress' } }, 'No progress reported.')
      : asPercent
        ? h(
            'div',
            { class: 'progress-line', dataset: { testid: 'job-progress' } },
            h('progress', { max: 100, value: p, 'aria-label': 'Progress' }),
            h('span', { class: 'progress-value' }, `${Number(p.toFixed(1))}%`),
          )
        : h('pre', { class: 'code', dataset: { testid: 'job-progress' } }, pretty(p)),
    h('h3', {}, `Log (${logs.length})`),
    logs.length === 0
      ? h('p', { class: 'muted' }, 'No log lines.')
      : [
          logs.length >= MAX_JOB_LOG_LINES
            ? h('p', { class: 'muted small' }, `The store keeps the newest ${MAX_JOB_LOG_LINES} lines.`)
            : null,
          h(
            'ol',
            { class: 'job-logs', dataset: { testid: 'job-logs' } },
            logs.map((line) => h('li', {}, line)),
          ),
        ],
  );
}

function jobView(queue, id) {
  const heading = h('h1', {}, 'Job ', h('code', {}, id));
  const actions = h('div', { class: 'actions' });
  const body = h('div');
  const root = h('div', {}, h('section', { class: 'page-head' }, heading, actions), body);
  let last = '';

  const jobUrl = (suffix = '') => `queues/${enc(queue)}/jobs/${enc(id)}${suffix}`;

  const renderActions = (job) => {
    if (!canAct()) {
      put(actions);
      return;
    }
    const buttons = [];
    if (job.state === 'dead' || job.state === 'cancelled') {
      buttons.push(
        actionButton({
          label: 'Retry',
          action: 'retry',
          title: `Retry job ${id}?`,
          message: 'The job goes back to ready with a fresh set of attempts.',
          request: () => api(jobUrl('/retry'), { method: 'POST' }),
          done: () => `Job ${id} sent back to ready`,
        }),
      );
    }
    if (job.state === 'scheduled') {
      buttons.push(
        actionButton({
          label: 'Run now',
          action: 'promote',
          title: `Run job ${id} now?`,
          message: 'The job becomes due at once instead of at its scheduled time.',
          request: () => api(jobUrl('/promote'), { method: 'POST' }),
          done: () => `Job ${id} is due now`,
        }),
      );
    }
    if (job.state === 'ready' || job.state === 'scheduled' || job.state === 'running') {
      buttons.push(
        actionButton({
          label: 'Cancel',
          action: 'cancel',
          title: `Cancel job ${id}?`,
          message:
            job.state === 'running'
              ? 'Its worker is told to abort the handler; the job ends as cancelled.'
              : 'The job will not run; it ends as cancelled.',
          confirmLabel: 'Cancel the job',
          danger: true,
          request: () => api(jobUrl('/cancel'), { method: 'POST' }),
          done: () => `Job ${id} cancelled`,
        }),
      );
    }
    if (job.state !== 'running') {
      buttons.push(
        actionButton({
          label: 'Delete',
          action: 'delete',
          title: `Delete job ${id}?`,
          message: 'The job and its history are deleted for good. This cannot be undone.',
          confirmLabel: 'Delete it',
          danger: true,
          request: async () => {
            await api(jobUrl(), { method: 'DELETE' });
            location.hash = `#/queues/${enc(queue)}?state=${job.state}`;
          },
          done: () => `Job ${id} deleted`,
        }),
      );
    }
    put(actions, ...buttons);
  };

  const facts = (pairs) =>
    h(
      'dl',
      { class: 'facts' },
      pairs.filter(Boolean).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    );

  const render = (job) => {
    const t = job.timings;
    put(heading, 'Job ', h('code', {}, id), ' ', stateBadge(job.state, { 'data-testid': 'job-state' }));
    renderActions(job);
    put(
      body,
      h(
        'div',
        { class: 'grid-2' },
        h(
          'article',
          { class: 'card' },
          h('h2', {}, 'Summary'),
          facts([
            ['Queue', h('a', { href: `#/queues/${enc(queue)}` }, queue)],
            ['Name', job.name],
            job.options.group !== undefined && [
              'Group',
              h(
                'a',
                {
                  href: `#/queues/${enc(queue)}?${new URLSearchParams({ state: 'ready', group: job.options.group })}`,
                  dataset: { testid: 'job-group' },
                },
                job.options.group,
              ),
            ],
            ['State', stateBadge(job.state)],
            ['Attempts', `${job.attempt} of ${job.options.maxAttempts}`],
            job.state === 'running' && [
              'Worker',
              job.workerId
                ? h('code', { class: 'worker-id', dataset: { testid: 'job-worker' } }, job.workerId)
                : h('span', { class: 'muted' }, 'not recorded (a worker of an older version)'),
            ],
            ['Priority', String(job.options.priority)],
            job.options.timeoutMs !== undefined && ['Timeout', fmtDuration(job.options.timeoutMs)],
            job.options.uniqueKey !== undefined && ['Unique key', h('code', {}, job.options.uniqueKey)],
            job.reason !== undefined && ['Reason', job.reason],
          ]),
        ),
        h(
          'article',
          { class: 'card' },
          h('h2', {}, 'Timings'),
          facts([
            ['Added', time(t.createdAt)],
            ['Due', time(t.runAt)],
            t.startedAt !== undefined && ['Started', time(t.startedAt)],
            t.waitMs !== undefined && ['Waited', fmtDuration(t.waitMs)],
            t.finishedAt !== undefined && ['Finished', time(t.finishedAt)],
            t.durationMs !== undefined && ['Took', fmtDuration(t.durationMs)],
            t.leaseExpiresAt !== undefined && ['Lease expires', time(t.leaseExpiresAt)],
          ]),
        ),
      ),
      h(
        'article',
        { class: 'card' },
        h('h2', {}, 'Payload'),
        h('pre', { class: 'code', dataset: { testid: 'job-payload' } }, pretty(job.data)),
      ),
      progressCard(job),
      'result' in job
        ? h(
            'article',
            { class: 'card' },
            h('h2', {}, 'Result'),
            h('pre', { class: 'code', dataset: { testid: 'job-result' } }, pretty(job.result)),
          )
        : null,
      h(
        'article',
        { class: 'card' },
        h('h2', {}, `Errors (${job.errors.length})`),
        job.errors.length === 0
          ? h('p', { class: 'muted' }, 'No attempt has failed.')
          : [
              job.errors[0].attempt > 1
                ? h(
                    'p',
                    { class: 'muted small' },
                    `The store keeps the latest ${job.errors.length} errors; earlier attempts' errors are gone.`,
                  )
                : null,
              h(
                'ul',
                { class: 'errors', dataset: { testid: 'job-errors' } },
                // Newest first: the attempt that decided the job's fate is on top.
                [...job.errors].reverse().map((e) => errorEntry(e, job.options.maxAttempts)),
              ),
            ],
      ),
    );
  };

  return {
    title: `Job ${id}`,
    crumbs: [{ label: queue, href: `#/queues/${enc(queue)}` }, { label: `Job ${id}` }],
    root,
    queues: () => [queue],
    async refresh() {
      let data;
      try {
        data = await api(jobUrl());
      } catch (error) {
        if (error.status !== 404) throw error;
        last = '';
        put(heading, 'Job ', h('code', {}, id));
        put(actions);
        put(
          body,
          h(
            'div',
            { class: 'card empty' },
            h('p', {}, error.message),
            h(
              'p',
              {},
              'It may have been deleted, or removed by the queue’s retention. ',
              h('a', { href: `#/queues/${enc(queue)}` }, `Back to ${queue}`),
            ),
          ),
        );
        return;
      }
      // Re-render only on change, so an open stack trace stays open between refreshes.
      const json = JSON.stringify(data.job);
      if (json === last) return;
      last = json;
      render(data.job);
    },
  };
}

function limitView(queue, key) {
  const url = `queues/${enc(queue)}/limits/${enc(key)}`;
  const heading = h('h1', {}, 'Rate limit ', h('code', {}, key));
  const numbers = h('div');
  const control = h('div');
  const timing = h('div');
  const pauses = h('div');
  const warning = h('div');
  const root = h(
    'div',
    {},
    h('section', { class: 'page-head' }, heading),
    warning,
    h(
      'div',
      { class: 'grid-2' },
      h('article', { class: 'card' }, h('h2', {}, 'Numbers'), numbers, control),
      h('article', { class: 'card' }, h('h2', {}, 'Provider pauses'), pauses),
    ),
    h('article', { class: 'card' }, h('h2', {}, 'Start timing'), timing),
  );
  let formShownFor = '';

  const per = (n) => `${fmtNumber(n.allowed)} per ${fmtPeriod(n.periodMs)}`;

  const renderNumbers = (l) => {
    const rows = [
      [
        'In force',
        l.effective ? h('strong', { dataset: { testid: 'limit-effective' } }, per(l.effective)) : '—',
      ],
      [
        'Store-wide',
        l.override
          ? h(
              'span',
              { dataset: { testid: 'limit-override' } },
              per(l.override),
              ' ',
              h('span', { class: 'badge badge-warn' }, 'override'),
            )
          : h(
              'span',
              { class: 'muted', dataset: { testid: 'limit-override' } },
              'not set: each worker uses its own numbers',
            ),
      ],
      [
        'Workers',
        l.configured.length === 0
          ? h('span', { class: 'muted' }, 'no live worker uses this key')
          : h(
              'ul',
              { class: 'plain' },
              l.configured.map((c) =>
                h(
                  'li',
                  {},
                  per(c),
                  c.per === 'call' ? ' (calls)' : '',
                  h('span', { class: 'muted' }, ` · ${c.pipelines.join(', ')}`),
                ),
              ),
            ),
      ],
      [
        'In use',
        l.used === null || !l.effective
          ? h('span', { class: 'muted' }, 'the store cannot tell')
          : h(
              'span',
              { class: 'usage' },
              h('meter', {
                min: 0,
                max: l.effective.allowed,
                value: l.used,
                high: l.effective.allowed * 0.8,
                optimum: 0,
              }),
              h(
                'span',
                { dataset: { testid: 'limit-used' } },
                ` ${fmtNumber(l.used)} of ${fmtNumber(l.effective.allowed)} in the last ${fmtPeriod(l.effective.periodMs)}`,
              ),
            ),
      ],
    ];
    if (l.configured.length > 1 && !l.override) {
      rows.push([
        '',
        h(
          'span',
          { class: 'text-warn' },
          'Workers disagree (a rolling deploy?): each grant keeps the numbers of the worker that asked.',
        ),
      ]);
    }
    put(
      numbers,
      h(
        'dl',
        { class: 'facts' },
        rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
      ),
    );
  };

  const renderControl = (l) => {
    if (!l.canSet) {
      put(
        control,
        canAct() ? h('p', { class: 'muted small' }, 'This store cannot set rate limits store-wide.') : null,
      );
      return;
    }
    // Keep what the user is typing: rebuild the form only when the numbers in force change.
    const shown = JSON.stringify([l.override, l.effective]);
    if (shown === formShownFor) return;
    formShownFor = shown;
    const start = l.override ?? l.effective ?? { allowed: '', periodMs: '' };
    const form = h(
      'form',
      { class: 'inline-form limit-form', dataset: { testid: 'limit-form' } },
      h(
        'label',
        {},
        'Allowed ',
        h('input', {
          name: 'allowed',
          type: 'number',
          min: 1,
          max: 1000000,
          step: 1,
          required: true,
          value: start.allowed,
        }),
      ),
      h(
        'label',
        {},
        'per (ms) ',
        h('input', {
          name: 'periodMs',
          type: 'number',
          min: 1,
          max: 86400000,
          step: 1,
          required: true,
          value: start.periodMs,
        }),
      ),
      h('button', { type: 'submit', dataset: { action: 'set-limit' } }, 'Set store-wide'),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const allowed = Number(form.elements.namedItem('allowed').value);
      const periodMs = Number(form.elements.namedItem('periodMs').value);
      if (!Number.isInteger(allowed) || allowed < 1 || !Number.isInteger(periodMs) || periodMs < 1) return;
      const ok = await confirmDialog({
        title: `Set ${key} to ${fmtNumber(allowed)} per ${fmtPeriod(periodMs)}?`,
        message: `Every worker and process using "${key}" checks these numbers from its next reserve, whatever its own configuration says.`,
        confirmLabel: 'Set store-wide',
      });
      if (!ok) return;
      try {
        await api(url, { method: 'PUT', body: { allowed, periodMs } });
        toast(`${key}: ${fmtNumber(allowed)} per ${fmtPeriod(periodMs)}, store-wide`);
      } catch (error) {
        if (!handleAuthError(error)) toast(error.message, 'error');
      }
      formShownFor = '';
      await refreshNow();
    });
    put(
      control,
      h('h3', {}, 'Change store-wide'),
      form,
      l.override
        ? actionButton({
            label: 'Clear override',
            action: 'clear-limit',
            title: `Clear the store-wide numbers of ${key}?`,
            message: 'Each worker goes back to the numbers it was configured with.',
            request: async () => {
              formShownFor = '';
              return api(url, { method: 'PUT', body: { clear: true } });
            },
            done: () => `${key}: back to each worker's own numbers`,
          })
        : null,
    );
  };

  const renderPauses = (l) => {
    const source =
      l.pausesFrom === 'store'
        ? 'Pauses any process took after a provider refused a call (retry-after), heard on the store since this dashboard first showed the key.'
        : l.pausesFrom === 'telemetry'
          ? 'Pauses the workers on this dashboard’s telemetry hub took after a provider refused a call.'
          : 'This store has no pause channel and the dashboard has no telemetry hub: pauses cannot be seen here.';
    put(
      pauses,
      h('p', { class: 'muted small' }, source),
      l.pauses.length === 0
        ? h('p', { class: 'muted', dataset: { testid: 'limit-pauses' } }, 'No pause seen.')
        : h(
            'ul',
            { class: 'plain pauses', dataset: { testid: 'limit-pauses' } },
            l.pauses.map((p) =>
              h(
                'li',
                {},
                time(p.at),
                p.until !== undefined ? h('span', {}, ` · until ${fmtDateTime(p.until)}`) : null,
                p.pauseMs !== undefined ? h('span', {}, ` · ${fmtDuration(p.pauseMs)}`) : null,
              ),
            ),
          ),
    );
  };

  const renderTiming = (l) => {
    const t = l.timing;
    put(
      warning,
      t?.lead?.capped
        ? h(
            'div',
            { class: 'problem warn', role: 'alert', dataset: { testid: 'lead-capped' } },
            h('strong', {}, 'The lead is at its cap. '),
            `New slots go ${fmtDuration(t.lead.leadMs)} ahead (pipeline ${t.lead.pipeline}), and answers take longer than that: starts will run late or be moved. Raise the pipeline's maxLeadMs, or take load off the worker.`,
          )
        : null,
      t?.margin?.capped
        ? h(
            'div',
            { class: 'problem warn', role: 'alert', dataset: { testid: 'margin-capped' } },
            h('strong', {}, 'The margin is at its cap. '),
            `The store counts windows ${fmtDuration(t.margin.marginMs)} wider than the limit (pipeline ${t.margin.pipeline}), and requests leave later than that after their slots: the provider may count more than allowed in a window. Raise the pipeline's maxMarginMs, or take load off the worker.`,
          )
        : null,
    );
    if (!t) {
      put(
        timing,
        h(
          'p',
          { class: 'muted' },
          'Give the dashboard the telemetry hub your workers emit on (the telemetry option) to see how starts ran against their slots.',
        ),
      );
      return;
    }
    const stat = (label, value, testid) =>
      h(
        'div',
        { class: 'stat' },
        h('div', { class: 'stat-value', dataset: { testid } }, value),
        h('div', { class: 'muted small' }, label),
      );
    put(
      timing,
      h(
        'p',
        { class: 'muted small' },
        `From the workers on this dashboard's telemetry hub, since ${fmtDateTime(t.since)}.`,
      ),
      h(
        'div',
        { class: 'stats' },
        stat('starts', fmtNumber(t.started), 'timing-started'),
        stat('late, median', t.lateMs ? fmtDuration(t.lateMs.p50) : '—', 'timing-p50'),
        stat('late, 95th percentile', t.lateMs ? fmtDuration(t.lateMs.p95) : '—', 'timing-p95'),
        stat('late, worst', t.lateMs ? fmtDuration(t.lateMs.max) : '—', 'timing-max'),
        stat('moved to a new slot', fmtNumber(t.moved), 'timing-moved'),
        stat('handed back', fmtNumber(t.handedBack), 'timing-handed-back'),
        stat('reserves held back', fmtNumber(t.heldBack), 'timing-held-back'),
        stat(
          'request late, 95th percentile / worst',
          t.sentLateMs ? `${fmtDuration(t.sentLateMs.p95)} / ${fmtDuration(t.sentLateMs.max)}` : '—',
          'timing-sent',
        ),
        stat('late requests moved to when they left', fmtNumber(t.corrected), 'timing-corrected'),
        stat(
          'margin',
          t.margin
            ? [
                fmtDuration(t.margin.marginMs),
                t.margin.capped ? h('span', { class: 'badge badge-warn' }, 'capped') : null,
              ]
            : '—',
          'timing-margin',
        ),
        stat(
          t.lead ? `lead (margin ${fmtDuration(t.lead.marginMs)})` : 'lead',
          t.lead
            ? [
                fmtDuration(t.lead.leadMs),
                t.lead.capped ? h('span', { class: 'badge badge-warn' }, 'capped') : null,
              ]
            : '—',
          'timing-lead',
        ),
        stat(
          'jobs granted ahead',
          t.ahead
            ? [
                String(t.ahead.jobs),
                t.ahead.jobs === 0 ? h('span', { class: 'badge' }, 'handlers busy') : null,
              ]
            : '—',
          'timing-ahead',
        ),
      ),
      t.recentHandBacks.length
        ? h(
            'details',
            {},
            h('summary', {}, `Latest hand-backs (${t.recentHandBacks.length})`),
            h(
              'ul',
              { class: 'plain' },
              t.recentHandBacks.map((b) => h('li', {}, time(b.at), ` · ${b.reason ?? 'no reason given'}`)),
            ),
          )
        : null,
    );
  };

  return {
    title: `Rate limit ${key}`,
    crumbs: [{ label: queue, href: `#/queues/${enc(queue)}` }, { label: `Rate limit ${key}` }],
    root,
    queues: () => [queue],
    async refresh() {
      let l;
      try {
        l = await api(url);
      } catch (error) {
        if (error.status !== 404) throw error;
        put(numbers, h('p', { class: 'empty' }, error.message));
        put(control);
        put(timing);
        put(pauses);
        put(warning);
        return;
      }
      renderNumbers(l);
      renderControl(l);
      renderPauses(l);
      renderTiming(l);
    },
  };
}

function notFoundView() {
  return {
    title: 'Not found',
    crumbs: [],
    root: h(
      'div',
      { class: 'card empty' },
      h('p', {}, 'There is no such page. '),
      h('a', { href: '#/' }, 'Back to the overview'),
    ),
    queues: () => [],
    refresh: async () => {},
  };
}

// ------------------------------------------------------------------------------------ routing

function route() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  let parts;
  try {
    parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return notFoundView();
  }
  if (parts.length === 0) return overviewView(query);
  if (parts[0] === 'queues' && parts.length === 2) return queueView(parts[1], query);
  if (parts[0] === 'queues' && parts.length === 4 && parts[2] === 'jobs') return jobView(parts[1], parts[3]);
  if (parts[0] === 'queues' && parts.length === 4 && parts[2] === 'limits')
    return limitView(parts[1], parts[3]);
  return notFoundView();
}

function renderCrumbs(view) {
  const items = [{ label: 'Overview', href: view.crumbs.length ? '#/' : undefined }, ...view.crumbs];
  put(
    byId('crumbs'),
    ...items.flatMap((c, i) => [
      i > 0 ? h('span', { class: 'crumb-sep', 'aria-hidden': 'true' }, '›') : null,
      c.href ? h('a', { href: c.href }, c.label) : h('span', { 'aria-current': 'page' }, c.label),
    ]),
  );
}

async function navigate() {
  if (!app.session) return;
  const view = route();
  app.view = view;
  document.title = `${view.title} · ${app.session.title}`;
  renderCrumbs(view);
  put(byId('main'), view.root);
  await refreshNow();
  byId('main').focus({ preventScroll: true });
}

/** Re-reads the current view; calls made while one runs are folded into one more run. */
async function refreshNow() {
  if (!app.view) return;
  if (app.refreshing) {
    app.refreshAgain = true;
    return;
  }
  app.refreshing = true;
  try {
    do {
      app.refreshAgain = false;
      const view = app.view;
      try {
        await view.refresh();
        showProblem(null);
      } catch (error) {
        if (handleAuthError(error)) return;
        showProblem(error);
      }
      if (view === app.view) watch(view.queues());
    } while (app.refreshAgain);
  } finally {
    app.refreshing = false;
  }
}

function scheduleRefresh() {
  if (app.refreshTimer) return;
  app.refreshTimer = setTimeout(() => {
    app.refreshTimer = 0;
    void refreshNow();
  }, 100);
}

function showProblem(error) {
  let banner = byId('problem');
  if (!error) {
    banner?.remove();
    return;
  }
  if (!banner) {
    banner = h('div', { id: 'problem', class: 'problem', role: 'alert' });
    byId('main').prepend(banner);
  }
  banner.textContent = `Could not load this view: ${error.message}`;
}

// ------------------------------------------------------------------------------------ live updates

function setLive(state, label) {
  const el = byId('live');
  el.dataset.state = state;
  el.textContent = label;
}

/** Keeps one event stream open for the queues on screen; reconnects with backoff. */
function watch(shown) {
  const queues = shown.slice(0, 100); // the API watches at most 100 queues per stream
  const key = [...queues].sort().join('\n');
  if (app.live.controller && app.live.key === key) return;
  app.live.controller?.abort();
  const controller = new AbortController();
  app.live = { controller, key };
  void streamLoop(queues, controller.signal);
}

async function streamLoop(queues, signal) {
  let delay = 1000;
  while (!signal.aborted) {
    try {
      const params = new URLSearchParams();
      for (const q of queues) params.append('queue', q);
      const res = await fetch(`api/events?${params}`, {
        headers: authHeaders({ Accept: 'text/event-stream' }),
        cache: 'no-store',
        signal,
      });
      if (res.status === 401) {
        handleAuthError(new ApiError(401, await res.json().catch(() => null)));
        return;
      }
      if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`);
      setLive('live', 'live');
      delay = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (/^event: change$/m.test(block)) scheduleRefresh();
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    if (signal.aborted) return;
    setLive('reconnecting', 'reconnecting…');
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15_000);
  }
}

function stopLive() {
  app.live.controller?.abort();
  app.live = { controller: null, key: '' };
  clearInterval(app.pollTimer);
  app.pollTimer = 0;
  setLive('off', 'offline');
}

// ------------------------------------------------------------------------------------ sign-in

/** Shows the sign-in prompt for a 401; returns whether the error was one. */
function handleAuthError(error) {
  if (!(error instanceof ApiError) || error.status !== 401) return false;
  const hadToken = sessionStorage.getItem(TOKEN_KEY) !== null;
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(error.login, hadToken ? 'That token was refused.' : '');
  return true;
}

function showLogin(login, message = '') {
  stopLive();
  app.session = null;
  app.view = null;
  byId('logout').hidden = true;
  byId('mode').hidden = true;
  put(byId('crumbs'));
  document.title = 'Sign in · Sluice';
  if (login === 'external') {
    put(
      byId('main'),
      h(
        'section',
        { class: 'card login', dataset: { testid: 'login' } },
        h('h1', {}, 'Not authorised'),
        h('p', {}, 'Sign in to the application that hosts this dashboard, then reload the page.'),
      ),
    );
    return;
  }
  const input = h('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'current-password',
    required: true,
    'aria-describedby': 'login-error',
  });
  const form = h(
    'form',
    { class: 'card login', dataset: { testid: 'login' } },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'This dashboard needs its access token.'),
    h('label', {}, 'Access token', input),
    h('p', { id: 'login-error', class: 'text-danger', role: 'alert' }, message),
    h('button', { type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    void start();
  });
  put(byId('main'), form);
  input.focus();
}

// ------------------------------------------------------------------------------------ start

async function start() {
  try {
    app.session = await api('session');
  } catch (error) {
    if (handleAuthError(error)) return;
    put(
      byId('main'),
      h('div', { class: 'problem', role: 'alert' }, `The dashboard API is not answering: ${error.message}`),
    );
    setTimeout(() => void start(), 5000);
    return;
  }
  byId('app-title').textContent = app.session.title;
  byId('mode').hidden = !app.session.readOnly;
  byId('logout').hidden = app.session.login !== 'token';
  clearInterval(app.pollTimer);
  app.pollTimer = setInterval(() => {
    if (!document.hidden) void refreshNow();
  }, app.session.refreshIntervalMs);
  await navigate();
}

byId('logout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin('token', 'Signed out.');
});
window.addEventListener('hashchange', () => void navigate());
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void refreshNow();
});
void start();
