/**
 * Checks what each published package promises against what its built code does, without a
 * network or a server (run after `tsc -b`):
 *
 * - every package its `dist` imports (JavaScript and declarations, `node:` builtins aside) is in
 *   `dependencies` or `peerDependencies`, and every one listed there is imported (or satisfies a
 *   peer dependency of a package it depends on, as the CLI's SDK satisfies `s3exchange`'s peer);
 * - builtins are imported with the `node:` prefix;
 * - `exports`: every condition object lists `types` first and has a `default` (which CommonJS's
 *   `require` resolves), and each target exists;
 * - the module graph behind every entry point has no top-level `await` (Node's `require()` of an
 *   ES module refuses such a graph);
 * - the package's LICENSE is the repository's, and its README links only to absolute URLs or to
 *   files inside the package (the registry shows the README without the repository around it).
 *
 *   npx pnpm@10 check:packages
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

const root = resolve(import.meta.dirname, '../..')

/**
 * Dependencies declared before the built code imports them, each with its reason. A listed one that
 * is imported is reported, so that the entry can go.
 */
const declaredAhead: Record<string, Record<string, string>> = {}

interface PackageJson {
  name: string
  exports?: Record<string, Record<string, string>>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

const problems: string[] = []
const notes: string[] = []

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
}

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier)
}

/** The module specifiers a file imports, re-exports, requires or loads with `import()` (comments ignored). */
function specifiersOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  return info.importedFiles.map((reference) => reference.fileName)
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson
}

/** The package.json of a dependency as installed for the package in `dir`. */
function installedPackageJson(dir: string, name: string): PackageJson | undefined {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', name, 'package.json')
    if (existsSync(candidate)) return JSON.parse(readFileSync(candidate, 'utf8')) as PackageJson
    if (dirname(at) === at) return undefined
  }
}

function checkImports(dir: string, pkg: PackageJson): void {
  const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})])
  const importedBy = new Map<string, Set<string>>()
  const builtins = new Set(builtinModules)
  for (const file of filesUnder(join(dir, 'dist')).filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'))) {
    for (const specifier of specifiersOf(file)) {
      if (specifier.startsWith('.') || specifier.startsWith('node:')) continue
      const where = relative(dir, file)
      if (builtins.has(specifier) || builtins.has(packageOf(specifier))) {
        problems.push(`${pkg.name}: ${where} imports the builtin '${specifier}' without the node: prefix`)
        continue
      }
      const name = packageOf(specifier)
      if (name === pkg.name) continue // a self-reference through the package's own exports
      if (!importedBy.has(name)) importedBy.set(name, new Set())
      importedBy.get(name)?.add(where)
    }
  }
  for (const [name, files] of importedBy) {
    if (!declared.has(name)) {
      const some = [...files].slice(0, 3).join(', ')
      problems.push(
        `${pkg.name}: imports '${name}' (${some}${files.size > 3 ? ', …' : ''}) but lists it in neither dependencies nor peerDependencies`,
      )
    }
  }
  const ahead = declaredAhead[pkg.name] ?? {}
  // Peers of the packages this one depends on: a dependency may be there to satisfy one.
  const peersOfDependencies = new Map<string, string>()
  for (const dependency of Object.keys(pkg.dependencies ?? {})) {
    const installed = installedPackageJson(dir, dependency)
    for (const peer of Object.keys(installed?.peerDependencies ?? {})) peersOfDependencies.set(peer, dependency)
  }
  for (const name of declared) {
    if (importedBy.has(name)) {
      if (ahead[name]) notes.push(`${pkg.name}: now imports '${name}'; remove it from declaredAhead in test/packaging/check-packages.ts`)
      continue
    }
    if (ahead[name]) {
      notes.push(`${pkg.name}: '${name}' is declared ahead of its use: ${ahead[name]}`)
      continue
    }
    const satisfies = peersOfDependencies.get(name)
    if (satisfies && pkg.dependencies?.[name]) continue
    problems.push(`${pkg.name}: lists '${name}' but its built code never imports it`)
  }
}

