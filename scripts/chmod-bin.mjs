#!/usr/bin/env node
// Makes the CLI's bin executable after a build. npm sets a bin's mode when it links it, but in a
// fresh clone it links the package's own bin before `prepare` has built dist/: the link then points
// at a file tsc writes as 0644, and `npx conveyor` says "Permission denied".
import { chmodSync, readFileSync } from 'node:fs';

const { bin } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
for (const file of Object.values(typeof bin === 'string' ? { conveyor: bin } : bin)) chmodSync(new URL(`../${file}`, import.meta.url), 0o755);
