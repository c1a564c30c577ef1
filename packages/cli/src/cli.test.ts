/**
 * `s3x` as a user runs it: each test spawns `node packages/cli/dist/bin.js …` (dist/ is built by
 * `tsc -b`, which `npx pnpm@10 test` runs first) against the test S3 server, and checks what it
 * prints and its exit code. Setup and checks that are not the command under test go through the
 * library in this process. Tests run concurrently (each under its own prefix) to keep the
 * spawns' start-up cost down.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { DeleteBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import {
  buildTar,
  internalManifestFor,
  probeWriteOptions,
  type RecordedRequest,
  type S3Proxy,
  s3Operation,
  startS3Proxy,
  type WriteOptionSupport,
} from '@s3exchange/testing'
import { expectOptionsOnEveryRequest, testServer, useTestS3 } from '@s3exchange/testing/vitest'
import {
  type FileEntry,
  libraryBehaviour,
  type ManifestEntry,
  readInternalManifest,
  S3ExchangeStore,
  type ServerProbe,
  type ShardEntry,
  type WriteOptions,
} from 's3exchange'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')

const BIN = join(import.meta.dirname, '..', 'dist', 'bin.js')

const s3 = useTestS3()
let store: S3ExchangeStore
/** A second bucket, for s3:// URIs that name another bucket than S3_BUCKET. */
let otherBucket: string
let otherStore: S3ExchangeStore
let work: string

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  otherBucket = await s3.s3.createBucket(`s3x-other-${randomBytes(4).toString('hex')}`)
  otherStore = new S3ExchangeStore({ client: s3.client, bucket: otherBucket })
  work = await mkdtemp(join(tmpdir(), 's3x-test-'))
})

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
  if (otherStore) {
    await otherStore.deletePrefix(`${s3.prefix}/`)
    await s3.client.send(new DeleteBucketCommand({ Bucket: otherBucket }))
  }
})

interface Run {
  code: number | null
  stdout: Buffer
  out: string
  err: string
}

/** The environment a user would set for the test server (and no AWS profile of this machine's). */
function s3Env(): Record<string, string | undefined> {
  const connection = inject('s3')
  return {
    AWS_PROFILE: undefined,
    AWS_CONFIG_FILE: join(work, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-aws-credentials'),
    S3_ENDPOINT_URL: connection.endpoint,
    S3_AWS_ACCESS_KEY_ID: connection.credentials.accessKeyId,
    S3_AWS_SECRET_ACCESS_KEY: connection.credentials.secretAccessKey,
    S3_REGION: connection.region,
    S3_FORCE_PATH_STYLE: String(connection.forcePathStyle),
    S3_BUCKET: s3.bucket,
  }
}

/** Spawns `s3x args` with the test server's environment (stdin not a terminal), in a folder without a .env. */
function s3x(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...s3Env(), ...options.env }
    for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name]
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? work, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      const bytes = Buffer.concat(stdout)
      resolve({ code, stdout: bytes, out: bytes.toString('utf8'), err: Buffer.concat(stderr).toString('utf8') })
    })
  })
}

/** The output lines, without the final empty one. */
function lines(text: string): string[] {
  return text.split('\n').filter((line, index, all) => !(line === '' && index === all.length - 1))
}

function describeRun(run: Run): string {
  return `exit ${run.code}\nstdout:\n${run.out.slice(0, 4000)}\nstderr:\n${run.err}`
}

async function entriesOf(manifest: string, resolveRefs = true): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = []
  for await (const entry of store.iterManifestEntries(manifest, { resolveRefs })) entries.push(entry)
  return entries
}

async function objectBytes(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
}

/** Writes files (relative path → contents) under a new folder of `work`. */
async function makeTree(name: string, files: Record<string, Uint8Array | string>): Promise<string> {
  const root = join(work, name)
  for (const [path, data] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true })
    await writeFile(join(root, path), data)
  }
  return root
}

/** Every file under a folder: relative path (with '/') → contents. */
async function readTree(root: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    files.set(
      path
        .slice(root.length + 1)
        .split('\\')
        .join('/'),
      await readFile(path),
    )
  }
  return files
}

it('the CLI is built (it runs dist/bin.js; run `npx tsc -b`)', () => {
  expect(existsSync(BIN)).toBe(true)
})

