// Runs operations through Apollo's federation gateway (@apollo/gateway inside @apollo/server)
// over a given supergraph, so that the real subgraphs named by its join__Graph urls answer
// the gateway's query plans.
// Usage: node gateway.mjs SUPERGRAPH.graphql QUERIES.json
//   QUERIES.json: [{ "query": "...", "variables": { ... } }, ...] ("variables" optional,
//   "operationName" optional too)
// Exit 0: on stdout, one JSON array with one { "data", "errors" } per operation, in order, as
//         the gateway answered it (a key the gateway left out is left out).
// Exit 1: the gateway could not start or an operation could not be run; the message on
//         stderr. (An operation that the gateway answers with errors is not a failure.)
// Exit 3: still running after 60 s; "timeout" on stderr.
// The gateway's and the server's log lines go to stderr. Nothing leaves the machine: Apollo's
// usage reporting, schema reporting and the gateway's own telemetry (which would probe cloud
// metadata addresses and send metrics to Apollo) are off, and the subgraphs are reached
// directly, without any proxy from the environment.
import fs from 'node:fs';

const TIMEOUT_MS = 60_000;

// Before anything of Apollo's is constructed: the only APOLLO_* variable is the one that
// turns the gateway's telemetry off (APOLLO_KEY, APOLLO_GRAPH_REF and the like would turn
// reporting to Apollo on), and no proxy stands between the gateway and the subgraphs.
for (const name of Object.keys(process.env)) {
  if (/^APOLLO_/i.test(name) || /^(https?|all|no)_proxy$/i.test(name)) delete process.env[name];
}
process.env.APOLLO_TELEMETRY_DISABLED = 'true';

const timer = setTimeout(() => {
  process.stderr.write('timeout\n');
  process.exit(3);
}, TIMEOUT_MS);

const { ApolloGateway } = await import('@apollo/gateway');
const { ApolloServer } = await import('@apollo/server');
const { ApolloServerPluginSchemaReportingDisabled, ApolloServerPluginUsageReportingDisabled } = await import(
  '@apollo/server/plugin/disabled'
);

/** Log lines to stderr, never stdout (which carries only the answers); no debug lines. */
const log = (level) => (...args) => process.stderr.write(`[${level}] ${args.join(' ')}\n`);
const logger = { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') };

function fail(e) {
  process.stderr.write(`${e?.message ?? e}\n`);
  process.exit(1);
}

async function main() {
  const [supergraphFile, queriesFile] = process.argv.slice(2);
  if (!supergraphFile || !queriesFile || process.argv.length > 4) {
    throw new Error('usage: node gateway.mjs SUPERGRAPH.graphql QUERIES.json');
  }
  const supergraphSdl = fs.readFileSync(supergraphFile, 'utf8');
  const queries = JSON.parse(fs.readFileSync(queriesFile, 'utf8'));
  if (!Array.isArray(queries)) throw new Error(`${queriesFile}: expected an array of { query, variables }`);

  const gateway = new ApolloGateway({ supergraphSdl, logger });
  const server = new ApolloServer({
    gateway,
    logger,
    includeStacktraceInErrorResponses: false,
    plugins: [ApolloServerPluginUsageReportingDisabled(), ApolloServerPluginSchemaReportingDisabled()],
  });
  // start() loads the gateway (parses the supergraph and builds the query planner); it does
  // not ask the subgraphs for anything.
  await server.start();
  const answers = [];
  try {
    for (const [i, q] of queries.entries()) {
      if (typeof q?.query !== 'string') throw new Error(`${queriesFile}: entry ${i} needs a string "query"`);
      const res = await server.executeOperation({
        query: q.query,
        variables: q.variables ?? undefined,
        operationName: q.operationName ?? undefined,
      });
      if (res.body.kind !== 'single') throw new Error(`operation ${i}: an incremental (@defer) answer is not supported`);
      const { data, errors } = res.body.singleResult;
      answers.push({ data, errors });
    }
  } finally {
    await server.stop(); // stops the gateway too
  }
  return answers;
}

try {
  const answers = await main();
  clearTimeout(timer);
  process.stdout.write(`${JSON.stringify(answers)}\n`, () => process.exit(0));
} catch (e) {
  fail(e);
}
