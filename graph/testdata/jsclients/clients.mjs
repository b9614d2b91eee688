// Drives Skiff's GraphQL API with the client libraries admin teams use, each
// with its default settings: graphql-codegen (schema from the live URL),
// urql and Apollo Client. Run by graph/jsclients_test.go:
//
//   SKIFF_URL=http://127.0.0.1:PORT/graphql SKIFF_TOKEN=... OUT_DIR=... node clients.mjs
//
// It prints one JSON object: for every step, what the client library
// reported. The Go test decides what is right; this script only observes.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const url = process.env.SKIFF_URL;
const token = process.env.SKIFF_TOKEN;
const outDir = process.env.OUT_DIR;
const auth = { authorization: `Bearer ${token}` };
const report = {};

// What a step threw, as the library classified it.
function failure(err) {
  return { threw: true, name: err?.constructor?.name ?? typeof err, message: String(err?.message ?? err) };
}

async function step(name, fn) {
  try {
    report[name] = await fn();
  } catch (err) {
    report[name] = failure(err);
  }
}

const usersQuery = `query UsersPage($first: Int) {
  viewer { __typename ... on UserViewer { user { id email } } }
  account { id name users(first: $first) { edges { node { id email name role } } pageInfo { hasNextPage endCursor } } }
}`;
const createUser = `mutation CreateUser($input: CreateUserInput!) {
  createUser(input: $input) { user { id email } userErrors { field code message } }
}`;
const badQuery = `query Bad { account { noSuchField } }`;

// graphql-codegen: the client preset (the README's codegen.yml), typed
// documents for the operations above, with the schema from the committed SDL
// file and from the URL (introspection).
async function codegen(schema, name) {
  const { generate } = await import("@graphql-codegen/cli");
  const docs = join(outDir, "operations.graphql");
  writeFileSync(docs, `${usersQuery}\n${createUser}\n`);
  const gen = join(outDir, name) + "/";
  mkdirSync(gen, { recursive: true });
  await generate({ schema, documents: [docs], generates: { [gen]: { preset: "client" } }, silent: true }, true);
  const graphqlTs = readFileSync(join(gen, "graphql.ts"), "utf8");
  return {
    usersPageQuery: graphqlTs.includes("UsersPageQuery"),
    createUserMutation: graphqlTs.includes("CreateUserMutation"),
    roleEnum: /export (enum|type) Role\b/.test(graphqlTs),
  };
}
await step("codegenFile", () => codegen(process.env.SCHEMA_FILE, "fromFile"));
await step("codegenURL", () => codegen(url, "fromURL"));

// urql: the core client with its default exchanges.
await step("urql", async () => {
  const { Client, cacheExchange, fetchExchange } = await import("@urql/core");
  const client = new Client({ url, exchanges: [cacheExchange, fetchExchange], fetchOptions: { headers: auth } });
  const page = await client.query(usersQuery, { first: 50 }).toPromise();
  const created = await client
    .mutation(createUser, { input: { email: "urql@acme.example", name: "Urql User", role: "USER" } })
    .toPromise();
  const bad = await client.query(badQuery, {}).toPromise();
  return {
    pageError: page.error ? String(page.error) : null,
    users: page.data?.account?.users?.edges?.length ?? null,
    createdEmail: created.data?.createUser?.user?.email ?? null,
    createdError: created.error ? String(created.error) : null,
    badGraphQLErrors: bad.error?.graphQLErrors?.length ?? 0,
    badNetworkError: bad.error?.networkError ? String(bad.error.networkError) : null,
  };
});

// Apollo Client: HttpLink and InMemoryCache as the getting-started guide sets them up.
await step("apollo", async () => {
  const { ApolloClient, InMemoryCache, HttpLink, gql, CombinedGraphQLErrors } = await import("@apollo/client");
  const client = new ApolloClient({ link: new HttpLink({ uri: url, headers: auth }), cache: new InMemoryCache() });
  const page = await client.query({ query: gql(usersQuery), variables: { first: 50 } });
  const created = await client.mutate({
    mutation: gql(createUser),
    variables: { input: { email: "apollo@acme.example", name: "Apollo User", role: "USER" } },
  });
  let bad;
  try {
    const res = await client.query({ query: gql(badQuery) });
    bad = { threw: false, graphQLError: CombinedGraphQLErrors.is(res.error), message: String(res.error?.message) };
  } catch (err) {
    bad = { threw: true, graphQLError: CombinedGraphQLErrors.is(err), message: String(err?.message) };
  }
  return {
    users: page.data?.account?.users?.edges?.length ?? null,
    createdEmail: created.data?.createUser?.user?.email ?? null,
    bad,
  };
});

// Apollo Client with its persisted-query link (automatic persisted queries,
// queries by GET once hashed) — the setup mobile teams use to save bytes.
await step("apolloPersisted", async () => {
  const { ApolloClient, InMemoryCache, HttpLink, gql } = await import("@apollo/client");
  const { PersistedQueryLink } = await import("@apollo/client/link/persisted-queries");
  const { createHash } = await import("node:crypto");
  const sha256 = (q) => createHash("sha256").update(q).digest("hex");
  const link = new PersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
    new HttpLink({ uri: url, headers: auth }),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const first = await client.query({ query: gql(usersQuery), variables: { first: 50 }, fetchPolicy: "network-only" });
  const again = await client.query({ query: gql(usersQuery), variables: { first: 50 }, fetchPolicy: "network-only" });
  return {
    firstUsers: first.data?.account?.users?.edges?.length ?? null,
    againUsers: again.data?.account?.users?.edges?.length ?? null,
  };
});

process.stdout.write(JSON.stringify(report) + "\n");
