#!/usr/bin/env node
// Writes docs/openapi.json: the control API's OpenAPI 3.1 document, built from the route table of
// the built daemon (dist/, so run `npm run build` first; `npm run openapi` does both). A test
// checks the file against the table, so it is rewritten whenever a route changes.
import { writeFileSync } from 'node:fs';
import { fullRouteTable } from '../dist/control/openapi-table.js';
import { openApiDocument, openApiJson } from '../dist/control/openapi.js';

const out = new URL('../docs/openapi.json', import.meta.url);
const doc = openApiDocument(fullRouteTable());
writeFileSync(out, openApiJson(doc));
console.log(`wrote docs/openapi.json (${Object.keys(doc.paths).length} paths)`);
