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
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar, internalManifestFor } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import {
  type FileEntry,
  libraryBehaviour,
  type ManifestEntry,
  readInternalManifest,
  S3ExchangeStore,
  type ServerProbe,
  type ShardEntry,
} from 's3exchange'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')

const BIN = join(import.meta.dirname, '..', 'dist', 'bin.js')

const s3 = useTestS3()
let store: S3ExchangeStore
let work: string

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  work = await mkdtemp(join(tmpdir(), 's3x-test-'))
})

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

interface Run {
  code: number | null
  stdout: Buffer
  out: string
  err: string
}

/** The environment a user would set for the test server. */
function s3Env(): Record<string, string> {
  const connection = inject('s3')
  return {
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
      's3x: cat: missing argument (usage: s3x cat <key | archive#member>)',
      "s3x: 'manifest' needs a subcommand: manifest ls",
      "s3x: pack: --max-bytes needs a size such as 512, 10k, 64MiB or 1G, not 'lots'",
      's3x: put: --append needs --manifest <key>',
      "s3x: ls: unexpected argument 'b'",
      's3x: ls: no bucket: set S3_BUCKET (in the environment or .env) or pass --bucket',
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
    for (const run of [plain, verify, stat]) {
      expect(run.code, describeRun(run)).toBe(1)
      expect(run.err).toBe(`s3x: Manifest not found: ${missing}\n`)
      expect(run.out).toBe('')
    }
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
    for (const [key] of archives) expect(key).toMatch(new RegExp(`^${s3.key('thousand/shards/')}shard-.*\\.tar$`))
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