describe.concurrent('s3x', () => {
  it('--help, --version, and --help for every command', async ({ expect }) => {
    const commands = ['ls', 'manifest ls', 'cat', 'get', 'put', 'pack', 'compact', 'rm', 'verify', 'stat', 'doctor']
    const [help, version, ...each] = await Promise.all([
      s3x(['--help']),
      s3x(['--version']),
      ...commands.map((command) => s3x([...command.split(' '), '--help'])),
    ])
    expect(help.code, describeRun(help)).toBe(0)
    for (const command of commands) expect(help.out).toContain(`  ${command} `)
    expect(help.out).toContain('Exit codes: 0 success, 1 failure')
    expect(version.code).toBe(0)
    expect(version.out).toMatch(/^\d+\.\d+\.\d+\n$/)
    commands.forEach((command, index) => {
      const run = each[index] as Run
      expect(run.code, describeRun(run)).toBe(0)
      expect(run.out.startsWith(`Usage: s3x ${command}`), run.out).toBe(true)
      expect(run.out).toContain('--bucket NAME')
      expect(run.err).toBe('')
    })
  })

  it('usage errors exit 2 with one line and a hint', async ({ expect }) => {
    const runs = await Promise.all([
      s3x(['frobnicate']),
      s3x(['ls', '--frob']),
      s3x(['cat']),
      s3x(['manifest']),
      s3x(['pack', 'dir', 'prefix', '--manifest', 'm.jsonl', '--max-bytes', 'lots']),
      s3x(['put', 'dir', 'prefix', '--append']),
      s3x(['ls', 'a', 'b']),
      s3x(['ls', 'x'], { env: { S3_BUCKET: undefined } }),
      s3x(['doctor', '--max-single-put', 'big']),
      s3x([]),
    ])
    const messages = [
      "s3x: unknown command 'frobnicate'",
      "s3x: ls: unknown option '--frob'",
      's3x: cat: missing argument (usage: s3x cat <key | archive#member | s3://bucket/key>)',
      "s3x: 'manifest' needs a subcommand: manifest ls",
      "s3x: pack: --max-bytes needs a size such as 512, 10k, 64MiB or 1G, not 'lots'",
      's3x: put: --append needs --manifest <key>',
      "s3x: ls: unexpected argument 'b'",
      's3x: ls: no bucket: set S3_BUCKET (in the environment or .env), pass --bucket, or give an s3://bucket/… URI',
      "s3x: doctor: --max-single-put needs a size such as 512, 10k, 64MiB or 1G, not 'big'",
    ]
    messages.forEach((message, index) => {
      const run = runs[index] as Run
      expect(run.code, describeRun(run)).toBe(2)
      expect(lines(run.err)[0]).toBe(message)
      expect(lines(run.err)[1]).toMatch(/^Run 's3x .*--help' for usage\.$/)
      expect(run.out).toBe('')
    })
    const bare = runs[9] as Run
    expect(bare.code).toBe(2)
    expect(bare.err).toContain('Usage: s3x <command>')
  })

  it('a missing manifest: exit 1, one line, no stack trace (unless --debug)', async ({ expect }) => {
    const missing = s3.key('nothing/manifest.jsonl')
    const [plain, debug, verify, stat] = await Promise.all([
      s3x(['manifest', 'ls', missing]),
      s3x(['manifest', 'ls', missing, '--debug']),
      s3x(['verify', missing]),
      s3x(['stat', missing, '--json']),
    ])
    for (const run of [plain, verify]) {
      expect(run.code, describeRun(run)).toBe(1)
      expect(run.err).toBe(`s3x: Manifest not found: ${missing}\n`)
      expect(run.out).toBe('')
    }
    expect(stat.code, describeRun(stat)).toBe(1)
    expect(JSON.parse(stat.err)).toMatchObject({ name: 'ManifestNotFoundError', message: `Manifest not found: ${missing}`, key: missing })
    expect(stat.out).toBe('')
    expect(debug.code).toBe(1)
    expect(debug.err).toContain(`s3x: ManifestNotFoundError: Manifest not found: ${missing}`)
    expect(debug.err).toMatch(/\n\s+at /)
  })

  it('pack, verify, get: a folder of 1,000 files round-trips byte for byte', async ({ expect }) => {
    // Nested folders, a few empty files, non-ASCII and long names.
    const files: Record<string, Uint8Array> = {}
    const special = ['données/été ü.txt', '日本語/ファイル.bin', 'emoji-🎉.bin', `${'deep/'.repeat(30)}leaf.txt`]
    for (const name of special) files[name] = randomBytes(777)
    for (let i = 0; Object.keys(files).length < 1000; i++) {
      const size = i % 97 === 0 ? 0 : (i * 7919) % 6000
      files[`d${i % 10}/e${i % 7}/file-${String(i).padStart(4, '0')}.bin`] = randomBytes(size)
    }
    expect(Object.values(files).filter((data) => data.byteLength === 0).length).toBeGreaterThanOrEqual(3)
    const source = await makeTree('thousand', files)
    const manifest = s3.key('thousand/manifest.jsonl')

    const pack = await s3x(['pack', source, s3.key('thousand/shards'), '--manifest', manifest, '--max-entries', '300'])
    expect(pack.code, describeRun(pack)).toBe(0)
    const archives = lines(pack.out).map((line) => line.split('\t'))
    expect(archives.map(([, count]) => count)).toStrictEqual(['300', '300', '300', '100'])
    // Named as shardInto and the ManifestWriter name theirs: a run id, the index on 5 digits, gzip by default.
    for (const [i, [key]] of archives.entries()) {
      expect(key).toMatch(new RegExp(`^${s3.key('thousand/shards/')}shard-\\d{8}-\\d{6}-[0-9a-f]{6}-0000${i}\\.tar\\.gz$`))
    }
    expect(pack.err).toMatch(/^packed 1000 file\(s\), .* into 4 shard\(s\); appended to .*manifest\.jsonl as .*\/manifests\/part-/m)

    const verify = await s3x(['verify', manifest])
    expect(verify.code, describeRun(verify)).toBe(0)
    expect(verify.out).toMatch(/^ok: 2 manifest\(s\), 0 loose file\(s\), 4 archive\(s\) \(1000 members\), .* checked; no problems$/m)

    const target = join(work, 'thousand-out')
    const get = await s3x(['get', manifest, target])
    expect(get.code, describeRun(get)).toBe(0)
    expect(lines(get.out)).toHaveLength(1000)
    expect(get.err).toBe(`1000 file(s) written under ${target}\n`)
    const restored = await readTree(target)
    expect([...restored.keys()].sort()).toStrictEqual(Object.keys(files).sort())
    for (const [path, data] of Object.entries(files)) expect(Buffer.compare(restored.get(path) as Buffer, Buffer.from(data)), path).toBe(0)

    // The same manifest, read by stat and listed.
    const [stat, listed, raw, expanded] = await Promise.all([
      s3x(['stat', manifest, '--json']),
      s3x(['manifest', 'ls', manifest]),
      s3x(['manifest', 'ls', manifest, '--raw', '--json']),
      s3x(['manifest', 'ls', manifest, '--expand-shards', '--json']),
    ])
    expect(stat.code, describeRun(stat)).toBe(0)
    expect(JSON.parse(stat.out)).toMatchObject({
      manifests: 2,
      maxRefDepth: 1,
      entries: 5,
      files: 0,
      shards: 4,
      refs: 1,
      shardMembers: 1000,
    })
    expect(lines(listed.out).map((line) => line.split('\t').slice(0, 2))).toStrictEqual(archives.map(([key]) => ['shard', key]))
    expect(lines(raw.out).map((line) => JSON.parse(line).kind)).toStrictEqual(['manifest_ref'])
    const members = lines(expanded.out).map((line) => JSON.parse(line))
    expect(members).toHaveLength(1000)
    expect(new Set(members.map((member) => member.member_path))).toStrictEqual(new Set(Object.keys(files)))
    // --json lines are manifest lines: non-ASCII escaped as Python writes it.
    expect(expanded.out).toContain('"member_path":"donn\\u00e9es/\\u00e9t\\u00e9 \\u00fc.txt"')
  })

  it('verify reports every problem and exits 1', async ({ expect }) => {
    const key = (name: string) => s3.key(`broken/${name}`)
    const good = await store.putObject(key('good.txt'), Buffer.from('fine'))
    const resized = await store.putObject(key('resized.txt'), Buffer.from('hello'))
    await store.putObject(key('resized.txt'), Buffer.from('hello, longer now'))
    // Same size, other bytes, no ETag in the entry: only its sha256 can tell.
    const swapped = { ...(await store.putObject(key('swapped.txt'), Buffer.from('abcde'))), etag: null }
    await store.putObject(key('swapped.txt'), Buffer.from('edcba'))
    const items = Array.from({ length: 20 }, (_, i) => ({ source: randomBytes(3000), member_path: `m/${i}.bin` }))
    const truncated = (await store.putShardArchive(key('truncated.tar'), items, { compression: null })).entry
    const whole = await objectBytes(truncated.archive_key)
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: truncated.archive_key, Body: whole.subarray(0, Math.floor(whole.byteLength / 2)) }),
    )
    // A flipped byte inside a member of a plain shard: the archive reads to the end, the member's sha256 differs.
    const flipped = (await store.putShardArchive(key('flipped.tar'), items.slice(0, 3), { compression: null })).entry
    const flippedBytes = await objectBytes(flipped.archive_key)
    const victim = (await readInternalManifest(store.context(), flipped))[1] as FileEntry & { offset: number }
    flippedBytes[victim.offset] = (flippedBytes[victim.offset] as number) ^ 0x01
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: flipped.archive_key, Body: flippedBytes }))
    // Without its size and ETag, so that only the member's sha256 can tell.
    const flippedEntry: ShardEntry = { ...flipped, size_bytes: null, meta: null }
    // An archive whose internal manifest lists a member it lacks, and lacks one it holds.
    const hostileKey = key('hostile.tar')
    const listedManifest = internalManifestFor(hostileKey, [
      { name: 'x.txt', data: 'x' },
      { name: 'gone.txt', data: 'gone' },
    ])
    const hostile = await buildTar([
      { name: '__manifest__.jsonl', data: listedManifest },
      { name: 'x.txt', data: 'x' },
      { name: 'extra.txt', data: 'not listed' },
    ])
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: hostileKey, Body: hostile }))
    const entries: ManifestEntry[] = [
      good,
      resized,
      swapped,
      { kind: 'file', key: key('missing.txt') },
      truncated,
      flippedEntry,
      { kind: 'shard', archive_key: hostileKey, compression: null, count: 2 } satisfies ShardEntry,
      { kind: 'manifest_ref', key: key('nope.jsonl') },
    ]
    const manifest = key('manifest.jsonl')
    await store.writeManifest(manifest, entries)

    const [json, human] = await Promise.all([s3x(['verify', manifest, '--json']), s3x(['verify', manifest])])
    expect(json.code, describeRun(json)).toBe(1)
    const report = JSON.parse(json.out) as { ok: boolean; problems: { key: string; problem: string }[] }
    expect(report.ok).toBe(false)
    const problemsOf = (name: string) => report.problems.filter((problem) => problem.key === name).map((problem) => problem.problem)
    expect(problemsOf(good.key)).toStrictEqual([])
    expect(problemsOf(resized.key)).toContain('the object has 17 bytes, the manifest says 5')
    expect(problemsOf(resized.key).some((problem) => problem.startsWith("the object's ETag is"))).toBe(true)
    expect(problemsOf(key('missing.txt'))).toStrictEqual(['the object does not exist'])
    expect(problemsOf(swapped.key)).toStrictEqual([`sha256 is ${sha256('edcba')}, the manifest says ${sha256('abcde')}`])
    expect(problemsOf(`${flipped.archive_key}#${victim.member_path}`)).toStrictEqual([
      `sha256 is ${sha256(Buffer.from(items[1]?.source ?? []).map((byte, i) => (i === 0 ? byte ^ 0x01 : byte)))}, the manifest says ${victim.sha256}`,
    ])
    expect(problemsOf(flipped.archive_key)).toStrictEqual([])
    expect(problemsOf(truncated.archive_key)).toContain(
      `the archive has ${Math.floor(whole.byteLength / 2)} bytes, the manifest says ${whole.byteLength}`,
    )
    expect(problemsOf(truncated.archive_key).some((problem) => problem.startsWith('the archive cannot be read to the end'))).toBe(true)
    expect(problemsOf(`${hostileKey}#gone.txt`)).toStrictEqual(['listed in the internal manifest but not in the archive'])
    expect(problemsOf(`${hostileKey}#extra.txt`)).toStrictEqual(['in the archive but not listed in its internal manifest'])
    expect(problemsOf(`${hostileKey}#x.txt`)).toStrictEqual([])
    expect(problemsOf(key('nope.jsonl'))).toStrictEqual([`Manifest not found: ${key('nope.jsonl')} (referenced from ${manifest})`])

    expect(human.code, describeRun(human)).toBe(1)
    expect(human.out).toContain(`PROBLEM ${key('missing.txt')}: the object does not exist\n`)
    expect(lines(human.out).at(-1)).toMatch(/^FAILED: 1 manifest\(s\), 4 loose file\(s\), 3 archive\(s\) .*; \d+ problem\(s\)$/)
  })

  it('ls lists the keys under a prefix, one per line', async ({ expect }) => {
    const keys = ['ls/a.txt', 'ls/b/c.txt', 'ls/ü.txt', 'lsx/other.txt'].map((name) => s3.key(name))
    for (const key of keys) await store.putObject(key, Buffer.from(key))
    const run = await s3x(['ls', s3.key('ls/')])
    expect(run.code, describeRun(run)).toBe(0)
    expect(lines(run.out)).toStrictEqual(keys.slice(0, 3))
  })

  it('cat writes an object or a shard member to stdout, byte for byte', async ({ expect }) => {
    const binary = Buffer.concat([Buffer.from([0, 0xff, 0xfe, 0x80, 0x0a, 0x0d]), randomBytes(300_000)])
    await store.putObject(s3.key('cat/blob.bin'), binary)
    const shard = await store.putShardArchive(s3.key('cat/s.tar.gz'), [{ source: binary, member_path: 'in/blob.bin' }])
    const [loose, member, missing] = await Promise.all([
      s3x(['cat', s3.key('cat/blob.bin')]),
      s3x(['cat', `${shard.archiveKey}#in/blob.bin`]),
      s3x(['cat', s3.key('cat/none.bin')]),
    ])
    expect(loose.code, describeRun(loose)).toBe(0)
    expect(Buffer.compare(loose.stdout, binary)).toBe(0)
    expect(member.code, describeRun(member)).toBe(0)
    expect(Buffer.compare(member.stdout, binary)).toBe(0)
    expect(missing.code).toBe(1)
    expect(missing.err).toBe(`s3x: S3 object not found: ${s3.key('cat/none.bin')}\n`)
  })

  it('put uploads a folder with relative paths, then overwrites or appends to a manifest', async ({ expect }) => {
    const source = await makeTree('put', { 'a.txt': 'a', 'sub/b.txt': 'bb', 'sub/deeper/ç.txt': 'ccc' })
    const single = await makeTree('put-single', { 'one.txt': 'one' })
    const manifest = s3.key('put/manifest.jsonl')
    const first = await s3x(['put', source, s3.key('put/data'), '--manifest', manifest])
    expect(first.code, describeRun(first)).toBe(0)
    const keys = ['a.txt', 'sub/b.txt', 'sub/deeper/ç.txt'].map((name) => s3.key(`put/data/${name}`))
    expect(lines(first.out)).toStrictEqual(keys)
    expect(first.err).toContain(`wrote 3 entries to ${manifest}`)
    expect((await objectBytes(keys[2] as string)).toString()).toBe('ccc')

    const second = await s3x(['put', join(single, 'one.txt'), s3.key('put/more/'), '--manifest', manifest, '--append', '--json'])
    expect(second.code, describeRun(second)).toBe(0)
    const written = JSON.parse(second.out)
    expect(written).toMatchObject({ kind: 'file', key: s3.key('put/more/one.txt'), size_bytes: 3 })
    expect(second.err).toMatch(/appended 1 entries to .*manifest\.jsonl \(.*\/manifests\/part-.*\.jsonl\)/)

    const entries = await entriesOf(manifest)
    expect(entries.map((entry) => (entry as { key: string }).key)).toStrictEqual([...keys, s3.key('put/more/one.txt')])
    expect((await entriesOf(manifest, false)).map((entry) => entry.kind)).toStrictEqual(['file', 'file', 'file', 'manifest_ref'])
  })

  it('pack --gzip --overwrite replaces the manifest; --max-bytes accepts sizes', async ({ expect }) => {
    const source = await makeTree('pack-gz', { 'a.bin': randomBytes(6000), 'b.bin': randomBytes(6000), 'c/d.bin': randomBytes(6000) })
    const manifest = s3.key('pack-gz/manifest.jsonl')
    await store.writeManifest(manifest, [{ kind: 'file', key: s3.key('pack-gz/old.txt') }])
    const run = await s3x([
      'pack',
      source,
      s3.key('pack-gz/shards'),
      '--manifest',
      manifest,
      '--gzip',
      '--overwrite',
      '--max-bytes',
      '10k',
      '--json',
    ])
    expect(run.code, describeRun(run)).toBe(0)
    const report = JSON.parse(run.out)
    expect(report).toMatchObject({ manifest, mode: 'overwrite', files: 3, bytes: 18000, parts: [] })
    expect(report.shards.map((shard: ShardEntry) => shard.count)).toStrictEqual([1, 1, 1])
    const entries = await entriesOf(manifest, false)
    expect(entries.map((entry) => entry.kind)).toStrictEqual(['shard', 'shard', 'shard'])
    expect((entries as ShardEntry[]).map((entry) => entry.archive_key)).toStrictEqual(
      report.shards.map((shard: ShardEntry) => shard.archive_key),
    )
    for (const entry of entries as ShardEntry[]) expect(entry.archive_key).toMatch(/\.tar\.gz$/)
  })

  it('pack --zstd writes seekable .tar.zst shards that verify, cat (one member) and get read back; --gzip with --zstd is a usage error', async ({
    expect,
  }) => {
    const files = { 'a.txt': Buffer.from('alpha '.repeat(500)), 'b/c.bin': randomBytes(70_000), 'b/d.txt': Buffer.from('delta') }
    const source = await makeTree('pack-zst', files)
    const manifest = s3.key('pack-zst/manifest.jsonl')
    const run = await s3x(['pack', source, s3.key('pack-zst/shards'), '--manifest', manifest, '--zstd', '--json'])
    expect(run.code, describeRun(run)).toBe(0)
    const report = JSON.parse(run.out)
    expect(report.shards).toHaveLength(1)
    expect(report.shards[0]).toMatchObject({ compression: 'zstd', count: 3, archive_key: expect.stringMatching(/\.tar\.zst$/) })
    const archive = report.shards[0].archive_key as string
    const listed = await Array.fromAsync(store.getShard(archive).getManifest())
    for (const entry of listed) expect(entry).toMatchObject({ zst_offset: expect.any(Number), zst_size: expect.any(Number) })
    const target = join(work, 'pack-zst-out')
    const [verify, cat, get] = await Promise.all([
      s3x(['verify', manifest]),
      s3x(['cat', `${archive}#b/d.txt`]),
      s3x(['get', manifest, target]),
    ])
    expect(verify.code, describeRun(verify)).toBe(0)
    expect(cat.code, describeRun(cat)).toBe(0)
    expect(cat.out).toBe('delta')
    expect(get.code, describeRun(get)).toBe(0)
    for (const [path, data] of Object.entries(files)) expect((await readFile(join(target, path))).equals(data), path).toBe(true)

    const both = await s3x(['pack', source, s3.key('pack-zst/other'), '--manifest', manifest, '--gzip', '--zstd'])
    expect(both.code, describeRun(both)).toBe(2)
    expect(lines(both.err)[0]).toBe('s3x: pack: --gzip and --zstd contradict each other')
  })

  it('get downloads one key, and one shard member under its path', async ({ expect }) => {
    await store.putObject(s3.key('get/x/file.txt'), Buffer.from('loose'))
    const shard = await store.putShardArchive(s3.key('get/s.tar'), [{ source: Buffer.from('member'), member_path: 'p/q.txt' }], {
      compression: null,
    })
    const target = join(work, 'get-out')
    const [loose, member] = await Promise.all([
      s3x(['get', s3.key('get/x/file.txt'), join(target, 'loose'), '--json']),
      s3x(['get', `${shard.archiveKey}#p/q.txt`, join(target, 'member')]),
    ])
    expect(loose.code, describeRun(loose)).toBe(0)
    expect(JSON.parse(loose.out)).toStrictEqual({ key: s3.key('get/x/file.txt'), path: join(target, 'loose', 'file.txt') })
    expect(await readFile(join(target, 'loose', 'file.txt'), 'utf8')).toBe('loose')
    expect(member.code, describeRun(member)).toBe(0)
    expect(lines(member.out)).toStrictEqual([join(target, 'member', 'p', 'q.txt')])
    expect(await readFile(join(target, 'member', 'p', 'q.txt'), 'utf8')).toBe('member')
  })

  it('manifest ls: refs resolved by default, --raw, --json as manifest lines', async ({ expect }) => {
    const part = s3.key('mls/part.jsonl')
    const root = s3.key('mls/manifest.jsonl')
    await store.writeManifest(part, [{ kind: 'file', key: s3.key('mls/b.txt'), size_bytes: 2 }])
    await store.writeManifest(root, [
      { kind: 'file', key: s3.key('mls/a.txt'), size_bytes: 1, id: 'é' },
      { kind: 'manifest_ref', key: part },
    ])
    const [resolved, raw] = await Promise.all([s3x(['manifest', 'ls', root]), s3x(['manifest', 'ls', root, '--raw', '--json'])])
    expect(resolved.code, describeRun(resolved)).toBe(0)
    expect(lines(resolved.out)).toStrictEqual([`file\t${s3.key('mls/a.txt')}\t1`, `file\t${s3.key('mls/b.txt')}\t2`])
    expect(raw.code, describeRun(raw)).toBe(0)
    expect(raw.out).toBe((await objectBytes(root)).toString('utf8'))
  })

  it('compact writes a flat copy; --expand-shards lists the members', async ({ expect }) => {
    const part = s3.key('compact/part.jsonl')
    const root = s3.key('compact/manifest.jsonl')
    const shard = await store.putShardArchive(
      s3.key('compact/s.tar'),
      [
        { source: Buffer.from('1'), member_path: 'one.txt' },
        { source: Buffer.from('22'), member_path: 'two.txt' },
      ],
      { compression: null },
    )
    await store.writeManifest(part, [shard.entry])
    await store.writeManifest(root, [
      { kind: 'file', key: s3.key('compact/a.txt') },
      { kind: 'manifest_ref', key: part },
    ])
    const [flat, expanded] = await Promise.all([
      s3x(['compact', root, s3.key('compact/flat.jsonl')]),
      s3x(['compact', root, s3.key('compact/expanded.jsonl'), '--expand-shards', '--json']),
    ])
    expect(flat.code, describeRun(flat)).toBe(0)
    expect(flat.out).toBe(`compacted ${root} → ${s3.key('compact/flat.jsonl')}: 2 entries read, 0 shard members expanded\n`)
    expect((await entriesOf(s3.key('compact/flat.jsonl'), false)).map((entry) => entry.kind)).toStrictEqual(['file', 'shard'])
    expect(expanded.code, describeRun(expanded)).toBe(0)
    expect(JSON.parse(expanded.out)).toMatchObject({ totalEntries: 2, expandedShards: 2, dst: s3.key('compact/expanded.jsonl') })
    const members = await entriesOf(s3.key('compact/expanded.jsonl'), false)
    expect(members.map((entry) => (entry as { key: string }).key)).toStrictEqual([
      s3.key('compact/a.txt'),
      `${shard.archiveKey}#one.txt`,
      `${shard.archiveKey}#two.txt`,
    ])
  })

  it('stat counts entries, shards, parts, depth and bytes', async ({ expect }) => {
    const root = s3.key('stat/manifest.jsonl')
    const part = s3.key('stat/part.jsonl')
    const deeper = s3.key('stat/deeper.jsonl')
    await store.writeManifest(deeper, [{ kind: 'file', key: s3.key('stat/c'), size_bytes: 30 }])
    await store.writeManifest(part, [
      { kind: 'shard', archive_key: s3.key('stat/s.tar'), count: 7, size_bytes: 1000 },
      { kind: 'manifest_ref', key: deeper },
    ])
    await store.writeManifest(root, [
      { kind: 'file', key: s3.key('stat/a'), size_bytes: 10 },
      { kind: 'file', key: s3.key('stat/b') },
      { kind: 'manifest_ref', key: part },
      { kind: 'manifest_ref', key: deeper },
    ])
    const [json, human] = await Promise.all([s3x(['stat', root, '--json']), s3x(['stat', root])])
    expect(json.code, describeRun(json)).toBe(0)
    expect(JSON.parse(json.out)).toStrictEqual({
      manifest: root,
      manifests: 3,
      maxRefDepth: 2,
      entries: 7,
      files: 3,
      memberFiles: 0,
      shards: 1,
      refs: 3,
      shardMembers: 7,
      shardsWithoutCount: 0,
      bytes: 1040,
      fileBytes: 40,
      archiveBytes: 1000,
      withoutSize: 1,
    })
    expect(human.code, describeRun(human)).toBe(0)
    expect(human.out).toContain('entries       7 (3 files, 1 shards, 3 refs)\n')
    expect(human.out).toContain('max ref depth 2\n')
  })

  it('rm: refuses without a terminal or --yes; --dry-run only reports; --yes deletes', async ({ expect }) => {
    const key = (name: string) => s3.key(`rm/${name}`)
    for (const name of ['one.txt', 'p/a.wav', 'p/b.txt', 'p/c.wav']) await store.putObject(key(name), Buffer.from(name))
    const shard = await store.putShardArchive(key('m/s.tar'), [{ source: Buffer.from('x'), member_path: 'x' }], { compression: null })
    const loose = await store.putObject(key('m/loose.txt'), Buffer.from('l'))
    await store.writeManifest(key('m/manifest.jsonl'), [loose, shard.entry])

    const [refused, dry, prefixDry] = await Promise.all([
      s3x(['rm', key('one.txt')]),
      s3x(['rm', key('one.txt'), '--dry-run']),
      s3x(['rm', '--prefix', key('p/'), '--regex', '\\.wav$', '--dry-run']),
    ])
    expect(refused.code, describeRun(refused)).toBe(1)
    expect(lines(refused.err).at(-1)).toBe(
      's3x: refusing to delete without confirmation: not a terminal; pass --yes to delete (or --dry-run to look)',
    )
    expect(dry.code, describeRun(dry)).toBe(0)
    expect(dry.out).toBe(`${key('one.txt')}\n`)
    expect(prefixDry.code, describeRun(prefixDry)).toBe(0)
    expect(lines(prefixDry.out)).toStrictEqual([key('p/a.wav'), key('p/c.wav')])
    expect(await store.exists(key('one.txt'))).toBe(true)
    expect(await store.exists(key('p/a.wav'))).toBe(true)

    const [one, prefix, manifest] = await Promise.all([
      s3x(['rm', key('one.txt'), '--yes']),
      s3x(['rm', '--prefix', key('p/'), '--regex', '\\.wav$', '--yes']),
      s3x(['rm', '--manifest', key('m/manifest.jsonl'), '--yes', '--json']),
    ])
    expect(one.code, describeRun(one)).toBe(0)
    expect(one.out).toBe(`deleted ${key('one.txt')}\n`)
    expect(await store.exists(key('one.txt'))).toBe(false)
    expect(prefix.code, describeRun(prefix)).toBe(0)
    expect(prefix.out).toBe(`deleted 2 object(s) under ${key('p/')} matching /\\.wav$/\n`)
    expect([await store.exists(key('p/a.wav')), await store.exists(key('p/b.txt')), await store.exists(key('p/c.wav'))]).toStrictEqual([
      false,
      true,
      false,
    ])
    expect(manifest.code, describeRun(manifest)).toBe(0)
    expect(JSON.parse(manifest.out)).toMatchObject({ deletedObjectCount: 1, deletedArchiveCount: 1, deletedManifestCount: 1, errors: {} })
    expect(await store.exists(key('m/s.tar'))).toBe(false)
    expect(await store.exists(key('m/manifest.jsonl'))).toBe(false)

    const [gone, emptyPrefix] = await Promise.all([s3x(['rm', key('one.txt'), '--yes']), s3x(['rm', '--prefix', '/', '--yes'])])
    expect(gone.code).toBe(1)
    expect(gone.err).toBe(`s3x: S3 object not found: ${key('one.txt')}\n`)
    expect(emptyPrefix.code).toBe(1)
    expect(emptyPrefix.err).toBe('s3x: Refused to delete "/": an empty prefix would delete the whole bucket\n')
  })

  it('doctor prints the checks and what s3exchange does on this server; --json gives the probe; the scratch prefix is emptied', async ({
    expect,
  }) => {
    const prefix = s3.key('doctor/')
    const [table, json] = await Promise.all([
      s3x(['doctor', '--prefix', prefix, '--max-single-put', '2MiB']),
      s3x(['doctor', '--prefix', prefix, '--max-single-put', '2MiB', '--json']),
    ])
    expect(json.code, describeRun(json)).toBe(0)
    const probe = JSON.parse(json.out) as ServerProbe
    // The same answers as the global setup's probe, but for the bound of the largest single PUT.
    const server = testServer()
    expect(probe.capabilities).toEqual({ ...server.capabilities, maxSinglePut: 2 * 1024 * 1024, maxSinglePutRefused: null })
    expect(probe.behaviour).toEqual(libraryBehaviour(probe.capabilities))
    expect(probe.scratchPrefix.startsWith(`${prefix}.s3x-probe-`)).toBe(true)

    expect(table.code, describeRun(table)).toBe(0)
    expect(table.err).toBe('')
    const out = lines(table.out)
    expect(out[0]).toBe(`server   ${inject('s3').endpoint}`)
    expect(out[1]).toMatch(new RegExp(`^bucket   ${s3.bucket} \\(scratch prefix ${prefix}\\.s3x-probe-[0-9a-f]{12}/, emptied\\)$`))
    expect(out[3]).toMatch(/^check {2,}result$/)
    for (const check of probe.checks) expect(table.out).toContain(check.check)
    expect(table.out).toContain('Largest single PUT (up to 2 MiB)  ')
    const statements = out
      .slice(out.indexOf('What s3exchange does on this server:') + 1)
      .join(' ')
      .replace(/ +/g, ' ')
    for (const { verdict, topic, text } of probe.behaviour) expect(statements).toContain(`[${verdict}] ${topic}: ${text}`)
    expect(Math.max(...out.map((line) => line.length))).toBeLessThanOrEqual(100)
    expect(await store.listKeys(prefix).next()).toEqual({ done: true, value: undefined })
  })

  it('flags win over the environment: --bucket, --endpoint, --region', async ({ expect }) => {
    await store.putObject(s3.key('flags/a.txt'), Buffer.from('a'))
    const [wrongEnv, wrongFlag] = await Promise.all([
      s3x(['ls', s3.key('flags/'), '--bucket', s3.bucket, '--endpoint', inject('s3').endpoint, '--region', inject('s3').region], {
        env: { S3_BUCKET: 'no-such-bucket-s3x', S3_ENDPOINT_URL: 'http://127.0.0.1:9', S3_REGION: 'nowhere-1' },
      }),
      s3x(['ls', s3.key('flags/'), '--bucket', 'no-such-bucket-s3x']),
    ])
    expect(wrongEnv.code, describeRun(wrongEnv)).toBe(0)
    expect(wrongEnv.out).toBe(`${s3.key('flags/a.txt')}\n`)
    expect(wrongFlag.code).toBe(1)
    expect(lines(wrongFlag.err)).toHaveLength(1)
    expect(wrongFlag.err).toMatch(/^s3x: /)
  })
})

