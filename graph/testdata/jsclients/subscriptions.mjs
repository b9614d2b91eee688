// The graphql-ws client (graphql-transport-ws protocol), with its default
// settings but for retries, driven by graph/subscriptions_test.go: it reads
// one JSON command per line on stdin and writes one JSON line per thing the
// client reports on stdout.
//
//   {"op":"connect","client":"a","token":"…","via":"init"|"header"|"none","origin":"…"}
//   {"op":"subscribe","client":"a","sub":"s1","query":"…","variables":{…}}
//   {"op":"unsubscribe","sub":"s1"}
//   {"op":"dispose","client":"a"}
//
// Output: {"client":"a","ev":"connected"|"closed","code":…,"reason":…} and
// {"sub":"s1","ev":"next"|"error"|"complete","data":…,"error":…}.
import readline from 'node:readline';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.SKIFF_WS_URL;
const clients = new Map();
const subs = new Map();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// describe turns what graphql-ws hands an error sink into JSON: a close
// event, GraphQL errors, or an Error.
function describe(e) {
  if (Array.isArray(e)) return { errors: e.map((x) => ({ message: x.message, extensions: x.extensions })) };
  if (e && typeof e.code === 'number') return { code: e.code, reason: e.reason };
  if (e instanceof Error) return { message: e.message };
  return { message: String(e) };
}

function connect(cmd) {
  const wsOptions = {};
  if (cmd.via === 'header') wsOptions.headers = { Authorization: `Bearer ${cmd.token}` };
  if (cmd.origin) wsOptions.origin = cmd.origin;
  const client = createClient({
    url,
    webSocketImpl: class extends WebSocket {
      constructor(address, protocols) {
        super(address, protocols, wsOptions);
      }
    },
    connectionParams: cmd.via === 'init' ? { Authorization: `Bearer ${cmd.token}` } : undefined,
    retryAttempts: 0,
    on: {
      connected: () => out({ client: cmd.client, ev: 'connected' }),
      closed: (e) => out({ client: cmd.client, ev: 'closed', code: e?.code, reason: e?.reason }),
    },
  });
  clients.set(cmd.client, client);
}

function subscribe(cmd) {
  const client = clients.get(cmd.client);
  const stop = client.subscribe(
    { query: cmd.query, variables: cmd.variables },
    {
      next: (data) => out({ sub: cmd.sub, ev: 'next', data }),
      error: (e) => out({ sub: cmd.sub, ev: 'error', error: describe(e) }),
      complete: () => out({ sub: cmd.sub, ev: 'complete' }),
    },
  );
  subs.set(cmd.sub, stop);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = JSON.parse(line);
  switch (cmd.op) {
    case 'connect':
      connect(cmd);
      break;
    case 'subscribe':
      subscribe(cmd);
      break;
    case 'unsubscribe':
      subs.get(cmd.sub)?.();
      break;
    case 'dispose':
      clients.get(cmd.client)?.dispose();
      break;
  }
  out({ ack: cmd.op, client: cmd.client, sub: cmd.sub });
});
rl.on('close', () => {
  for (const c of clients.values()) c.dispose();
  process.exit(0);
});
