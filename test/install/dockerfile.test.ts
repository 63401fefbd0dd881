/**
 * What can be checked of the image without a Docker engine: base images, user, entrypoint, production-only
 * dependencies, and that the build output is what the package's `bin` loads.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { argsOf, copiesOf, envOf, execForm, parseStages, type Stage } from './dockerfile.js';
import { REPO_ROOT } from './manifests.js';
import { NODE24_VERSION } from '../node24/node24.js';

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8');
const stages = parseStages(read('Dockerfile'));
const runtime = stages.at(-1)!;
const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };

function stageNamed(name: string): Stage {
  const stage = stages.find((s) => s.name === name);
  assert.ok(stage, `a stage named ${name}`);
  return stage;
}

/** The stage a `COPY --from=<name>` in the runtime stage reads `path` from. */
function sourceStageOf(path: string): Stage {
  const copy = copiesOf(runtime).find((c) => c.sources.some((s) => s.replace(/\/$/, '').endsWith(path)));
  assert.ok(copy?.from, `the runtime stage copies ${path} from another stage`);
  return stageNamed(copy.from);
}

describe('Dockerfile', () => {
  test('every stage builds on the exact Node 24 release that npm test runs the suite on', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    assert.match(NODE24_VERSION, /^24\.\d+\.\d+$/);
    for (const stage of stages) {
      assert.equal(stage.image, `node:${NODE24_VERSION}-bookworm-slim`, stage.name ?? 'the runtime stage');
    }
  });

  test('npm test runs the unit tests and the controller end-to-end file on that Node too', () => {
    assert.match(pkg.scripts.test!, /npm run test:unit && npm run test:unit:node24 && npm run test:e2e/);
    assert.match(pkg.scripts['test:unit:node24']!, /^tsx test\/node24\/node24\.ts --import tsx --test /);
    assert.equal(
      pkg.scripts['test:unit:node24']!.replace(/^tsx test\/node24\/node24\.ts /, ''),
      pkg.scripts['test:unit']!.replace(/^node /, ''),
      'the same files as test:unit',
    );
    assert.match(read('test/e2e/run.ts'), /NODE24_E2E_FILES = \['test\/e2e\/controller\.test\.ts'/);
  });

  test('the runtime stage runs as the non-root uid the Deployment expects', () => {
    const users = argsOf(runtime, 'USER');
    assert.equal(users.at(-1), '65532:65532');
    const manager = parseYaml(read('config/manager/manager.yaml')) as {
      spec: { template: { spec: { securityContext: { runAsUser: number; runAsGroup: number } } } };
    };
    const sc = manager.spec.template.spec.securityContext;
    assert.equal(`${sc.runAsUser}:${sc.runAsGroup}`, users.at(-1));
  });

  test('the entrypoint runs the package bin with node, and the default command is run', () => {
    const workdir = argsOf(runtime, 'WORKDIR').at(-1);
    const bin = pkg.bin['dataupload-operator'];
    assert.ok(bin && workdir);
    assert.deepEqual(execForm(argsOf(runtime, 'ENTRYPOINT').at(-1) ?? ''), ['node', posix.join(workdir, bin)]);
    assert.deepEqual(execForm(argsOf(runtime, 'CMD').at(-1) ?? ''), ['run']);
  });

  test('the runtime stage gets production dependencies only and runs nothing itself', () => {
    const deps = sourceStageOf('node_modules');
    const installs = argsOf(deps, 'RUN').filter((r) => /\bnpm (ci|install|i)\b/.test(r));
    assert.deepEqual(installs.length, 1);
    assert.match(installs[0]!, /\bnpm ci\b.*--omit=dev/);
    assert.equal(envOf(runtime).NODE_ENV, 'production');
    // npm run bench runs the compiled operator with these options (test/bench/systems.ts: imageNodeEnv).
    assert.match(envOf(runtime).NODE_OPTIONS ?? '', /^--enable-source-maps --max-semi-space-size=\d+$/);
    // No RUN and no VOLUME: the image is only copied files, which the read-only root filesystem keeps as built.
    assert.deepEqual(argsOf(runtime, 'RUN'), []);
    assert.deepEqual(argsOf(runtime, 'VOLUME'), []);
  });

  test('npm run build writes the dist/main.js that bin loads, and the image ships it', () => {
    const tsconfig = JSON.parse(read('tsconfig.build.json')) as {
      compilerOptions: { rootDir: string; outDir: string };
    };
    assert.equal(pkg.scripts.build, 'tsc -p tsconfig.build.json');
    const mainTs = posix.join(tsconfig.compilerOptions.rootDir, 'main.ts');
    const mainJs = posix.join(tsconfig.compilerOptions.outDir, 'main.js');
    assert.ok(existsSync(join(REPO_ROOT, mainTs)), `${mainTs} exists`);
    const binText = read(pkg.bin['dataupload-operator']!);
    assert.match(binText, new RegExp(`new URL\\('\\.\\./${mainJs.replace('.', '\\.')}'`));
    const build = sourceStageOf(tsconfig.compilerOptions.outDir);
    assert.ok(
      argsOf(build, 'RUN').some((r) => /\bnpm run build\b/.test(r)),
      'the dist stage runs npm run build',
    );
    const shipped = copiesOf(runtime).flatMap((c) => c.sources.map((s) => s.replace(/^\/app\/|\/$/g, '')));
    for (const needed of ['node_modules', 'dist', 'package.json', 'bin']) assert.ok(shipped.includes(needed), needed);
  });
});

