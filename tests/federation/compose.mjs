// Composes subgraph SDLs into a supergraph with Apollo's composition library, as Apollo's
// tools (rover supergraph compose, the gateway's IntrospectAndCompose) do.
// Usage: node compose.mjs SUBGRAPHS.json
//   SUBGRAPHS.json: [{ "name": "...", "url": "http://...", "sdl": "..." }, ...]
// Exit 0: the supergraph SDL on stdout; composition hints, if any, on stderr as
//         "hint CODE: message" lines.
// Exit 1: composition failed; one "CODE: message" line per error on stderr (a message's line
//         breaks are folded to spaces so that each error stays on one line).
// Exit 2: anything else (usage, unreadable file, an SDL that does not parse, ...): the
//         message on stderr.
import fs from 'node:fs';

import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

/** One line: the code (when the error has one) and the message, line breaks folded. */
function line(error, prefix = '') {
  const code = error?.extensions?.code;
  const message = String(error?.message ?? error).replace(/\s*\n\s*/g, ' ').trim();
  return `${prefix}${code ? `${code}: ` : ''}${message}`;
}

function main() {
  const file = process.argv[2];
  if (!file || process.argv.length > 3) {
    throw new Error('usage: node compose.mjs SUBGRAPHS.json');
  }
  const subgraphs = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(subgraphs) || subgraphs.length === 0) {
    throw new Error(`${file}: expected a non-empty array of { name, url, sdl }`);
  }
  const services = subgraphs.map((s, i) => {
    if (typeof s?.name !== 'string' || typeof s?.sdl !== 'string') {
      throw new Error(`${file}: entry ${i} needs a string "name" and a string "sdl"`);
    }
    let typeDefs;
    try {
      typeDefs = parse(s.sdl);
    } catch (e) {
      throw new Error(`subgraph ${s.name}: ${e.message}`);
    }
    return { name: s.name, url: s.url, typeDefs };
  });

  const result = composeServices(services);
  if (result.errors && result.errors.length > 0) {
    for (const e of result.errors) process.stderr.write(`${line(e)}\n`);
    return 1;
  }
  for (const h of result.hints ?? []) {
    // A hint's code is in definition.code, not in extensions.
    process.stderr.write(`${line({ message: h.message, extensions: { code: h.definition?.code } }, 'hint ')}\n`);
  }
  const sdl = result.supergraphSdl;
  process.stdout.write(sdl.endsWith('\n') ? sdl : `${sdl}\n`);
  return 0;
}

let code;
try {
  code = main();
} catch (e) {
  process.stderr.write(`${e?.message ?? e}\n`);
  code = 2;
}
process.exitCode = code;
