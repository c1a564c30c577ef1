/**
 * The packages as a user gets them: packs the four packages, checks the tarballs (no tests, a
 * LICENSE, no workspace ranges), installs them with npm into fresh consumer projects, and runs a
 * round trip in each on the lowest Node the packages support and on Node 24.
 *
 * | consumer | module system, TypeScript resolution | @aws-sdk/client-s3 |
 * | --- | --- | --- |
 * | esm-nodenext | ESM, `module: nodenext`, strict + exactOptionalPropertyTypes + noUncheckedIndexedAccess | the oldest supported |
 * | esm-bundler | ESM, `moduleResolution: bundler` | the workspace's (newest) |
 * | cjs | CommonJS: plain `require()` (require.cjs), and TypeScript with `module: nodenext` compiled to `require()` | the oldest supported |
 *
 * Each consumer is installed once, then checked: one copy of @aws-sdk/client-s3, the user's, which
 * every package of ours resolves (`npm ls`; fauxqs may add its own, see docs/TESTING.md), no
 * @aws-sdk/lib-storage, and `tsc` with skipLibCheck off type-checks consumer/round-trip.ts, whose
 * `new S3ExchangeStore({ client })` takes the user's own S3Client. Then each runs the round trip on
 * each Node. The S3 server is the one named by S3_ENDPOINT_URL (e.g. Ceph RGW), else an embedded
 * one started here. Everything lives in one temp folder, removed at the end (kept with --keep).
 *
 *   npx pnpm@10 test:consumers                       # the matrix
 *   npx pnpm@10 test:consumers --sdk 3.700.0 --only esm-nodenext   # try another SDK (bisecting the range)
 *   npx pnpm@10 test:consumers --node 22.14.0        # another low Node
 */
import { type SpawnOptions, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, delimiter, dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { gunzipSync, zstdCompressSync } from 'node:zlib'
import { buildTar, startLocalS3 } from '@s3exchange/testing'
import { extract } from 'tar-stream'

const root = resolve(import.meta.dirname, '../..')
const packageDirs = ['core', 'store', 'testing', 'cli'].map((name) => join(root, 'packages', name))
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'))

const { values: flags } = parseArgs({
  options: {
    sdk: { type: 'string' },
    node: { type: 'string' },
    only: { type: 'string', multiple: true },
    keep: { type: 'boolean', default: false },
  },
})

/** The lowest Node: the floor of s3exchange's `engines`. */
const lowestNode = flags.node ?? String(readJson(join(root, 'packages/store/package.json')).engines.node).replace(/^>=\s*/, '')
/** The oldest SDK: the floor of the peer range. */
const peerRange = String(readJson(join(root, 'packages/core/package.json')).peerDependencies['@aws-sdk/client-s3'])
const oldestSdk = flags.sdk ?? peerRange.replace(/^[\^~>=\s]+/, '')
const newestSdk = flags.sdk ?? String(readJson(join(root, 'node_modules/@aws-sdk/client-s3/package.json')).version)

interface Consumer {
  name: string
  type: 'module' | 'commonjs'
  sdk: string
  tsconfig: Record<string, unknown>
  /** Commands to run on each Node, relative to the consumer. */
  runs: string[]
}

const strictest = { strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, skipLibCheck: false }
const consumers: Consumer[] = [
  {
    name: 'esm-nodenext',
    type: 'module',
    sdk: oldestSdk,
    tsconfig: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', ...strictest },
    runs: ['dist/round-trip.js'],
  },
  {
    name: 'esm-bundler',
    type: 'module',
    sdk: newestSdk,
    tsconfig: { module: 'preserve', moduleResolution: 'bundler', target: 'es2022', strict: true, skipLibCheck: false },
    runs: ['dist/round-trip.js'],
  },
  {
    name: 'cjs',
    type: 'commonjs',
    sdk: oldestSdk,
    tsconfig: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, skipLibCheck: false },
    runs: ['require.cjs', 'dist/round-trip.js'],
  },
].filter((consumer) => !flags.only || flags.only.includes(consumer.name)) as Consumer[]

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command; rejects with its output when it fails. */
function run(command: string, args: string[], options: SpawnOptions & { cwd: string }): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolvePromise({ code, stdout, stderr })
      else reject(new Error(`${command} ${args.join(' ')} (in ${options.cwd}) exited with ${code}\n${stdout}\n${stderr}`))
    })
  })
}