/** Relative imports of a module, resolved to files. */
function relativeImports(file: string): string[] {
  return specifiersOf(file)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => resolve(dirname(file), specifier))
}

/** Line numbers of `await` (and `for await`) outside any function in a module. */
function topLevelAwaits(file: string): number[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.JS)
  const lines: number[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)) return
    const awaits = ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier !== undefined)
    if (awaits) lines.push(source.getLineAndCharacterOfPosition(node.getStart()).line + 1)
    ts.forEachChild(node, visit)
  }
  ts.forEachChild(source, visit)
  return lines
}

function checkExports(dir: string, pkg: PackageJson): void {
  const entries: string[] = []
  for (const [subpath, conditions] of Object.entries(pkg.exports ?? {})) {
    const names = Object.keys(conditions)
    if (names[0] !== 'types') problems.push(`${pkg.name}: exports['${subpath}'] must list 'types' first (it lists ${names.join(', ')})`)
    if (!('default' in conditions)) problems.push(`${pkg.name}: exports['${subpath}'] has no 'default' condition, which require() resolves`)
    for (const target of Object.values(conditions)) {
      if (!existsSync(join(dir, target))) problems.push(`${pkg.name}: exports['${subpath}'] points at ${target}, which does not exist`)
    }
    if (conditions.default) entries.push(join(dir, conditions.default))
  }
  if (!pkg.exports) problems.push(`${pkg.name}: no exports map`)
  // The graph behind the entry points, through relative imports.
  const seen = new Set<string>()
  const queue = entries.filter((file) => existsSync(file))
  while (queue.length > 0) {
    const file = queue.pop() as string
    if (seen.has(file)) continue
    seen.add(file)
    const lines = topLevelAwaits(file)
    if (lines.length > 0) {
      problems.push(
        `${pkg.name}: ${relative(dir, file)} has a top-level await (line ${lines.join(', ')}): require() of the package would fail`,
      )
    }
    for (const next of relativeImports(file)) if (existsSync(next)) queue.push(next)
  }
}

function checkLicenseAndReadme(dir: string, pkg: PackageJson): void {
  const license = join(dir, 'LICENSE')
  if (!existsSync(license)) problems.push(`${pkg.name}: no LICENSE file`)
  else if (readFileSync(license, 'utf8') !== readFileSync(join(root, 'LICENSE'), 'utf8')) {
    problems.push(`${pkg.name}: LICENSE differs from the repository's LICENSE`)
  }
  const readme = readFileSync(join(dir, 'README.md'), 'utf8')
  for (const match of readme.matchAll(/\]\(([^)\s]+)[^)]*\)/g)) {
    const target = match[1] as string
    if (/^(https?:|mailto:|#)/.test(target)) continue
    const path = resolve(dir, target.split('#')[0] as string)
    if (relative(dir, path).startsWith('..') || !existsSync(path) || path.endsWith('.test.ts')) {
      problems.push(`${pkg.name}: README links to ${target}, which is not in the package (use an absolute URL)`)
    }
  }
}

for (const name of readdirSync(join(root, 'packages')).sort()) {
  const dir = join(root, 'packages', name)
  if (!existsSync(join(dir, 'package.json'))) continue
  const pkg = readPackageJson(dir)
  if (!existsSync(join(dir, 'dist'))) {
    problems.push(`${pkg.name}: no dist/ (run npx pnpm@10 build first)`)
    continue
  }
  checkImports(dir, pkg)
  checkExports(dir, pkg)
  checkLicenseAndReadme(dir, pkg)
}

for (const note of notes) console.log(`note: ${note}`)
if (problems.length > 0) {
  for (const problem of problems) console.error(`✗ ${problem}`)
  process.exitCode = 1
} else {
  console.log(
    'packages: imports match dependencies and peers; exports resolve for import and require; no top-level await; LICENSE and README links ok',
  )
}