describe('the production dependency set', () => {
  /** Source files under a directory, recursively. */
  function sourceFiles(dir: string): string[] {
    return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
      const path = posix.join(dir, entry.name);
      if (entry.isDirectory()) return sourceFiles(path);
      return entry.name.endsWith('.ts') ? [path] : [];
    });
  }

  /** Package names that a file loads at run time (type-only imports are erased by the compiler). */
  function runtimePackages(text: string): string[] {
    const specifiers = [
      ...text.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^;]*?\bfrom\s+'([^']+)'/gms),
      ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
      ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
    ].map((m) => m[1]!);
    return specifiers
      .filter((s) => !s.startsWith('.') && !s.startsWith('node:'))
      .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!));
  }

  const deps = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };

  test('covers every package the compiled operator loads', () => {
    const missing = sourceFiles('src').flatMap((file) =>
      runtimePackages(read(file))
        .filter((name) => !(name in deps.dependencies))
        .map((name) => `${file} loads ${name}`),
    );
    assert.deepEqual(missing, []);
  });

  test('declares no runtime dependency that no file under src/ imports', () => {
    // An unused dependency still ships in the image, with its advisories; a type-only import needs no runtime copy.
    const loaded = new Set(sourceFiles('src').flatMap((file) => runtimePackages(read(file))));
    assert.deepEqual(
      Object.keys(deps.dependencies).filter((name) => !loaded.has(name)),
      [],
    );
  });

  test('the import scan sees value imports and skips type-only ones', () => {
    const text = [
      "import type { V1Pod } from '@kubernetes/client-node';",
      "import { parse } from 'yaml';",
      "import {\n  a,\n  b,\n} from '@scope/pkg/sub';",
      "const t = await import('tsx/esm/api');",
      "import { x } from './local.js';",
      "import 'side-effect';",
    ].join('\n');
    assert.deepEqual(runtimePackages(text), ['yaml', '@scope/pkg', 'tsx', 'side-effect']);
  });
});

describe('.dockerignore', () => {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  /** Docker's rule for these simple patterns: the last matching pattern wins, `!` re-includes. */
  function ignored(path: string): boolean {
    let result = false;
    for (const raw of patterns) {
      const negated = raw.startsWith('!');
      const pattern = negated ? raw.slice(1) : raw;
      const base = pattern.replace(/\/\*\*$/, '');
      const matches = pattern === '**' || path === base || path.startsWith(`${base}/`);
      if (matches) result = !negated;
    }
    return result;
  }

  test('keeps local state out of the build context', () => {
    for (const path of ['node_modules/yaml/package.json', 'dist/main.js', '.git/config', 'test/e2e/run.ts']) {
      assert.ok(ignored(path), `${path} is ignored`);
    }
  });

  test('sends every file the Dockerfile copies from the context', () => {
    const fromContext = stages
      .flatMap((s) => copiesOf(s).filter((c) => c.from === undefined))
      .flatMap((c) => c.sources);
    assert.ok(fromContext.length > 0);
    for (const source of fromContext) {
      const path = source.replace(/^\.\//, '').replace(/\/$/, '');
      const isDirectory = statSync(join(REPO_ROOT, path)).isDirectory();
      assert.ok(!ignored(isDirectory ? `${path}/any-file` : path), `${path} reaches the build`);
    }
  });
});