const started = performance.now()
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`
const step = (message: string) => console.log(`[${elapsed()}] ${message}`)

// npm runs on this Node (24, the workspace's pin), whichever `node` comes first on the PATH.
const env: Record<string, string | undefined> = {
  ...process.env,
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH}`,
  npm_config_yes: 'true',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
  npm_config_update_notifier: 'false',
}
for (const key of Object.keys(env)) if (key.startsWith('npm_package_') || key === 'npm_config_user_agent') delete env[key]
const npm = (args: string[], cwd: string) => run('npm', args, { cwd, env })
const pnpm = (args: string[], cwd: string) => {
  const execPath = process.env.npm_execpath
  return execPath && /pnpm/.test(execPath)
    ? run(process.execPath, [execPath, ...args], { cwd, env })
    : run('npx', ['pnpm@10', ...args], { cwd, env })
}

/** Names and sizes of a tarball's entries. */
async function tarballEntries(path: string): Promise<Map<string, number>> {
  const entries = new Map<string, number>()
  const reader = extract()
  const reading = (async () => {
    for await (const entry of reader) {
      entries.set(entry.header.name, entry.header.size ?? 0)
      entry.resume()
    }
  })()
  reader.end(gunzipSync(readFileSync(path)))
  await reading
  return entries
}

/** Where `name` resolves from a package folder: the nearest node_modules/name going up. */
function nearestInstalled(from: string, name: string): string | undefined {
  for (let at = from; dirname(at) !== at; at = dirname(at)) {
    if (existsSync(join(at, 'node_modules', name, 'package.json'))) return join(at, 'node_modules', name)
  }
  return undefined
}