describe.concurrent('s3x as aws s3 and rclone users expect it', () => {
  it('s3:// URIs name a bucket: a dataset in another bucket than S3_BUCKET, through every command', async ({ expect }) => {
    const k = (name: string) => s3.key(`uri/${name}`)
    const uri = (key: string, bucket = otherBucket) => `s3://${bucket}/${key}`
    await store.putObject(k('here.txt'), Buffer.from('here'))
    const files = { 'a.txt': 'aa', 'd/b.txt': 'bbb' }
    const source = await makeTree('uri-src', files)
    const put = await s3x(['put', source, uri(k('data')), '--manifest', uri(k('manifest.jsonl'))])
    expect(put.code, describeRun(put)).toBe(0)
    expect(lines(put.out)).toStrictEqual([k('data/a.txt'), k('data/d/b.txt')])
    expect(await otherStore.exists(k('data/a.txt'))).toBe(true)
    expect(await store.exists(k('data/a.txt'))).toBe(false)

    const [lsOther, lsHere, lsPlain, lsBucket, cat, listed, stat, verify, withoutBucket] = await Promise.all([
      s3x(['ls', uri(k(''))]),
      s3x(['ls', uri(k(''), s3.bucket)]),
      s3x(['ls', k('')]),
      s3x(['ls', `s3://${otherBucket}`]),
      s3x(['cat', uri(k('data/d/b.txt'))]),
      s3x(['manifest', 'ls', uri(k('manifest.jsonl'))]),
      s3x(['stat', uri(k('manifest.jsonl')), '--json']),
      s3x(['verify', uri(k('manifest.jsonl'))]),
      s3x(['cat', uri(k('data/a.txt'))], { env: { S3_BUCKET: undefined } }),
    ])
    for (const run of [lsOther, lsHere, lsPlain, lsBucket, cat, listed, stat, verify, withoutBucket])
      expect(run.code, describeRun(run)).toBe(0)
    expect(lines(lsOther.out)).toStrictEqual([k('data/a.txt'), k('data/d/b.txt'), k('manifest.jsonl')])
    expect(lines(lsHere.out)).toStrictEqual([k('here.txt')])
    expect(lines(lsPlain.out)).toStrictEqual([k('here.txt')])
    expect(lines(lsBucket.out)).toEqual(expect.arrayContaining([k('data/a.txt'), k('data/d/b.txt'), k('manifest.jsonl')]))
    expect(cat.out).toBe('bbb')
    expect(lines(listed.out)).toStrictEqual([`file\t${k('data/a.txt')}\t2`, `file\t${k('data/d/b.txt')}\t3`])
    expect(JSON.parse(stat.out)).toMatchObject({ manifest: k('manifest.jsonl'), entries: 2, bytes: 5 })
    expect(verify.out).toMatch(/^ok: 1 manifest\(s\), 2 loose file\(s\)/)
    expect(withoutBucket.out).toBe('aa')

    // A plain key goes with the URI's bucket only when no bucket is configured.
    const target = join(work, 'uri-get')
    const [get, compact] = await Promise.all([
      s3x(['get', uri(k('manifest.jsonl')), target]),
      s3x(['compact', uri(k('manifest.jsonl')), k('flat.jsonl')], { env: { S3_BUCKET: undefined } }),
    ])
    expect(get.code, describeRun(get)).toBe(0)
    expect(Object.fromEntries([...(await readTree(target))].map(([path, data]) => [path, data.toString()]))).toStrictEqual({
      'a.txt': 'aa',
      'b.txt': 'bbb',
    })
    expect(compact.code, describeRun(compact)).toBe(0)
    expect(await otherStore.exists(k('flat.jsonl'))).toBe(true)
    expect(await store.exists(k('flat.jsonl'))).toBe(false)

    const rm = await s3x(['rm', '--manifest', uri(k('manifest.jsonl')), '--yes'])
    expect(rm.code, describeRun(rm)).toBe(0)
    expect(rm.out).toBe('deleted 2 loose object(s), 0 shard archive(s) and 1 manifest(s)\n')
    expect(lines((await s3x(['ls', uri(k(''))])).out)).toStrictEqual([k('flat.jsonl')])
    expect(await store.exists(k('here.txt'))).toBe(true)
  })

  it('s3:// mistakes are usage errors that name the argument: malformed, two buckets, a local path as a URI', async ({ expect }) => {
    const m = s3.key('uri-bad/manifest.jsonl')
    const [malformed, noBucket, flag, twoBuckets, mixed, localSource, localTarget, noKey] = await Promise.all([
      s3x(['ls', 's3:/data/x']),
      s3x(['manifest', 'ls', 's3:///x']),
      s3x(['rm', '--prefix', 'S3://data/x', '--dry-run']),
      s3x(['compact', `s3://${otherBucket}/${m}`, `s3://${s3.bucket}/${m}`]),
      s3x(['compact', `s3://${otherBucket}/${m}`, 'flat.jsonl']),
      s3x(['put', `s3://${otherBucket}/x`, 'p']),
      s3x(['get', `s3://${otherBucket}/${m}`, `s3://${otherBucket}/out`]),
      s3x(['cat', `s3://${otherBucket}`]),
    ])
    const expected: [Run, string][] = [
      [malformed, "s3x: ls: [prefix]: 's3:/data/x' is not a valid S3 URI: write it as s3://bucket/key (lower-case s3, two slashes)"],
      [noBucket, "s3x: manifest ls: <manifest>: 's3:///x' is not a valid S3 URI: no bucket name after s3://"],
      [flag, "s3x: rm: --prefix: 'S3://data/x' is not a valid S3 URI: write it as s3://bucket/key (lower-case s3, two slashes)"],
      [
        twoBuckets,
        `s3x: compact: <src> 's3://${otherBucket}/${m}' and <dst> 's3://${s3.bucket}/${m}' name two buckets; one command works in one bucket`,
      ],
      [
        mixed,
        `s3x: compact: <dst> 'flat.jsonl' is a key in the configured bucket '${s3.bucket}', but <src> 's3://${otherBucket}/${m}' is in '${otherBucket}'; one command works in one bucket: give both as s3:// URIs`,
      ],
      [localSource, `s3x: put: <file | dir> is a local file or folder, not an S3 URI: 's3://${otherBucket}/x'`],
      [localTarget, `s3x: get: <dir> is a local file or folder, not an S3 URI: 's3://${otherBucket}/out'`],
      [noKey, `s3x: cat: <key>: 's3://${otherBucket}' is not a valid S3 URI: it names a bucket but no key`],
    ]
    for (const [run, message] of expected) {
      expect(run.code, describeRun(run)).toBe(2)
      expect(lines(run.err)[0]).toBe(message)
      expect(run.out).toBe('')
    }
    expect(existsSync(join(work, 's3:'))).toBe(false)
  })

  it('ls -l, --human-readable and --json: dates, sizes and ETags as the listing gives them', async ({ expect }) => {
    const prefix = s3.key('long/')
    const contents: Record<string, Uint8Array | string> = { 'a.txt': 'a', 'big.bin': randomBytes(1536), 'é x.txt': '' }
    for (const [name, data] of Object.entries(contents))
      await store.putObject(`${prefix}${name}`, typeof data === 'string' ? Buffer.from(data) : data)
    const listing = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))
    const objects = (listing.Contents ?? []).map((object) => ({
      key: object.Key as string,
      size: object.Size as number,
      lastModified: (object.LastModified as Date).toISOString(),
      etag: (object.ETag as string).replace(/"/g, ''),
    }))
    expect(objects.map((object) => object.key)).toStrictEqual(Object.keys(contents).map((name) => `${prefix}${name}`))

    const [long, human, json, grouped, empty] = await Promise.all([
      s3x(['ls', prefix, '-l']),
      s3x(['ls', `s3://${s3.bucket}/${prefix}`, '--long', '--human-readable']),
      s3x(['ls', prefix, '--json']),
      s3x(['ls', prefix, '-lh']),
      s3x(['ls', s3.key('long-none/'), '-l']),
    ])
    for (const run of [long, human, json, grouped, empty]) expect(run.code, describeRun(run)).toBe(0)
    const date = (iso: string) => `${iso.slice(0, 19)}Z`
    expect(lines(long.out)).toStrictEqual(objects.map((o) => `${date(o.lastModified)}  ${String(o.size).padStart(12)}  ${o.key}`))
    expect(long.err).toBe('3 object(s), 1537 bytes\n')
    expect(lines(human.out)).toStrictEqual(
      objects.map((o) => `${date(o.lastModified)}  ${(o.size === 1536 ? '1.5 KiB' : `${o.size} B`).padStart(10)}  ${o.key}`),
    )
    expect(human.err).toBe('3 object(s), 1.5 KiB\n')
    expect(lines(json.out).map((line) => JSON.parse(line))).toStrictEqual(objects.map((o) => ({ ...o, storageClass: expect.any(String) })))
    expect(json.err).toBe('')
    expect(grouped.out).toMatch(/^Usage: s3x ls /)
    expect(empty.out).toBe('')
    expect(empty.err).toBe('0 object(s), 0 bytes\n')
  })

  it("manifest ls -l reads each object's date and size; members show their archive's date; missing objects say so", async ({ expect }) => {
    const k = (name: string) => s3.key(`mlong/${name}`)
    const loose = await store.putObject(k('loose.txt'), Buffer.from('loose'))
    const shard = await store.putShardArchive(
      k('s.tar'),
      [
        { source: Buffer.from('1'), member_path: 'one.txt' },
        { source: Buffer.from('22'), member_path: 'two.txt' },
      ],
      { compression: null },
    )
    const manifest = k('manifest.jsonl')
    await store.writeManifest(manifest, [loose, shard.entry, { kind: 'file', key: k('gone.txt') }])
    const head = async (key: string) => {
      const answer = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
      return {
        size: answer.ContentLength as number,
        lastModified: (answer.LastModified as Date).toISOString(),
        etag: (answer.ETag as string).replace(/"/g, ''),
      }
    }
    const [looseHead, archiveHead] = await Promise.all([head(loose.key), head(shard.archiveKey)])

    const [long, json, expanded] = await Promise.all([
      s3x(['manifest', 'ls', manifest, '-l']),
      s3x(['manifest', 'ls', manifest, '-l', '--json']),
      s3x(['manifest', 'ls', `s3://${s3.bucket}/${manifest}`, '-l', '--expand-shards', '--json']),
    ])
    for (const run of [long, json, expanded]) expect(run.code, describeRun(run)).toBe(0)
    const date = (iso: string) => `${iso.slice(0, 19)}Z`
    expect(lines(long.out)).toStrictEqual([
      `${'file'.padEnd(12)}  ${date(looseHead.lastModified)}  ${'5'.padStart(12)}  ${loose.key}`,
      `${'shard'.padEnd(12)}  ${date(archiveHead.lastModified)}  ${String(archiveHead.size).padStart(12)}  ${shard.archiveKey}`,
      `${'file'.padEnd(12)}  ${'missing'.padEnd(20)}  ${'-'.padStart(12)}  ${k('gone.txt')}`,
    ])
    expect(lines(json.out).map((line) => JSON.parse(line))).toStrictEqual([
      { kind: 'file', key: loose.key, ...looseHead },
      { kind: 'shard', key: shard.archiveKey, ...archiveHead },
      { kind: 'file', key: k('gone.txt'), size: null, lastModified: null, etag: null, missing: true },
    ])
    expect(lines(expanded.out).map((line) => JSON.parse(line))).toStrictEqual([
      { kind: 'file', key: loose.key, ...looseHead },
      { kind: 'file', key: `${shard.archiveKey}#one.txt`, size: 1, lastModified: archiveHead.lastModified, etag: null },
      { kind: 'file', key: `${shard.archiveKey}#two.txt`, size: 2, lastModified: archiveHead.lastModified, etag: null },
      { kind: 'file', key: k('gone.txt'), size: null, lastModified: null, etag: null, missing: true },
    ])
  })

  it('with --json, an error is one JSON object on stderr with its typed fields; exit codes as without', async ({ expect }) => {
    const k = (name: string) => s3.key(`jerr/${name}`)
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: k('bad.jsonl'), Body: `{"kind":"file","key":"a"}\nnot json\n` }))
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: k('garbage.tar'), Body: randomBytes(3000) }))
    const runs = await Promise.all([
      s3x(['manifest', 'ls', k('none.jsonl'), '--json']),
      s3x(['manifest', 'ls', k('bad.jsonl'), '--json']),
      s3x(['manifest', 'ls', k('garbage.tar'), '--json']),
      s3x(['cat', k('none.bin'), '--json']),
      s3x(['ls', '--frob', '--json']),
      s3x(['ls', 's3:/x', '--json']),
      s3x(['ls', '--profile', 'nope', '--json']),
      s3x(['rm', k('bad.jsonl'), '--json']),
    ])
    const expected: [number, Record<string, unknown>][] = [
      [1, { name: 'ManifestNotFoundError', message: `Manifest not found: ${k('none.jsonl')}`, key: k('none.jsonl') }],
      [1, { name: 'InvalidManifestError', key: k('bad.jsonl'), lineNumber: 2, reason: expect.any(String) }],
      [1, { name: 'ShardReadError', archiveKey: k('garbage.tar') }],
      [1, { name: 'ObjectNotFoundError', message: `S3 object not found: ${k('none.bin')}`, key: k('none.bin') }],
      [2, { name: 'UsageError', message: "unknown option '--frob'", command: 'ls' }],
      [2, { name: 'InvalidS3UriError', argument: '[prefix]', uri: 's3:/x', command: 'ls' }],
      [2, { name: 'ProfileNotFoundError', profile: 'nope', source: '--profile', command: 'ls' }],
      [1, { name: 'ConfirmationRefused', message: expect.stringContaining('pass --yes') }],
    ]
    expected.forEach(([code, fields], index) => {
      const run = runs[index] as Run
      expect(run.code, describeRun(run)).toBe(code)
      const errLines = lines(run.err)
      // rm prints what it would delete first; the error is the last line, and the only JSON one.
      const last = JSON.parse(errLines.at(-1) as string)
      expect(last).toMatchObject(fields)
      expect(last.stack).toBeUndefined()
      expect(errLines.slice(0, -1).every((line) => !line.startsWith('{'))).toBe(true)
    })
    expect(lines((runs[0] as Run).err)).toHaveLength(1)
    const debug = await s3x(['cat', k('none.bin'), '--json', '--debug'])
    expect(JSON.parse(debug.err)).toMatchObject({ name: 'ObjectNotFoundError', stack: expect.stringContaining('\n    at ') })
  })

  it('--profile and AWS_PROFILE: endpoint, region and credentials of the AWS shared files', async ({ expect }) => {
    const connection = inject('s3')
    const proxy = await startS3Proxy({ target: connection.endpoint })
    try {
      await store.putObject(s3.key('profile/p.txt'), Buffer.from('profiled'))
      const dir = await mkdtemp(join(work, 'aws-'))
      const { accessKeyId, secretAccessKey } = connection.credentials
      await writeFile(
        join(dir, 'config'),
        `[profile lab]\nregion = eu-test-1\nendpoint_url = ${proxy.endpoint}\n\n[profile svc]\nregion = eu-test-2\nservices = lab-s3\n\n[services lab-s3]\ns3 =\n  endpoint_url = ${proxy.endpoint}\n`,
      )
      await writeFile(
        join(dir, 'credentials'),
        `[lab]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n\n[svc]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n`,
      )
      // Nothing from S3_*: the profile must give the endpoint, the region and the keys. AWS_ACCESS_KEY_ID is set aside by --profile.
      const env = {
        S3_ENDPOINT_URL: undefined,
        S3_REGION: undefined,
        S3_AWS_ACCESS_KEY_ID: undefined,
        S3_AWS_SECRET_ACCESS_KEY: undefined,
        AWS_CONFIG_FILE: join(dir, 'config'),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
        AWS_ACCESS_KEY_ID: 'AKIDFROMTHEENVIRONMENT',
        AWS_SECRET_ACCESS_KEY: 'not-the-secret',
      }
      const uri = `s3://${s3.bucket}/${s3.key('profile/')}`
      const [flag, fromEnv, services] = await Promise.all([
        s3x(['ls', uri, '--profile', 'lab'], { env: { ...env, S3_BUCKET: undefined } }),
        s3x(['ls', s3.key('profile/')], {
          env: { ...env, AWS_PROFILE: 'lab', AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined },
        }),
        s3x(['cat', `${uri}p.txt`, '--profile', 'svc'], { env }),
      ])
      expect(flag.code, describeRun(flag)).toBe(0)
      expect(flag.out).toBe(`${s3.key('profile/p.txt')}\n`)
      expect(fromEnv.code, describeRun(fromEnv)).toBe(0)
      expect(fromEnv.out).toBe(`${s3.key('profile/p.txt')}\n`)
      expect(services.code, describeRun(services)).toBe(0)
      expect(services.out).toBe('profiled')
      // Every request went through the profile's endpoint, signed with its keys for its region.
      const scopes = new Set(
        proxy.requests.map((request) =>
          /Credential=([^/]+)\/\d{8}\/([^/]+)\/s3\//.exec(String(request.headers.authorization))?.slice(1).join(' '),
        ),
      )
      expect(scopes).toStrictEqual(new Set([`${accessKeyId} eu-test-1`, `${accessKeyId} eu-test-2`]))

      // S3_* variables win over the profile: its endpoint is not used.
      const before = proxy.requests.length
      const direct = await s3x(['ls', s3.key('profile/'), '--profile', 'lab'], {
        env: { AWS_CONFIG_FILE: env.AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE: env.AWS_SHARED_CREDENTIALS_FILE },
      })
      expect(direct.code, describeRun(direct)).toBe(0)
      expect(direct.out).toBe(`${s3.key('profile/p.txt')}\n`)
      expect(proxy.requests.length).toBe(before)

      const [unknown, unknownEnv] = await Promise.all([
        s3x(['ls', '--profile', 'nope'], { env }),
        s3x(['ls'], { env: { ...env, AWS_PROFILE: 'nope' } }),
      ])
      for (const [run, source] of [
        [unknown, '--profile'],
        [unknownEnv, 'AWS_PROFILE'],
      ] as const) {
        expect(run.code, describeRun(run)).toBe(2)
        expect(lines(run.err)[0]).toBe(
          `s3x: ls: AWS profile 'nope' (from ${source}) is in neither the AWS config file nor the credentials file (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE; default ~/.aws/config, ~/.aws/credentials)`,
        )
      }
    } finally {
      await proxy.stop()
    }
  })

  it('rm --manifest deletes the parts and referenced manifests too (dry run lists them); --keep-referenced-manifests keeps them and says so', async ({
    expect,
  }) => {
    /**
     * A root with two parts, as append_parts leaves them (written here as plain manifests, so that
     * the shape does not depend on conditional appends), one of which refs another dataset's manifest.
     */
    async function dataset(name: string) {
      const k = (key: string) => s3.key(`rmparts/${name}/${key}`)
      const a = await store.putObject(k('a.txt'), Buffer.from('a'))
      const b = await store.putObject(k('b.txt'), Buffer.from('b'))
      const shard = await store.putShardArchive(k('other/s.tar'), [{ source: Buffer.from('x'), member_path: 'x' }], { compression: null })
      const root = k('manifest.jsonl')
      const other = k('other/manifest.jsonl')
      const parts = [k('manifests/part-20261204-120000-0000aaaa.jsonl'), k('manifests/part-20261204-120001-0000bbbb.jsonl')]
      await store.writeManifest(other, [shard.entry])
      await store.writeManifest(parts[0] as string, [b])
      await store.writeManifest(parts[1] as string, [{ kind: 'manifest_ref', key: other }])
      await store.writeManifest(root, [a, ...parts.map((key) => ({ kind: 'manifest_ref' as const, key }))])
      return { root, referenced: [...parts, other], objects: [a.key, b.key], archives: [shard.archiveKey] }
    }
    const [all, keep] = await Promise.all([dataset('all'), dataset('keep')])
    const everyKey = (set: typeof all) => [...set.objects, ...set.archives, set.root, ...set.referenced]

    const [dry, keepDry, help] = await Promise.all([
      s3x(['rm', '--manifest', all.root, '--dry-run']),
      s3x(['rm', '--manifest', keep.root, '--keep-referenced-manifests', '--dry-run', '--json']),
      s3x(['rm', '--help']),
    ])
    expect(dry.code, describeRun(dry)).toBe(0)
    expect(lines(dry.out).sort()).toStrictEqual(
      [
        ...all.objects.map((key) => `object\t${key}`),
        ...all.archives.map((key) => `archive\t${key}`),
        ...[all.root, ...all.referenced].map((key) => `manifest\t${key}`),
      ].sort(),
    )
    expect(dry.err).toBe(
      `would delete 2 loose object(s), 1 shard archive(s) and 4 manifest(s): ${all.root} with its 3 part(s) and referenced manifest(s) (dry run: nothing deleted)\n`,
    )
    expect(keepDry.code, describeRun(keepDry)).toBe(0)
    const plan = JSON.parse(keepDry.out)
    expect(plan).toMatchObject({
      dryRun: true,
      deletedObjectCount: 2,
      deletedArchiveCount: 1,
      deletedManifestCount: 1,
      keys: { manifests: [keep.root] },
    })
    expect([...plan.kept].sort()).toStrictEqual([...keep.referenced].sort())
    expect(keepDry.err).toContain(`${keep.root} only; its 3 part(s) and referenced manifest(s) are kept (--keep-referenced-manifests)`)
    expect(help.out).toContain('then <m>, its parts and every manifest its refs reach')
    for (const key of [...everyKey(all), ...everyKey(keep)]) expect(await store.exists(key), key).toBe(true)

    const [deleted, kept] = await Promise.all([
      s3x(['rm', '--manifest', all.root, '--yes']),
      s3x(['rm', '--manifest', keep.root, '--keep-referenced-manifests', '--yes']),
    ])
    expect(deleted.code, describeRun(deleted)).toBe(0)
    expect(deleted.out).toBe('deleted 2 loose object(s), 1 shard archive(s) and 4 manifest(s)\n')
    for (const key of everyKey(all)) expect(await store.exists(key), key).toBe(false)
    expect(kept.code, describeRun(kept)).toBe(0)
    expect(kept.out).toBe('deleted 2 loose object(s), 1 shard archive(s) and 1 manifest(s)\n')
    for (const key of [...keep.objects, ...keep.archives, keep.root]) expect(await store.exists(key), key).toBe(false)
    for (const key of keep.referenced) {
      expect(await store.exists(key), key).toBe(true)
      expect(kept.err).toContain(`kept ${key}: it references deleted objects now\n`)
    }
  })
})

