// Skiff's GraphQL explorer: runs operations against this server's /graphql
// and shows its schema. Everything comes from Skiff itself (no CDN), so it
// works offline. The headers hold the bearer token: they stay in this tab's
// memory unless the user ticks "Remember the headers", which keeps them in
// the browser's local storage until it is unticked. Nothing else is stored.
(function () {
  'use strict';

  var endpoint = location.origin + '/graphql';
  var byId = function (id) { return document.getElementById(id); };
  var main = document.querySelector('main');
  var query = byId('query'), variables = byId('variables'), headers = byId('headers');
  var remember = byId('remember'), result = byId('result'), status = byId('status');
  var useToken = byId('use-token'), docsBody = byId('docs-body'), docsFilter = byId('docs-filter');
  var headersKey = 'skiff.playground.headers';
  var emptyHeaders = '{\n  "Authorization": "Bearer "\n}';

  query.value = [
    '# Skiff\'s GraphQL explorer. Ctrl+Enter (or Run) runs the operation under the cursor.',
    '# 1. Put your email and password in Login and run it, then press "Use this token".',
    '# 2. Run Me. The Schema pane lists every type and field with its description.',
    '',
    'mutation Login {',
    '  login(input: {email: "owner@demo.example", password: ""}) {',
    '    token',
    '    expiresAt',
    '    userErrors { field code message }',
    '  }',
    '}',
    '',
    'query Me {',
    '  viewer {',
    '    __typename',
    '    ... on UserViewer { user { name email role } account { name } }',
    '    ... on StaffViewer { staff { name email } }',
    '  }',
    '}',
    ''
  ].join('\n');

  // Storage can be missing or refused (private windows, blocked cookies).
  function browserStorage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  // The one place the headers reach storage: only while the user opts in.
  function keepHeaders() {
    var storage = browserStorage();
    if (!storage) return;
    if (remember.checked) storage.setItem(headersKey, headers.value);
    else storage.removeItem(headersKey);
  }

  function restoreHeaders() {
    var storage = browserStorage();
    var kept = storage && storage.getItem(headersKey);
    remember.checked = kept !== null && kept !== undefined;
    headers.value = remember.checked ? kept : emptyHeaders;
  }

  function jsonObject(text, what) {
    if (!text.trim()) return {};
    var value;
    try { value = JSON.parse(text); } catch (e) { throw new Error(what + ' are not valid JSON: ' + e.message); }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(what + ' must be a JSON object, like {"name": "value"}');
    }
    return value;
  }

  // post sends one GraphQL request with the user's headers. An Authorization
  // header left as the empty placeholder is not sent.
  function post(body) {
    var own = jsonObject(headers.value, 'Headers');
    var all = { 'Content-Type': 'application/json', 'Accept': 'application/graphql-response+json, application/json' };
    Object.keys(own).forEach(function (name) {
      var value = String(own[name]);
      if (name.toLowerCase() === 'authorization' && /^\s*bearer\s*$/i.test(value)) return;
      all[name] = value;
    });
    return fetch(endpoint, { method: 'POST', headers: all, body: JSON.stringify(body), credentials: 'omit' });
  }

  // operationAt names the operation the cursor is in when the document has
  // several (GraphQL needs operationName then), or null for a single one.
  function operationAt(text, cursor) {
    var plain = text.replace(/#[^\n]*/g, function (c) { return ' '.repeat(c.length); });
    var re = /\b(query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)/g;
    var found = [], m;
    while ((m = re.exec(plain)) !== null) found.push({ at: m.index, name: m[2] });
    if (found.length < 2) return null;
    var pick = found[0];
    found.forEach(function (op) { if (op.at <= cursor) pick = op; });
    return pick.name;
  }

  function show(text, failed) {
    result.textContent = text;
    result.className = failed ? 'error' : '';
  }

  function run() {
    var body;
    try {
      body = { query: query.value, variables: jsonObject(variables.value, 'Variables') };
      var name = operationAt(query.value, query.selectionStart);
      if (name) body.operationName = name;
      var sent = post(body);
    } catch (e) {
      show(e.message, true);
      return;
    }
    var started = performance.now();
    status.textContent = 'Running…';
    useToken.hidden = true;
    sent.then(function (res) {
      return res.text().then(function (text) {
        var id = res.headers.get('X-Request-ID');
        status.textContent = 'HTTP ' + res.status + ' · ' + Math.round(performance.now() - started) + ' ms' +
          (id ? ' · request ' + id : '');
        var json;
        try { json = JSON.parse(text); } catch (e) { show(text, true); return; }
        show(JSON.stringify(json, null, 2), Boolean(json.errors && json.errors.length));
        offerToken(json.data);
      });
    }).catch(function (e) {
      status.textContent = '';
      show('The request failed: ' + e.message, true);
    });
  }

  // offerToken shows "Use this token" after a successful login.
  function offerToken(data) {
    var token = null;
    Object.keys(data || {}).forEach(function (field) {
      var value = data[field];
      if (value && typeof value.token === 'string') token = value.token;
    });
    if (!token) return;
    useToken.hidden = false;
    useToken.onclick = function () {
      var own;
      try { own = jsonObject(headers.value, 'Headers'); } catch (e) { own = {}; }
      Object.keys(own).forEach(function (name) { if (name.toLowerCase() === 'authorization') delete own[name]; });
      own.Authorization = 'Bearer ' + token;
      headers.value = JSON.stringify(own, null, 2);
      keepHeaders();
      useToken.hidden = true;
      loadSchema();
    };
  }

  // The Schema pane.
  var schema = null, types = {};

  function node(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function wrapped(t) {
    if (t.kind === 'NON_NULL') return wrapped(t.ofType) + '!';
    if (t.kind === 'LIST') return '[' + wrapped(t.ofType) + ']';
    return t.name;
  }

  function named(t) {
    while (t.ofType) t = t.ofType;
    return t.name;
  }

  function typeLink(t) {
    var span = node('span'), name = named(t), full = wrapped(t), at = full.indexOf(name);
    var link = node('a', null, name);
    link.onclick = function () { showType(name); };
    span.append(full.slice(0, at), link, full.slice(at + name.length));
    return span;
  }

  function fieldItem(f) {
    var item = node('li'), sig = node('code');
    sig.append(f.name);
    if (f.args && f.args.length) {
      sig.append('(');
      f.args.forEach(function (arg, i) {
        sig.append((i ? ', ' : '') + arg.name + ': ', typeLink(arg.type));
        if (arg.defaultValue !== null && arg.defaultValue !== undefined) sig.append(' = ' + arg.defaultValue);
      });
      sig.append(')');
    }
    if (f.type) sig.append(': ', typeLink(f.type));
    item.append(sig);
    if (f.isDeprecated) item.append(node('div', 'desc', 'Deprecated. ' + (f.deprecationReason || '')));
    if (f.description) item.append(node('div', 'desc', f.description));
    return item;
  }

  function section(title, items) {
    if (!items || !items.length) return;
    var list = node('ul');
    items.forEach(function (i) { list.append(i); });
    docsBody.append(node('h3', null, title), list);
  }

  function nameItem(t) {
    var item = node('li'), link = node('a', null, t.name);
    link.onclick = function () { showType(t.name); };
    item.append(link);
    return item;
  }

  function showType(name) {
    var t = types[name];
    if (!t) return;
    docsBody.textContent = '';
    var back = node('a', null, '← All types');
    back.onclick = function () { renderIndex(); };
    docsBody.append(back, node('h2', null, t.name), node('div', 'kind', t.kind));
    if (t.description) docsBody.append(node('div', 'desc', t.description));
    section('Fields', (t.fields || []).map(fieldItem));
    section('Input fields', (t.inputFields || []).map(fieldItem));
    section('Values', (t.enumValues || []).map(fieldItem));
    section('Implements', (t.interfaces || []).map(nameItem));
    section('Possible types', (t.possibleTypes || []).map(nameItem));
    docsBody.scrollTop = 0;
  }

  function renderIndex() {
    docsBody.textContent = '';
    if (!schema) return;
    var filter = docsFilter.value.trim().toLowerCase();
    var roots = [schema.queryType, schema.mutationType].filter(Boolean).map(function (t) { return t.name; });
    var list = schema.types.filter(function (t) { return t.name.slice(0, 2) !== '__'; });
    list.sort(function (a, b) {
      return (roots.indexOf(a.name) < 0) - (roots.indexOf(b.name) < 0) || a.name.localeCompare(b.name);
    });
    if (!filter) {
      section('Types', list.map(function (t) {
        var item = nameItem(t);
        item.append(' ', node('span', 'kind', t.kind.toLowerCase().replace('_', ' ')));
        return item;
      }));
      return;
    }
    section('Types', list.filter(function (t) { return t.name.toLowerCase().indexOf(filter) >= 0; }).map(nameItem));
    var fields = [];
    list.forEach(function (t) {
      (t.fields || t.inputFields || []).forEach(function (f) {
        if (f.name.toLowerCase().indexOf(filter) < 0 || fields.length >= 200) return;
        var item = node('li'), link = node('a', null, t.name);
        link.onclick = function () { showType(t.name); };
        item.append(link, '.' + f.name);
        fields.push(item);
      });
    });
    section('Fields', fields);
  }

  function loadSchema() {
    docsBody.textContent = 'Loading the schema…';
    fetch('/playground/assets/schema.graphql', { credentials: 'omit' }).then(function (res) {
      return res.text();
    }).then(function (text) {
      return post({ query: text, operationName: 'SkiffPlaygroundSchema' });
    }).then(function (res) {
      return res.json();
    }).then(function (json) {
      if (!json.data || !json.data.__schema) {
        var why = json.errors && json.errors[0] ? json.errors[0].message : 'no answer';
        docsBody.textContent = 'The schema is not available (' + why + '). The server answers introspection only with --introspection on.';
        return;
      }
      schema = json.data.__schema;
      types = {};
      schema.types.forEach(function (t) { types[t.name] = t; });
      renderIndex();
    }).catch(function (e) {
      docsBody.textContent = 'The schema is not available: ' + e.message;
    });
  }

  restoreHeaders();
  headers.addEventListener('change', keepHeaders);
  remember.addEventListener('change', keepHeaders);
  byId('run').addEventListener('click', run);
  document.addEventListener('keydown', function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault();
      run();
    }
  });
  docsFilter.addEventListener('input', renderIndex);
  byId('docs-reload').addEventListener('click', loadSchema);
  byId('docs-toggle').addEventListener('click', function (e) {
    var hidden = main.classList.toggle('no-docs');
    e.target.setAttribute('aria-expanded', String(!hidden));
  });
  loadSchema();
})();