const sdkCopies = new Map<string, string>()
const temp = mkdtempSync(join(tmpdir(), 's3x-consumers-'))
const problems: string[] = []
const rows: string[] = []
let server: Awaited<ReturnType<typeof startLocalS3>> | undefined
try {
  step(
    `temp folder ${temp}; lowest Node ${lowestNode}, Node ${process.versions.node}; SDK oldest ${oldestSdk} (peer ${peerRange}), newest ${newestSdk}`,
  )

  // 1. pack, and look inside
  const tarballs = join(temp, 'tarballs')
  mkdirSync(tarballs)
  await Promise.all(packageDirs.map((dir) => pnpm(['pack', '--pack-destination', tarballs], dir)))
  const tarballOf = new Map<string, string>()
  for (const dir of packageDirs) {
    const pkg = readJson(join(dir, 'package.json'))
    const file = readdirSync(tarballs).find((f) => f === `${pkg.name.replace('@', '').replace('/', '-')}-${pkg.version}.tgz`)
    if (!file) throw new Error(`no tarball for ${pkg.name}`)
    tarballOf.set(pkg.name, join(tarballs, file))
    const entries = await tarballEntries(join(tarballs, file))
    const tests = [...entries.keys()].filter((name) => /\.test\.(ts|js|d\.ts)(\.map)?$|\.test\.d\.ts/.test(name))
    if (tests.length > 0) problems.push(`${file} ships tests: ${tests.join(', ')}`)
    for (const required of ['package/LICENSE', 'package/README.md', 'package/package.json']) {
      if (!entries.has(required)) problems.push(`${file} lacks ${required}`)
    }
    const packed = JSON.parse((await run('tar', ['-xzOf', join(tarballs, file), 'package/package.json'], { cwd: temp })).stdout) as Record<
      string,
      Record<string, string>
    >
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
      for (const [name, range] of Object.entries(packed[field] ?? {})) {
        if (range.startsWith('workspace:')) problems.push(`${file}: ${field} ${name}@${range}`)
      }
    }
    const unpacked = [...entries.values()].reduce((sum, size) => sum + size, 0)
    rows.push(
      `${file}: ${(statSync(join(tarballs, file)).size / 1024).toFixed(0)} KiB packed, ${(unpacked / 1024).toFixed(0)} KiB unpacked, ${entries.size} files`,
    )
  }
  step(`packed:\n  ${rows.join('\n  ')}`)

  // 2. the lowest Node, from the npm package `node`
  const nodeDir = join(temp, `node-${lowestNode}`)
  mkdirSync(nodeDir)
  writeFileSync(join(nodeDir, 'package.json'), '{"private": true}\n')
  const nodes: Array<{ version: string; path: string }> = []
  const installingNode = npm(['install', '--no-save', `node@${lowestNode}`], nodeDir).then(() => {
    nodes.push({ version: lowestNode, path: join(nodeDir, 'node_modules/node/bin/node') })
  })

  // 3. the consumers, installed once each
  const consumerDir = (consumer: Consumer) => join(temp, consumer.name)
  const installs = consumers.map(async (consumer) => {
    const dir = consumerDir(consumer)
    mkdirSync(join(dir, 'src'), { recursive: true })
    const file = (name: string) => `file:${tarballOf.get(name)}`
    const dependencies: Record<string, string> = {
      '@aws-sdk/client-s3': consumer.sdk,
      '@s3exchange/core': file('@s3exchange/core'),
      '@s3exchange/testing': file('@s3exchange/testing'),
      s3exchange: file('s3exchange'),
      ...(consumer.type === 'commonjs' ? { '@s3exchange/cli': file('@s3exchange/cli') } : {}),
    }
    const packageJson = {
      name: `s3x-consumer-${consumer.name}`,
      private: true,
      type: consumer.type,
      dependencies,
      devDependencies: { '@types/node': `^${lowestNode.split('.')[0]}`, typescript: '5.9.3' },
      // The packed packages depend on each other by version: take them from the tarballs too.
      overrides: Object.fromEntries([...tarballOf].map(([name]) => [name, file(name)])),
    }
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(packageJson, null, 2)}\n`)
    writeFileSync(
      join(dir, 'tsconfig.json'),
      `${JSON.stringify({ compilerOptions: { ...consumer.tsconfig, types: ['node'], rootDir: 'src', outDir: 'dist' }, include: ['src'] }, null, 2)}\n`,
    )
    copyFileSync(join(import.meta.dirname, 'consumer/round-trip.ts'), join(dir, 'src/round-trip.ts'))
    if (consumer.type === 'commonjs') copyFileSync(join(import.meta.dirname, 'consumer/require.cjs'), join(dir, 'require.cjs'))
    await npm(['install', '--loglevel=error'], dir)
    step(`${consumer.name}: installed (@aws-sdk/client-s3 ${consumer.sdk})`)

    // one SDK, the user's: ours add no copy and all resolve the user's (fauxqs, the embedded server
    // behind @s3exchange/testing, brings its own when the user's is older than it needs)
    const copies = (await npm(['ls', '@aws-sdk/client-s3', '--all', '--parseable'], dir)).stdout.split('\n').filter(Boolean)
    const users = join(dir, 'node_modules/@aws-sdk/client-s3')
    const extra = copies.filter((copy) => copy !== users)
    const unexpected = extra.filter((copy) => !copy.startsWith(join(dir, 'node_modules/fauxqs/')))
    if (!copies.includes(users) || unexpected.length > 0) {
      problems.push(`${consumer.name}: ${copies.length} copies of @aws-sdk/client-s3:\n    ${copies.join('\n    ')}`)
    }
    for (const name of tarballOf.keys()) {
      const resolved = nearestInstalled(join(dir, 'node_modules', name), '@aws-sdk/client-s3')
      if (existsSync(join(dir, 'node_modules', name)) && resolved !== users)
        problems.push(`${consumer.name}: ${name} resolves @aws-sdk/client-s3 at ${resolved}`)
    }
    sdkCopies.set(consumer.name, copies.length === 1 ? 'one copy' : `one copy for ours; fauxqs adds its own (${extra.length})`)
    const sdkVersion = readJson(join(dir, 'node_modules/@aws-sdk/client-s3/package.json')).version
    if (sdkVersion !== consumer.sdk) problems.push(`${consumer.name}: @aws-sdk/client-s3 ${sdkVersion} installed, ${consumer.sdk} pinned`)
    const storage = (await npm(['ls', '@aws-sdk/lib-storage', '--all', '--parseable'], dir)).stdout.trim()
    if (storage) problems.push(`${consumer.name}: @aws-sdk/lib-storage is installed (${storage})`)

    // the user's S3Client type-checks against our types; compile the round trip
    try {
      await run(process.execPath, [join(dir, 'node_modules/typescript/bin/tsc'), '-p', '.'], { cwd: dir, env })
      step(
        `${consumer.name}: tsc ok (${Object.entries(consumer.tsconfig)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')})`,
      )
    } catch (error) {
      throw new Error(`${consumer.name}: tsc failed\n${(error as Error).message}`)
    }
  })
  const installed = await Promise.allSettled([installingNode, ...installs])
  for (const result of installed) if (result.status === 'rejected') problems.push(String((result.reason as Error).message ?? result.reason))
  nodes.push({ version: process.versions.node, path: process.execPath })

  // 4. an S3 server, and a zstd archive to read (built here, where zstd exists)
  const s3Env: Record<string, string> = {}
  if (!process.env.S3_ENDPOINT_URL) {
    server = await startLocalS3({ env: {} })
    Object.assign(s3Env, {
      S3_ENDPOINT_URL: server.endpoint,
      S3_AWS_ACCESS_KEY_ID: 'test',
      S3_AWS_SECRET_ACCESS_KEY: 'test',
      S3_REGION: server.region,
    })
  }
  const zstdArchive = join(temp, 'members.tar.zst')
  writeFileSync(
    zstdArchive,
    zstdCompressSync(
      await buildTar([
        { name: 'a.txt', data: 'alpha' },
        { name: 'b/c.txt', data: 'gamma' },
      ]),
    ),
  )
  step(`S3: ${process.env.S3_ENDPOINT_URL ?? `embedded, ${server?.endpoint}`}`)

  // 5. the round trips: every consumer on every Node
  const matrix: string[] = []
  for (const consumer of consumers) {
    for (const node of nodes) {
      for (const script of consumer.runs) {
        const label = `${consumer.name} / Node ${node.version} / ${basename(script)}`
        if (installed.some((r) => r.status === 'rejected')) {
          matrix.push(`✗ ${label}: not run (install or type-check failed)`)
          continue
        }
        try {
          const output = await run(node.path, [script], {
            cwd: consumerDir(consumer),
            env: { ...env, ...s3Env, ZSTD_ARCHIVE: zstdArchive, CONSUMER_LABEL: `${consumer.name}-${node.version}` },
          })
          const report = JSON.parse(output.stdout.trim().split('\n').at(-1) ?? '{}') as { node: string; done: string[] }
          if (report.node !== `v${node.version}`) throw new Error(`ran on ${report.node}, not ${node.version}`)
          matrix.push(`✓ ${label} (SDK ${consumer.sdk}, ${sdkCopies.get(consumer.name)}): ${report.done.join('; ')}`)
        } catch (error) {
          matrix.push(`✗ ${label} (SDK ${consumer.sdk})`)
          problems.push(`${label}: ${(error as Error).message}`)
        }
      }
    }
  }
  step(`round trips:\n  ${matrix.join('\n  ')}`)
} finally {
  await server?.stop()
  if (flags.keep) console.log(`kept ${temp}`)
  else rmSync(temp, { recursive: true, force: true })
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`✗ ${problem}`)
  process.exitCode = 1
} else {
  step('consumers: all passed')
}
