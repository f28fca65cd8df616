// Node.js binaries for the test matrix, fetched by package name from the npm registry
// (node-<platform>-<arch>@<major>, which ships Node's official build) and cached outside the repo.
// Why: CI must run the suite on every Node line users run (20, 22, 24) with nothing installed by hand.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const CACHE = process.env.CONVEYOR_NODE_CACHE ?? join(homedir(), '.cache', 'conveyor-node');

/** Path of a `node` binary of the given major line, downloaded once into the cache. */
export function nodeBinary(major) {
  const pkg = `node-${process.platform}-${process.arch}@${major}`;
  const dir = join(CACHE, String(major));
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'conveyor-node-'));
  try {
    const tarball = execFileSync('npm', ['pack', pkg, '--silent', '--pack-destination', work], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split('\n')
      .pop();
    execFileSync('tar', ['xzf', join(work, tarball), '-C', work]);
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(work, 'package'), dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}

/**
 * The extra Node lines to run the suite on: CONVEYOR_NODE_VERSIONS (comma list, "" for none);
 * in CI by default 22 and 24 besides the Node running npm.
 */
export function extraVersions() {
  const fromEnv = process.env.CONVEYOR_NODE_VERSIONS;
  const list = fromEnv !== undefined ? fromEnv : process.env.CI === 'true' ? '22,24' : '';
  const current = process.versions.node.split('.')[0];
  return list
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '' && v !== current);
}