describe('write flags and --sse-c-key on the wire (through the recording proxy)', () => {
  const KMS_KEY_ID = process.env.S3X_TEST_KMS_KEY_ID || undefined
  let support: WriteOptionSupport
  let proxy: S3Proxy
  const viaProxy = () => ({ S3_ENDPOINT_URL: proxy.endpoint })

  beforeAll(async () => {
    support = await probeWriteOptions(s3.client, s3.bucket, s3.prefix, { kmsKeyId: KMS_KEY_ID })
    proxy = await startS3Proxy({ target: s3.s3.endpoint })
  })
  afterAll(async () => {
    await proxy?.stop()
  })

  /** Runs s3x through the proxy; returns the run and the requests it sent. */
  async function traced(args: string[], env: Record<string, string | undefined> = {}): Promise<[Run, RecordedRequest[]]> {
    const from = proxy.requests.length
    const run = await s3x(args, { env: { ...viaProxy(), ...env } })
    return [run, proxy.requests.slice(from)]
  }

  /** Checks every request (see `expectOptionsOnEveryRequest`); returns the keys written. */
  function expectOnEveryRequest(requests: RecordedRequest[], options: WriteOptions): Set<string> {
    const seen = expectOptionsOnEveryRequest(requests, options)
    return new Set(
      [...seen]
        .filter(([, operations]) => operations.some((op) => op === 'PutObject' || op === 'CompleteMultipartUpload'))
        .map(([key]) => key),
    )
  }

  const FLAGS = ['--metadata', 'team=asr', '--metadata', 'Run=7', '--tagging', 'team=asr&stage=raw%20data', '--cache-control', 'max-age=60']
  const FLAGGED: WriteOptions = { metadata: { team: 'asr', Run: '7' }, tagging: 'team=asr&stage=raw%20data', cacheControl: 'max-age=60' }

  it.for([
    ['no encryption', [], {}],
    [
      'SSE-KMS',
      ['--sse', 'aws:kms', '--sse-kms-key-id', KMS_KEY_ID ?? 'alias/s3x-test', '--bucket-key-enabled'],
      { serverSideEncryption: 'aws:kms', sseKmsKeyId: KMS_KEY_ID ?? 'alias/s3x-test', bucketKeyEnabled: true },
    ],
  ] as const)(
    'put --manifest --append with %s: every object, the part and the root carry the flags',
    async ([name, encryption, encrypted], { skip }) => {
      if (name === 'SSE-KMS' && support.sseKms === 'refused')
        skip('needs a server that accepts SSE-KMS (Ceph RGW: a KMS backend, S3X_TEST_KMS_KEY_ID, and TLS or rgw_crypt_require_ssl off)')
      const source = await makeTree(`flags-put-${encryption.length}`, { 'a.txt': 'a', 'b/c.txt': 'c' })
      const prefix = s3.key(`flags-put-${encryption.length}`)
      const storageClass = ['--storage-class', support.acceptedStorageClass, '--acl', 'bucket-owner-full-control']
      const [run, requests] = await traced([
        'put',
        source,
        prefix,
        '--manifest',
        `${prefix}/manifest.jsonl`,
        '--append',
        ...FLAGS,
        ...storageClass,
        ...encryption,
      ])
      expect(run.code, describeRun(run)).toBe(0)
      const written = expectOnEveryRequest(requests, {
        ...FLAGGED,
        storageClass: support.acceptedStorageClass,
        acl: 'bucket-owner-full-control',
        ...encrypted,
      })
      expect(written).toContain(`${prefix}/a.txt`)
      expect(written).toContain(`${prefix}/b/c.txt`)
      expect(written).toContain(`${prefix}/manifest.jsonl`)
      expect([...written].some((key) => key.includes('/manifests/part-'))).toBe(true)
    },
  )

  it('pack --compression none and compact: the shards (.tar), the part, the root and the compacted manifest carry the flags', async ({
    expect,
  }) => {
    const source = await makeTree('flags-pack', { 'x.bin': randomBytes(3000), 'y/z.bin': randomBytes(2000) })
    const prefix = s3.key('flags-pack')
    const manifest = `${prefix}/manifest.jsonl`
    const [pack, packed] = await traced([
      'pack',
      source,
      `${prefix}/shards`,
      '--manifest',
      manifest,
      '--max-entries',
      '1',
      '--compression',
      'none',
      ...FLAGS,
    ])
    expect(pack.code, describeRun(pack)).toBe(0)
    const written = expectOnEveryRequest(packed, FLAGGED)
    const shards = [...written].filter((key) => key.includes('/shards/'))
    expect(shards).toHaveLength(2)
    for (const [i, key] of shards.sort().entries())
      expect(key).toMatch(new RegExp(`/shards/shard-\\d{8}-\\d{6}-[0-9a-f]{6}-0000${i}\\.tar$`))
    const [compact, compacted] = await traced(['compact', manifest, `${prefix}/flat.jsonl`, '--cache-control', 'no-store'])
    expect(compact.code, describeRun(compact)).toBe(0)
    expect(expectOnEveryRequest(compacted, { cacheControl: 'no-store' })).toEqual(new Set([`${prefix}/flat.jsonl`]))
  })

  it('--sse-c-key (or S3X_SSE_C_KEY): put encrypts, cat and get read with the key; the key never shows', async ({ skip }) => {
    if (support.sseC === 'refused') skip('needs a server that accepts SSE-C (Ceph RGW: TLS, or rgw_crypt_require_ssl off)')
    const key = randomBytes(32)
    const base64 = key.toString('base64')
    const keyFile = join(work, 'sse-c.key')
    await writeFile(keyFile, key)
    const data = randomBytes(5000)
    const source = await makeTree('sse-c', { 'secret.bin': data })
    const prefix = s3.key('sse-c')
    const [put, putRequests] = await traced([
      'put',
      source,
      prefix,
      '--manifest',
      `${prefix}/manifest.jsonl`,
      '--sse-c-key',
      `fileb://${keyFile}`,
    ])
    expect(put.code, describeRun(put)).toBe(0)
    expectOnEveryRequest(putRequests, { sseCustomerKey: { key } })
    const [cat, catRequests] = await traced(['cat', `${prefix}/secret.bin`], { S3X_SSE_C_KEY: base64 })
    expect(cat.code, describeRun(cat)).toBe(0)
    expect(cat.stdout.equals(data)).toBe(true)
    expectOnEveryRequest(catRequests, { sseCustomerKey: { key } })
    const target = join(work, 'sse-c-out')
    const [get, getRequests] = await traced(['get', `${prefix}/manifest.jsonl`, target, '--sse-c-key', base64])
    expect(get.code, describeRun(get)).toBe(0)
    expect((await readFile(join(target, 'secret.bin'))).equals(data)).toBe(true)
    expectOnEveryRequest(getRequests, { sseCustomerKey: { key } })
    for (const run of [put, cat, get]) expect(run.err).not.toContain(base64)
    if (support.sseC === 'enforced') {
      const [refused] = await traced(['cat', `${prefix}/secret.bin`, '--json'])
      expect(refused.code, describeRun(refused)).toBe(1)
      expect(JSON.parse(refused.err)).toMatchObject({ name: 'S3RequestError', operation: 'GetObject' })
    }
  })

  it('a bad flag or key: exit 2, a message naming the flag, nothing sent', async ({ expect }) => {
    const source = await makeTree('flags-bad', { 'a.txt': 'a' })
    const short = randomBytes(16).toString('base64')
    const cases: [string[], string][] = [
      [
        ['put', source, s3.key('flags-bad'), '--sse-kms-key-id', 'k'],
        "s3x: put: --sse-kms-key-id: sseKmsKeyId needs serverSideEncryption: 'aws:kms' or 'aws:kms:dsse'",
      ],
      [
        ['pack', source, s3.key('flags-bad'), '--manifest', 'm.jsonl', '--metadata', 'été=1'],
        's3x: pack: --metadata: metadata name "été" is not an HTTP token',
      ],
      [
        ['pack', source, s3.key('flags-bad'), '--manifest', 'm.jsonl', '--compression', 'zip'],
        "s3x: pack: --compression must be gzip, zstd or none, not 'zip'",
      ],
      [
        ['pack', source, s3.key('flags-bad'), '--manifest', 'm.jsonl', '--gzip', '--compression', 'none'],
        's3x: pack: --gzip and --compression none contradict each other',
      ],
      [
        ['cat', s3.key('flags-bad/a.txt'), '--sse-c-key', short],
        's3x: cat: --sse-c-key must be the base64 of 32 bytes, or fileb://<path> of a file of 32 bytes',
      ],
    ]
    for (const [args, message] of cases) {
      const [run, requests] = await traced(args)
      expect(run.code, describeRun(run)).toBe(2)
      expect(lines(run.err)[0], args.join(' ')).toMatch(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
      expect(run.err).not.toContain(short)
      expect(requests.map(s3Operation), args.join(' ')).toEqual([])
    }
  })
})
