#!/usr/bin/env node
// Fails when src/ has an import circle (bullmq runs `madge --circular` for the same reason: a circle
// makes load order decide what is undefined at import time). Relative imports only. `import type`
// across folders counts too, since a type circle between layers is the same knot in the layering
// (docs/architecture.md); inside one folder (an adapter's subscription naming its transport's type)
// it is erased at build time and the folder is one unit, so it does not count.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(process.argv[2] ?? 'src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s(type\s)?[^;]*?from\s+['"](\.[^'"]+)['"]/g;
const DYNAMIC = /import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function files(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) files(path, out);
    else if (path.endsWith('.ts') && !path.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const graph = new Map();
for (const file of files(ROOT)) {
  const text = readFileSync(file, 'utf8');
  const deps = new Set();
  // Dynamic imports count too: connect.ts loads adapters lazily, and an adapter importing connect.ts
  // back was the circle this check was written for.
  for (const m of text.matchAll(IMPORT)) {
    const target = resolve(dirname(file), m[2]);
    if (!m[1] || dirname(target) !== dirname(file)) deps.add(target);
  }
  for (const m of text.matchAll(DYNAMIC)) deps.add(resolve(dirname(file), m[1]));
  graph.set(file, [...deps].filter((d) => d !== file));
}

const state = new Map(); // 1 = on the stack, 2 = done
const stack = [];
const cycles = [];
function visit(node) {
  state.set(node, 1);
  stack.push(node);
  for (const dep of graph.get(node) ?? []) {
    if (!graph.has(dep)) continue;
    if (state.get(dep) === 1) cycles.push([...stack.slice(stack.indexOf(dep)), dep]);
    else if (!state.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(node, 2);
}
for (const node of graph.keys()) if (!state.has(node)) visit(node);

if (cycles.length > 0) {
  for (const c of cycles) console.error(`import circle: ${c.map((f) => relative(process.cwd(), f)).join(' -> ')}`);
  process.exit(1);
}
console.log(`no import circles in ${graph.size} files under ${relative(process.cwd(), ROOT) || '.'}`);
