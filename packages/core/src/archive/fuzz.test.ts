/**
 * Property-based fuzzing (fast-check) of the readers that take bytes from others:
 *
 * 1. The manifest parser (`parseManifest`, and `readManifest` on an uploaded object): valid
 *    manifests (lines Python wrote, entries we serialize) mutated at random. Either the entries
 *    come out, each valid, or an `InvalidManifestError` naming the manifest and a line; nothing
 *    else escapes. A line-by-line reference parser is the oracle: what we yield is always a prefix
 *    of what it yields, and we fail exactly when it does.
 * 2. The shard readers (`readShardMembers`, `readInternalManifest`, `scanArchive`,
 *    `openArchiveMember` with an index cache): shards written by `ShardWriter` (seekable gzip,
 *    streaming gzip, seekable and streaming zstd, plain) and by tar-stream's pack, mutated at
 *    random (bytes, header fields with
 *    and without a fixed checksum, huge sizes, pax and GNU long-name records, garbage after the
 *    end), uploaded. Only `S3ExchangeError`s escape, from the iteration and from bodies; no
 *    unhandled rejection; when a read completes, its members and bytes are those of a reference
 *    parse of the same bytes (gunzip with its CRC check, or the `zstd` tool with its checksums,
 *    then tar-stream on the whole buffer), and
 *    with `verify: true` a completed body matches its listed SHA-256.
 * 3. A declared size never turns into memory: huge sizes (octal, base-256, pax) in the header of
 *    a member or the internal manifest of a tiny archive end in `LimitExceededError` above the
 *    limit and in `ShardReadError` (truncated) below it, with the heap flat.
 *
 * Runs are few by default (the whole file takes about ten seconds); `FUZZ_RUNS` and `FUZZ_SEED`
 * scale them up and fix the seed, `FUZZ_PATH` replays one failure, `FUZZ_LOG=1` prints every case
 * and `FUZZ_DUMP=<file>` writes the bytes of each shard case there (see docs/TESTING.md, "Fuzzing").
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { gunzipSync, gzipSync, constants as zlibConstants, zstdCompressSync } from 'node:zlib'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar, internalManifestFor, requireTool, type TarMemberSpec } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import fc from 'fast-check'
import { extract as tarExtract } from 'tar-stream'
import { afterAll, beforeAll, describe, expect, it, onTestFailed, onTestFinished } from 'vitest'
import { ENTRY_KINDS, type FileEntry, type ShardEntry, serializeEntry, validateEntry } from '../format/entries.js'
import { parseManifest } from '../format/entry-stream.js'
import {
  IntegrityError,
  InvalidManifestError,
  LimitExceededError,
  ObjectNotFoundError,
  type S3ExchangeError,
  ShardReadError,
} from '../format/errors.js'
import { isBlankLine } from '../format/jsonl.js'
import { DEFAULT_LIMITS } from '../format/limits.js'
import { LruCache } from '../format/lru-cache.js'
import { readManifest } from '../operators/read-manifest.js'
import type { S3Context } from '../s3/context.js'
import { getObjectBody } from '../s3/object-source.js'
import { openArchiveMember } from './random-access.js'
import { readInternalManifest, readShardMembers, scanArchive } from './scan-archive.js'
import { ShardWriter } from './shard-writer.js'
import { sniffCompression } from './tar-reader.js'
import { tarHeader, tarPadding } from './tar-writer.js'

// ---------------------------------------------------------------------------------------------
// Campaign settings

const ENV_RUNS = Number.parseInt(process.env.FUZZ_RUNS ?? '', 10)
const CAMPAIGN = Number.isSafeInteger(ENV_RUNS) && ENV_RUNS > 0 ? ENV_RUNS : undefined
/** The suite's seed: the same cases on every run of `pnpm test`, so CI never turns red on a new find. */
const SUITE_SEED = 20261124
/** `FUZZ_SEED`, else a new seed for each campaign (`FUZZ_RUNS`), else the suite's fixed one. */
const SEED =
  process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== ''
    ? Number(process.env.FUZZ_SEED)
    : CAMPAIGN !== undefined
      ? randomSeed()
      : SUITE_SEED
const PATH = process.env.FUZZ_PATH || undefined

function randomSeed(): number {
  return (Date.now() ^ Math.floor(Math.random() * 0x100000000)) | 0
}

/** Runs of one property: `FUZZ_RUNS` times `share` in a campaign, `defaultRuns` otherwise. */
function runsOf(defaultRuns: number, share = 1): number {
  return CAMPAIGN === undefined ? defaultRuns : Math.max(1, Math.ceil(CAMPAIGN * share))
}

function parameters(numRuns: number): fc.Parameters<unknown> {
  return { numRuns, seed: SEED, path: PATH }
}

/** A test timeout that grows with the runs (only vitest's timeout ever stops a hang). */
function timeoutFor(numRuns: number, perRunMs: number): number {
  return Math.min(2 ** 31 - 1, Math.max(300_000, numRuns * perRunMs))
}

const s3 = useTestS3()
const KiB = 1024
const MiB = 1024 * KiB
let ctx: S3Context

/** Unhandled rejections seen while this file runs: must stay empty. */
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

beforeAll(() => {
  if (CAMPAIGN !== undefined) console.log(`fuzz: campaign of FUZZ_RUNS=${CAMPAIGN}, FUZZ_SEED=${SEED}`)
  ctx = { client: s3.client, bucket: s3.bucket }
  process.on('unhandledRejection', onUnhandled)
})

afterAll(() => {
  process.off('unhandledRejection', onUnhandled)
})

async function upload(key: string, bytes: Uint8Array): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes }))
}

/** Lets pending rejections surface, then checks none went unhandled. */
async function expectNoUnhandledRejection(): Promise<void> {
  await nextTurn()
  await nextTurn()
  expect(unhandled).toEqual([])
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown }

async function attempt<T>(run: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() }
  } catch (error) {
    return { ok: false, error }
  }
}

/** Fails with the original stack when `error` is not one of `types` (all `S3ExchangeError`s). */
function expectTyped(error: unknown, types: (new (...args: never[]) => S3ExchangeError)[]): void {
  if (!types.some((type) => error instanceof type)) {
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error)
    throw new Error(`an error that is not one of ${types.map((t) => t.name).join(', ')} escaped: ${detail}`)
  }
}

/** JSON for counterexamples: long strings and byte arrays abbreviated, bigints as strings. */
function compact(value: unknown): string {
  const bytes = (data: ArrayLike<number>) => {
    const hex = Buffer.from(Array.from(data).slice(0, 48)).toString('hex')
    return data.length <= 48 ? `<hex ${hex}>` : `<${data.length} bytes: ${hex}…>`
  }
  return JSON.stringify(value, (_, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`
    if (v instanceof Uint8Array) return bytes(v)
    const buffer = v as { type?: string; data?: number[] } | null
    if (buffer && buffer.type === 'Buffer' && Array.isArray(buffer.data)) return bytes(buffer.data)
    if (typeof v === 'string' && v.length > 160) return `${v.slice(0, 160)}… (${v.length} chars)`
    return v
  })
}

/** Makes fast-check print `value` as `show()` in a counterexample (instead of every byte). */
function printable<T extends object>(value: T, show: (value: T) => string): T {
  Object.defineProperty(value, fc.toStringMethod, { value: () => show(value), enumerable: false })
  return value
}

/**
 * The run in progress, so that a hang (stopped by vitest's timeout, where fast-check reports
 * nothing) still names the case and how to replay it.
 */
let inFlight: string | undefined
/** The step of the run in progress (which reader), for the same reports. */
let step = ''

/** Call at the start of a test: a failure of the test prints the run that was in progress. */
function reportRunInProgress(): void {
  inFlight = undefined
  const stopNotices = stallNotice()
  onTestFinished(stopNotices)
  onTestFailed(() => {
    if (inFlight !== undefined) console.error(`fuzz: the run in progress when the test failed, at ${step}: ${inFlight}`)
  })
}

/**
 * Says (without failing anything) when one run has been going for a minute: during a long
 * campaign the test timeout is hours away, and this names the case that seems to hang.
 */
function stallNotice(): () => void {
  let last: string | undefined
  let since = Date.now()
  const timer = setInterval(() => {
    if (inFlight !== last) {
      last = inFlight
      since = Date.now()
    } else if (inFlight !== undefined && Date.now() - since >= 60_000) {
      console.error(`fuzz: a run has been going for ${Math.round((Date.now() - since) / 1000)} s, at ${step}: ${inFlight}`)
    }
  }, 60_000)
  timer.unref()
  return () => clearInterval(timer)
}

/** Wraps a property's predicate to record each run (its index is the replay path of a first-pass run). */
function tracked<A extends unknown[]>(predicate: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  let run = 0
  return async (...args: A) => {
    const index = run++
    if (process.env.FUZZ_LOG) console.log(`RUN ${index} ${fc.stringify(args)}`)
    step = 'start'
    const replay =
      PATH === undefined
        ? `replay: FUZZ_SEED=${SEED} FUZZ_PATH=${index} FUZZ_RUNS=1, if it was not being shrunk`
        : `replaying FUZZ_PATH=${PATH}`
    inFlight = `run ${index} (${replay}): ${fc.stringify(args)}`
    await predicate(...args)
    inFlight = undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Byte mutations shared by both parsers

type ByteMutation =
  | { op: 'truncate'; at: number }
  | { op: 'flip'; at: number; xor: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number }
  | { op: 'duplicate'; at: number; length: number; to: number }
  | { op: 'append'; bytes: Uint8Array }

const position = fc.nat({ max: 1 << 20 })

function byteMutation(tokens: Uint8Array[]): fc.Arbitrary<ByteMutation> {
  const bytes = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.constantFrom(...tokens))
  return fc.oneof(
    fc.record({ op: fc.constant('truncate' as const), at: position }),
    { weight: 3, arbitrary: fc.record({ op: fc.constant('flip' as const), at: position, xor: fc.integer({ min: 1, max: 255 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('insert' as const), at: position, bytes }) },
    fc.record({ op: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 600 }) }),
    fc.record({ op: fc.constant('duplicate' as const), at: position, length: fc.integer({ min: 1, max: 1100 }), to: position }),
    fc.record({ op: fc.constant('append' as const), bytes }),
  )
}

function applyByteMutation(input: Buffer, m: ByteMutation): Buffer {
  const at = (offset: number) => (input.byteLength === 0 ? 0 : offset % (input.byteLength + 1))
  switch (m.op) {
    case 'truncate':
      return input.subarray(0, at(m.at))
    case 'flip': {
      if (input.byteLength === 0) return input
      const out = Buffer.from(input)
      const i = m.at % out.byteLength
      out[i] = (out[i] as number) ^ m.xor
      return out
    }
    case 'insert':
      return Buffer.concat([input.subarray(0, at(m.at)), m.bytes, input.subarray(at(m.at))])
    case 'delete':
      return Buffer.concat([input.subarray(0, at(m.at)), input.subarray(at(m.at) + m.length)])
    case 'duplicate': {
      const slice = input.subarray(at(m.at), at(m.at) + m.length)
      return Buffer.concat([input.subarray(0, at(m.to)), slice, input.subarray(at(m.to))])
    }
    case 'append':
      return Buffer.concat([input, m.bytes])
  }
}

/** Cuts `bytes` into chunks at the given points (some empty, some plain Uint8Arrays). */
function chunked(bytes: Buffer, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => (bytes.byteLength === 0 ? 0 : cut % (bytes.byteLength + 1))))].sort((a, b) => a - b)
  const chunks: Uint8Array[] = []
  let start = 0
  for (const [i, point] of points.entries()) {
    const piece = bytes.subarray(start, point)
    chunks.push(i % 2 === 0 ? piece : new Uint8Array(piece))
    start = point
  }
  chunks.push(bytes.subarray(start))
  return chunks
}

// ---------------------------------------------------------------------------------------------
// 1. The manifest parser

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/python-s3exchange-0.1.1/bucket', import.meta.url))

function jsonlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return jsonlFiles(path)
    return name.endsWith('.jsonl') ? [path] : []
  })
}

/** The seed corpus: every line of the manifests Python wrote, and entries we serialize. */
function manifestCorpus(): string[] {
  const python = jsonlFiles(FIXTURES).flatMap((path) =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((line) => line !== ''),
  )
  const ours = [
    { kind: 'file', key: 'ds/ü/名前.wav', id: 'ü', meta: { sr: 16000, tags: ['a', null], nested: { ok: true } }, content_type: null },
    { kind: 'file', key: 'emoji/😀.txt', id: null, meta: null, content_type: 'text/plain', size_bytes: 12, etag: null },
    {
      kind: 'file',
      key: 'ds/shards/shard-00000.tar.gz#a/b.wav',
      archive_key: 'ds/shards/shard-00000.tar.gz',
      member_path: 'a/b.wav',
      size_bytes: 0,
      offset: 1536,
      gz_offset: 10,
      gz_size: 99,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      unknown_field: [1, 2, { x: 'y' }],
    },
    {
      kind: 'shard',
      archive_key: 'ds/shards/shard-00001.tar',
      format: 'tar',
      compression: null,
      internal_manifest_path: '__manifest__.jsonl',
      count: 3,
      size_bytes: 10240,
      meta: { etag: 'abc' },
    },
    { kind: 'shard', archive_key: 'ds/shards/shard-00002.tar.gz' },
    { kind: 'manifest_ref', key: 'ds/manifests/part-20260101-000000-0123abcd.jsonl' },
  ]
  // Both forms readers accept: Python's \u escapes (serializeEntry), and raw UTF-8.
  return [...python, ...ours.map((entry) => serializeEntry(entry)), ...ours.map((entry) => JSON.stringify(entry))]
}

const MANIFEST_TOKENS: Uint8Array[] = [
  ...[
    '9'.repeat(400),
    '1e999',
    '-1e999',
    '1e-999',
    '-0',
    '0.5',
    'NaN',
    'Infinity',
    'null',
    'true',
    '[]',
    '{}',
    '"',
    '\\',
    '\\u',
    '\\ud800',
    '"\\udc00"',
    '\u2028',
    '\u0000',
    '\r',
    '\n',
    '\r\n',
    '\n\n',
    '\t \n',
    '\ufeff',
    '"kind":"file"',
    '"kind":"shard"',
    '"kind":"manifest_ref"',
    '"kind":null',
    '"key":""',
    '"key":7',
    '"size_bytes":"12"',
    '"compression":1',
    '"__proto__":{"kind":"file"}',
    '"constructor":1',
    ',',
    ':',
    '}',
    '{',
  ].map((token) => Buffer.from(token)),
  // Invalid UTF-8: a stray byte, an overlong NUL, a lone continuation, a surrogate, past U+10FFFF, cut short.
  ...[[0xff], [0xc0, 0x80], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xef, 0xbb, 0xbf]].map((b) =>
    Uint8Array.from(b),
  ),
]

type ManifestMutation =
  | ByteMutation
  | { op: 'value'; which: number; replacement: Uint8Array }
  | { op: 'nest'; at: number; depth: number; open: string; closed: boolean }
  | { op: 'longRun'; at: number; length: number; byte: number }

const nesting = fc.record({
  depth: fc.constantFrom(1, 2, 64, 1000, 5000, 20_000, 100_000),
  open: fc.constantFrom('[', '{"a":'),
  closed: fc.boolean(),
})

function nested({ depth, open, closed }: { depth: number; open: string; closed: boolean }): string {
  const close = open === '[' ? ']' : '}'
  return `${open.repeat(depth)}1${closed ? close.repeat(depth) : ''}`
}

const manifestMutation: fc.Arbitrary<ManifestMutation> = fc.oneof(
  { weight: 4, arbitrary: byteMutation(MANIFEST_TOKENS) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('value' as const),
      which: fc.nat({ max: 64 }),
      replacement: fc.oneof(
        fc.constantFrom(...MANIFEST_TOKENS),
        nesting.map((n) => Buffer.from(nested(n))),
        fc.string({ maxLength: 12 }).map((s) => Buffer.from(JSON.stringify(s))),
      ),
    }),
  },
  fc.record({ op: fc.constant('nest' as const), at: position }).chain((base) => nesting.map((n) => ({ ...base, ...n }))),
  fc.record({
    op: fc.constant('longRun' as const),
    at: position,
    length: fc.constantFrom(100, 1000, 70_000),
    byte: fc.constantFrom(0x61, 0x20, 0xe9, 0x0a),
  }),
)

function applyManifestMutation(input: Buffer, m: ManifestMutation): Buffer {
  const at = (offset: number) => (input.byteLength === 0 ? 0 : offset % (input.byteLength + 1))
  switch (m.op) {
    case 'value': {
      // Replace the n-th value (from after a ':' up to the next ',', '}' or newline).
      const colons: number[] = []
      for (let i = input.indexOf(0x3a); i !== -1; i = input.indexOf(0x3a, i + 1)) colons.push(i)
      if (colons.length === 0) return input
      const start = (colons[m.which % colons.length] as number) + 1
      let end = start
      while (end < input.byteLength && ![0x2c, 0x7d, 0x0a].includes(input[end] as number)) end++
      return Buffer.concat([input.subarray(0, start), m.replacement, input.subarray(end)])
    }
    case 'nest':
      return Buffer.concat([input.subarray(0, at(m.at)), Buffer.from(nested(m)), input.subarray(at(m.at))])
    case 'longRun':
      return Buffer.concat([input.subarray(0, at(m.at)), Buffer.alloc(m.length, m.byte), input.subarray(at(m.at))])
    default:
      return applyByteMutation(input, m)
  }
}

interface ManifestCase {
  bytes: Buffer
  cuts: number[]
  maxLineBytes: number | undefined
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The oracle: one line at a time, every check on that line before the next. */
function referenceParse(bytes: Buffer, maxLineBytes: number): { entries: unknown[]; failed: boolean } {
  const entries: unknown[] = []
  if (bytes.byteLength === 0) return { entries, failed: false }
  const parts: Buffer[] = []
  let start = 0
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, start)) {
    parts.push(bytes.subarray(start, i))
    start = i + 1
  }
  if (start < bytes.byteLength) parts.push(bytes.subarray(start))
  for (const [index, part] of parts.entries()) {
    let line: string
    try {
      line = strictUtf8.decode(part)
    } catch {
      return { entries, failed: true }
    }
    if (index === 0 && line.charCodeAt(0) === 0xfeff) line = line.slice(1)
    if (Buffer.byteLength(line) > maxLineBytes) return { entries, failed: true }
    if (isBlankLine(line)) continue
    try {
      entries.push(validateEntry(JSON.parse(line)))
    } catch {
      return { entries, failed: true }
    }
  }
  return { entries, failed: false }
}

function manifestCaseArbitrary(corpus: string[]): fc.Arbitrary<ManifestCase> {
  return fc
    .record({
      lines: fc.array(fc.constantFrom(...corpus), { minLength: 0, maxLength: 8 }),
      crlf: fc.boolean(),
      finalNewline: fc.boolean(),
      bom: fc.boolean(),
      mutations: fc.array(manifestMutation, { minLength: 0, maxLength: 5 }),
      cuts: fc.array(position, { maxLength: 6 }),
      maxLineBytes: fc.option(fc.integer({ min: 1, max: 600 }), { freq: 3 }),
    })
    .map(({ lines, crlf, finalNewline, bom, mutations, cuts, maxLineBytes }) => {
      const eol = crlf ? '\r\n' : '\n'
      let bytes: Buffer = Buffer.from(`${bom ? '\ufeff' : ''}${lines.join(eol)}${finalNewline && lines.length > 0 ? eol : ''}`)
      for (const mutation of mutations) bytes = applyManifestMutation(bytes, mutation)
      const recipe = { lines, crlf, finalNewline, bom, mutations, cuts, maxLineBytes }
      return printable({ bytes, cuts, maxLineBytes: maxLineBytes ?? undefined }, () => compact({ ...recipe, bytes }))
    })
}

/** Deep equality of JSON values without recursion (entries may nest 100,000 deep; toEqual would overflow the stack). */
function sameJson(a: unknown, b: unknown): boolean {
  const pending: [unknown, unknown][] = [[a, b]]
  for (let pair = pending.pop(); pair !== undefined; pair = pending.pop()) {
    const [x, y] = pair
    if (Object.is(x, y)) continue
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null || Array.isArray(x) !== Array.isArray(y)) return false
    const keys = Object.keys(x)
    if (keys.length !== Object.keys(y).length) return false
    for (const key of keys) {
      if (!Object.hasOwn(y, key)) return false
      pending.push([(x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key]])
    }
  }
  return true
}

/** The property for one parse: typed errors only, valid entries, agreement with the oracle. */
function checkManifestOutcome(entries: unknown[], error: unknown, manifest: ManifestCase, key: string): void {
  if (error !== undefined) {
    expectTyped(error, [InvalidManifestError])
    const invalid = error as InvalidManifestError
    expect(invalid.key).toBe(key)
    expect(Number.isSafeInteger(invalid.lineNumber) && (invalid.lineNumber as number) >= 1).toBe(true)
  }
  for (const entry of entries) {
    expect(ENTRY_KINDS).toContain((entry as { kind: string }).kind)
    validateEntry(entry)
  }
  const reference = referenceParse(manifest.bytes, manifest.maxLineBytes ?? DEFAULT_LIMITS.maxLineBytes)
  // What we yield is what the oracle yields, up to where we stop; we fail exactly when it does.
  expect(sameJson(entries, reference.entries.slice(0, entries.length)), "the entries differ from the reference parser's").toBe(true)
  expect(error !== undefined).toBe(reference.failed)
  if (error === undefined) expect(entries.length).toBe(reference.entries.length)
}

describe(`fuzz (seed ${SEED})`, () => {
  const corpus = manifestCorpus()

  describe('manifest parser', () => {
    const parseRuns = runsOf(400)
    it(
      `parseManifest on mutated manifests: valid entries or InvalidManifestError (${parseRuns} runs)`,
      async () => {
        reportRunInProgress()
        expect(corpus.length).toBeGreaterThan(20)
        await fc.assert(
          fc.asyncProperty(
            manifestCaseArbitrary(corpus),
            tracked(async (manifest) => {
              const key = 'fuzz/manifest.jsonl'
              const entries: unknown[] = []
              let error: unknown
              try {
                for await (const entry of parseManifest(chunked(manifest.bytes, manifest.cuts), {
                  key,
                  maxLineBytes: manifest.maxLineBytes,
                })) {
                  entries.push(entry)
                }
              } catch (caught) {
                error = caught ?? new Error('undefined was thrown')
              }
              checkManifestOutcome(entries, error, manifest, key)
            }),
          ),
          parameters(parseRuns),
        )
      },
      timeoutFor(parseRuns, 200),
    )

    it('values nested too deep for JSON.stringify: InvalidManifestError, not RangeError (found by this fuzzer)', async () => {
      const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`
      const lines = [`{"kind":${deep}}`, `{"kind":"file","key":${deep}}`, `{"kind":"shard","archive_key":"a","compression":${deep}}`]
      for (const line of lines) {
        const error = await attempt(async () => {
          for await (const _ of parseManifest([Buffer.from(`${line}\n`)], { key: 'deep.jsonl' })) {
          }
        })
        expect(error.ok).toBe(false)
        expectTyped((error as { error: unknown }).error, [InvalidManifestError])
        expect(((error as { error: unknown }).error as InvalidManifestError).lineNumber).toBe(1)
      }
      // Deep nesting where any value is allowed (meta) is kept as it is.
      const entries: unknown[] = []
      for await (const entry of parseManifest([Buffer.from(`{"kind":"file","key":"k","meta":${deep}}\n`)])) entries.push(entry)
      expect(entries).toHaveLength(1)
    })

    const readRuns = runsOf(25, 0.05)
    it(
      `readManifest on uploaded mutated manifests: the same property (${readRuns} runs)`,
      async () => {
        reportRunInProgress()
        const key = s3.key('fuzz/uploaded/manifest.jsonl')
        await fc.assert(
          fc.asyncProperty(
            manifestCaseArbitrary(corpus),
            fc.boolean(),
            tracked(async (manifest, viaContext) => {
              await upload(key, manifest.bytes)
              // The limit given in the call's options, or in the context's limits.
              const context: S3Context = viaContext ? { ...ctx, limits: { maxLineBytes: manifest.maxLineBytes } } : ctx
              const entries: unknown[] = []
              let error: unknown
              try {
                const options = viaContext ? {} : { maxLineBytes: manifest.maxLineBytes }
                for await (const entry of readManifest(context, key, options)) entries.push(entry)
              } catch (caught) {
                error = caught ?? new Error('undefined was thrown')
              }
              checkManifestOutcome(entries, error, manifest, key)
            }),
          ),
          parameters(readRuns),
        )
        await expectNoUnhandledRejection()
      },
      timeoutFor(readRuns, 1000),
    )
  })

  // -------------------------------------------------------------------------------------------
  // 2. The shard readers

  describe('shard readers', () => {
    const MANIFEST = '__manifest__.jsonl'
    const longName = `${'deep/'.repeat(24)}a-long-member-name.bin`
    const members: { name: string; data: Buffer }[] = [
      { name: 'a.txt', data: Buffer.from('alpha') },
      { name: longName, data: Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 31) & 0xff)) },
      { name: 'dïr/naïve-名前.txt', data: Buffer.from('ünïcode') },
      { name: 'empty.bin', data: Buffer.alloc(0) },
      { name: 'block.bin', data: Buffer.alloc(512, 0x5a) },
    ]
    const originalNames = members.map((m) => m.name)

    interface Base {
      name: string
      bytes: Buffer
    }
    const bases: Base[] = []

    async function written(name: string, compression: 'gzip' | 'zstd' | null, seekable: boolean): Promise<Base> {
      const key = s3.key(`fuzz/base/${name}`)
      const writer = new ShardWriter(ctx, key, { compression, seekable })
      for (const m of members) await writer.add({ source: m.data, member_path: m.name, id: m.name, meta: { n: 1 } })
      await writer.finish()
      return { name, bytes: Buffer.from(await (await getObjectBody(ctx, key)).bytes()) }
    }

    async function packed(name: string, manifestFirst: boolean, gzip: boolean): Promise<Base> {
      const archiveKey = s3.key('fuzz/archive')
      const manifest: TarMemberSpec = { name: MANIFEST, data: internalManifestFor(archiveKey, members) }
      const rest: TarMemberSpec[] = [
        ...members.map((m) => ({ name: m.name, data: m.data })),
        { name: 'dir', type: 'directory' },
        { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
        { name: 'hard', type: 'link', linkname: 'a.txt' },
      ]
      const all = manifestFirst ? [manifest, ...rest] : [...rest, manifest]
      return { name, bytes: await buildTar(all, { gzip }) }
    }

    beforeAll(async () => {
      // The zstd tool is the reference decoder of zstd shards (node:zlib stops after a first frame).
      requireTool('zstd', { install: 'apt-get install zstd' })
      bases.push(
        await written('writer-gzip-seekable', 'gzip', true),
        await written('writer-gzip-stream', 'gzip', false),
        await written('writer-plain', null, false),
        await packed('pack-plain-manifest-first', true, false),
        await packed('pack-gzip-manifest-last', false, true),
        await written('writer-zstd-seekable', 'zstd', true),
        await written('writer-zstd-stream', 'zstd', false),
      )
    })

    /** A whole zstd stream decompressed by the zstd tool (every frame, checksums checked); throws when it fails. */
    function unzstd(bytes: Buffer): Buffer {
      return execFileSync('zstd', ['-d', '-c', '-q'], { input: bytes, stdio: ['pipe', 'pipe', 'ignore'], maxBuffer: 1 << 28 })
    }

    // Tar-level mutations, applied to the uncompressed tar (with its header checksums fixed or not).

    const FIELDS = {
      name: [0, 100],
      mode: [100, 8],
      uid: [108, 8],
      size: [124, 12],
      mtime: [136, 12],
      checksum: [148, 8],
      type: [156, 1],
      linkname: [157, 100],
      magic: [257, 6],
      version: [263, 2],
      prefix: [345, 155],
    } as const
    type Field = keyof typeof FIELDS

    type TarMutation =
      | ByteMutation
      | { op: 'field'; header: number; field: Field; value: Uint8Array; fixChecksum: boolean }
      | { op: 'size'; header: number; size: bigint; encoding: 'octal' | 'base256' | 'negative'; fixChecksum: boolean }
      | { op: 'pax'; header: number; records: string[]; declared: 'exact' | 'short' | 'long' | 'huge'; global: boolean }
      | { op: 'gnuLong'; header: number; type: 'L' | 'K'; value: string; declared: 'exact' | 'huge' }
      | { op: 'copyHeader'; from: number; to: number }

    const fieldValue = (field: Field): fc.Arbitrary<Uint8Array> => {
      const length = FIELDS[field][1]
      const specific: Record<Field, string[]> = {
        name: [MANIFEST, '../../etc/passwd', '/etc/passwd', '', 'a.txt', 'dir/'],
        mode: ['0000777\0', 'zzzzzzz\0'],
        uid: ['9999999\0'],
        size: ['77777777777\0', '00000001000\0', '777777777777', 'zzzzzzzzzzz\0', '           \0', '-1\0'],
        mtime: ['77777777777\0'],
        checksum: ['0000000\0', '       \0', 'zzzzzz\0 '],
        type: ['0', '1', '2', '3', '5', '6', '7', 'x', 'g', 'L', 'K', 'Z', '\0'],
        linkname: [MANIFEST, '/etc/passwd', '../../../etc/shadow', 'a.txt'],
        magic: ['ustar\0', 'ustar ', '\0\0\0\0\0\0', 'xxxxxx'],
        version: ['00', ' \0', 'xx'],
        prefix: ['..', '/etc', 'deep', 'é'.repeat(60)],
      }
      return fc.oneof(
        fc.constantFrom(...specific[field]).map((text) => Buffer.from(text)),
        fc.uint8Array({ minLength: 1, maxLength: length }),
      )
    }

    const HUGE_SIZES = [2n ** 40n - 1n, 2n ** 40n, 2n ** 40n + 1n, 8n * 2n ** 40n, 2n ** 33n, 2n ** 53n + 1n, 2n ** 64n, 2n ** 88n - 1n]
    const PAX_RECORDS = [
      'size=99999999999999',
      'size=-1',
      'size=abc',
      'size=1e3',
      'size=',
      'size=8796093022209',
      'path=../../x',
      'path=',
      `path=${MANIFEST}`,
      `path=${'x'.repeat(300)}`,
      'path=a.txt',
      'linkpath=/etc/passwd',
      'mtime=1.5',
    ]
    const BOGUS_PAX = ['999 path=x\n', '0 path=x\n', '-5 path=x\n', '5 path=xxxxxxxxxx\n', 'garbage', '12 size=1e9\n', ' \n']

    const tarMutation: fc.Arbitrary<TarMutation> = fc.oneof(
      { weight: 3, arbitrary: byteMutation([Buffer.alloc(512), Buffer.from('ustar\u000000'), Buffer.from([0x1f, 0x8b])]) },
      {
        weight: 4,
        arbitrary: fc
          .record({ header: fc.nat(), field: fc.constantFrom(...(Object.keys(FIELDS) as Field[])), fixChecksum: fc.boolean() })
          .chain((m) => fieldValue(m.field).map((value) => ({ op: 'field' as const, ...m, value }))),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant('size' as const),
          header: fc.nat(),
          size: fc.oneof(fc.constantFrom(...HUGE_SIZES), fc.bigInt({ min: 0n, max: 2n ** 88n - 1n }), fc.bigInt({ min: 0n, max: 4096n })),
          encoding: fc.constantFrom('octal' as const, 'base256' as const, 'negative' as const),
          fixChecksum: fc.boolean(),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant('pax' as const),
          header: fc.nat(),
          records: fc.array(
            fc.oneof(
              fc.constantFrom(...PAX_RECORDS).map(paxRecord),
              fc.constantFrom(...BOGUS_PAX),
              fc.string({ maxLength: 20 }).map((s) => paxRecord(`path=${s}`)),
            ),
            { minLength: 1, maxLength: 3 },
          ),
          declared: fc.constantFrom('exact' as const, 'short' as const, 'long' as const, 'huge' as const),
          global: fc.boolean(),
        }),
      },
      fc.record({
        op: fc.constant('gnuLong' as const),
        header: fc.nat(),
        type: fc.constantFrom('L' as const, 'K' as const),
        value: fc.constantFrom(MANIFEST, 'a.txt', '../../x', 'y'.repeat(700)),
        declared: fc.constantFrom('exact' as const, 'huge' as const),
      }),
      fc.record({ op: fc.constant('copyHeader' as const), from: fc.nat(), to: fc.nat() }),
    )

    function paxRecord(body: string): string {
      const text = ` ${body}\n`
      const bytes = Buffer.byteLength(text)
      let length = bytes + String(bytes).length
      if (String(length).length !== String(bytes).length) length = bytes + String(length).length
      return `${length}${text}`
    }

    /** Offsets of the header blocks of a (possibly broken) tar, as far as they can be followed. */
    function headerOffsets(tar: Buffer): number[] {
      const out: number[] = []
      let pos = 0
      for (let i = 0; pos + 512 <= tar.byteLength && i < 64; i++) {
        const block = tar.subarray(pos, pos + 512)
        if (block.every((b) => b === 0)) {
          pos += 512
          continue
        }
        out.push(pos)
        const size = Number.parseInt(block.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8)
        if (!Number.isSafeInteger(size) || size < 0 || size > tar.byteLength) break
        pos += 512 + Math.ceil(size / 512) * 512
      }
      return out
    }

    function fixChecksum(tar: Buffer, at: number): void {
      tar.fill(0x20, at + 148, at + 156)
      let sum = 0
      for (let i = 0; i < 512; i++) sum += tar[at + i] as number
      tar.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, at + 148, 8, 'latin1')
    }

    function writeSize(block: Buffer, at: number, size: bigint, encoding: 'octal' | 'base256' | 'negative'): void {
      if (encoding === 'negative') {
        block.fill(0xff, at + 124, at + 136)
        return
      }
      if (encoding === 'base256') {
        block[at + 124] = 0x80
        let rest = size
        for (let i = 11; i >= 1; i--) {
          block[at + 124 + i] = Number(rest & 0xffn)
          rest >>= 8n
        }
        return
      }
      const digits = size.toString(8)
      const text = digits.length <= 11 ? `${digits.padStart(11, '0')}\u0000` : digits.length === 12 ? digits : '7'.repeat(12)
      block.write(text, at + 124, 12, 'latin1')
    }

    /** A header block (pax, GNU long name) carrying `data`, declaring `declared` bytes. */
    function extensionBlock(type: string, data: Buffer, declared: number | bigint): Buffer {
      const header = tarHeader({ name: 'PaxHeader/x', size: 0 })
      header.write(type, 156, 1, 'latin1')
      writeSize(header, 0, BigInt(declared), typeof declared === 'bigint' || declared > 0o77777777777 ? 'base256' : 'octal')
      fixChecksum(header, 0)
      return Buffer.concat([header, data, tarPadding(data.byteLength)])
    }

    function applyTarMutation(input: Buffer, m: TarMutation): Buffer {
      if (m.op === 'truncate' || m.op === 'flip' || m.op === 'insert' || m.op === 'delete' || m.op === 'duplicate' || m.op === 'append') {
        return applyByteMutation(input, m)
      }
      const headers = headerOffsets(input)
      if (headers.length === 0) return input
      const pick = (n: number) => headers[n % headers.length] as number
      const tar = Buffer.from(input)
      switch (m.op) {
        case 'field': {
          const at = pick(m.header)
          const [offset, length] = FIELDS[m.field]
          tar.fill(0, at + offset, at + offset + length)
          Buffer.from(m.value).copy(tar, at + offset, 0, length)
          if (m.fixChecksum && m.field !== 'checksum') fixChecksum(tar, at)
          return tar
        }
        case 'size': {
          const at = pick(m.header)
          writeSize(tar, at, m.size, m.encoding)
          if (m.fixChecksum) fixChecksum(tar, at)
          return tar
        }
        case 'pax': {
          const at = pick(m.header)
          const data = Buffer.from(m.records.join(''))
          const declared = {
            exact: data.byteLength,
            short: Math.max(0, data.byteLength - 3),
            long: data.byteLength + 700,
            huge: 2n ** 40n,
          }[m.declared]
          const block = extensionBlock(m.global ? 'g' : 'x', data, declared)
          return Buffer.concat([tar.subarray(0, at), block, tar.subarray(at)])
        }
        case 'gnuLong': {
          const at = pick(m.header)
          const data = Buffer.from(`${m.value}\u0000`)
          const block = extensionBlock(m.type, data, m.declared === 'exact' ? data.byteLength : 5 * MiB)
          return Buffer.concat([tar.subarray(0, at), block, tar.subarray(at)])
        }
        case 'copyHeader': {
          const from = pick(m.from)
          tar.copy(tar, pick(m.to), from, from + 512)
          return tar
        }
      }
    }

    interface ShardCase {
      base: number
      inner: TarMutation[]
      outer: ByteMutation[]
      level: number
      verify: boolean
    }

    const shardCase: fc.Arbitrary<ShardCase> = fc
      .record({
        base: fc.nat({ max: 6 }),
        inner: fc.array(tarMutation, { minLength: 0, maxLength: 4 }),
        outer: fc.array(byteMutation([Buffer.alloc(64), Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.from('garbage after the end')]), {
          maxLength: 2,
        }),
        level: fc.constantFrom(1, 6, 9),
        verify: fc.boolean(),
      })
      .map((test) => printable(test, () => compact({ ...test, base: bases[test.base]?.name ?? test.base })))

    /** The bytes to upload: the base, its tar mutated (then recompressed), then the bytes mutated. */
    function build(test: ShardCase): Buffer {
      const base = bases[test.base] as Base
      let bytes = base.bytes
      const compression = sniffCompression(bytes)
      if (test.inner.length > 0) {
        let tar = compression === 'gzip' ? gunzipSync(bytes) : compression === 'zstd' ? unzstd(bytes) : bytes
        for (const mutation of test.inner) tar = applyTarMutation(tar, mutation)
        bytes =
          compression === 'gzip'
            ? gzipSync(tar, { level: test.level })
            : compression === 'zstd'
              ? zstdCompressSync(tar, { params: { [zlibConstants.ZSTD_c_compressionLevel]: test.level } })
              : tar
      }
      for (const mutation of test.outer) bytes = applyByteMutation(bytes, mutation)
      return bytes
    }

    interface RefMember {
      name: string
      type: string
      data: Buffer
    }

    /** The uncompressed tar, when the whole buffer decompresses (gzip's CRC, zstd's checksums checked). */
    function uncompressed(bytes: Buffer): Buffer | undefined {
      if (bytes.byteLength === 0) return undefined
      const compression = sniffCompression(bytes)
      if (compression === 'bzip2' || compression === 'xz') return undefined
      try {
        return compression === 'gzip' ? gunzipSync(bytes) : compression === 'zstd' ? unzstd(bytes) : bytes
      } catch {
        return undefined
      }
    }

    /** tar-stream over a whole buffer: every member, or only the first; undefined when it fails. */
    async function parseTar(tar: Buffer, firstOnly = false): Promise<RefMember[] | undefined> {
      const extract = tarExtract({ allowUnknownFormat: true } as never)
      const out: RefMember[] = []
      const reading = (async () => {
        for await (const entry of extract) {
          // tar-stream makes null of a malformed base-256 size, then waits forever for the data.
          if (typeof entry.header.size !== 'number' || !(entry.header.size >= 0)) throw new Error('invalid size field')
          const chunks: Buffer[] = []
          // A directory's stream never ends when its header declares a size (tar-stream reads no
          // data for directories but ends their stream only at size 0): it has no data to read.
          if (entry.header.type === 'directory') entry.resume()
          else for await (const chunk of entry) chunks.push(chunk as Buffer)
          out.push({ name: entry.header.name, type: entry.header.type ?? 'file', data: Buffer.concat(chunks) })
          if (firstOnly) break
        }
      })()
      extract.end(tar)
      try {
        await reading
      } catch {
        return firstOnly && out.length === 1 ? out : undefined
      }
      return out
    }

    /** The reference parse: the whole buffer decompressed, then read from its start. */
    async function reference(bytes: Buffer): Promise<{ tar: Buffer; members: RefMember[] } | undefined> {
      const tar = uncompressed(bytes)
      const members = tar && (await parseTar(tar))
      return tar && members ? { tar, members } : undefined
    }

    /**
     * The first member found by parsing from each 512-byte block: what a random access to a member
     * (one ranged read from the offset its index gives) may find, even where a corrupt header
     * before it keeps a parse from the start from seeing it.
     */
    async function membersAtBlocks(tar: Buffer): Promise<RefMember[]> {
      const found: RefMember[] = []
      for (let offset = 0; offset + 512 <= tar.byteLength; offset += 512) {
        const first = await parseTar(tar.subarray(offset), true)
        if (first?.[0]) found.push(first[0])
      }
      return found
    }

    const isRegular = (m: RefMember) => m.type === 'file' || m.type === 'contiguous-file'
    const SHARD_ERRORS = [ShardReadError, InvalidManifestError, LimitExceededError, IntegrityError]

    const shardRuns = runsOf(120)
    it(
      `mutated shards: only typed errors, and complete reads agree with a reference parse (${shardRuns} runs)`,
      async () => {
        reportRunInProgress()
        const archiveKey = s3.key('fuzz/archive')
        const shard: ShardEntry = { kind: 'shard', archive_key: archiveKey }
        let completed = 0
        await fc.assert(
          fc.asyncProperty(
            shardCase,
            tracked(async (test) => {
              step = 'build'
              const bytes = build(test)
              if (process.env.FUZZ_DUMP) writeFileSync(process.env.FUZZ_DUMP, bytes)
              step = 'upload'
              await upload(archiveKey, bytes)
              step = 'reference'
              const parsed = await reference(bytes)
              const ref = parsed?.members
              const refRegular = ref?.filter(isRegular)
              const untouched = test.inner.length === 0 && test.outer.length === 0

              // readShardMembers, every body read whole.
              step = 'readShardMembers'
              const read = await attempt(async () => {
                const out: { entry: FileEntry; data: Buffer }[] = []
                for await (const { entry, body } of readShardMembers(ctx, shard, { verify: test.verify })) {
                  out.push({ entry, data: Buffer.from(await body.bytes()) })
                }
                return out
              })
              if (!read.ok) expectTyped(read.error, SHARD_ERRORS)
              if (untouched) expect(read.ok).toBe(true)
              if (read.ok) {
                completed++
                expect(refRegular, 'readShardMembers completed where the reference parse failed').toBeDefined()
                const expected = (refRegular ?? []).filter((m) => m.name !== MANIFEST)
                expect(read.value.map((r) => r.entry.member_path)).toEqual(expected.map((m) => m.name))
                for (const [i, r] of read.value.entries()) {
                  expect(r.data.equals((expected[i] as RefMember).data)).toBe(true)
                  expect(r.entry.archive_key).toBe(archiveKey)
                  if (test.verify && typeof r.entry.sha256 === 'string') {
                    expect(createHash('sha256').update(r.data).digest('hex')).toBe(r.entry.sha256.toLowerCase())
                  }
                  if (test.verify && typeof r.entry.size_bytes === 'number') expect(r.data.byteLength).toBe(r.entry.size_bytes)
                }
                if (untouched) expect(read.value.map((r) => r.entry.member_path)).toEqual(originalNames)
              }

              // readInternalManifest: stops at the manifest.
              step = 'readInternalManifest'
              const listed = await attempt(() => readInternalManifest(ctx, shard))
              if (!listed.ok) expectTyped(listed.error, SHARD_ERRORS)
              if (untouched) expect(listed.ok && listed.value.map((e) => e.member_path)).toEqual(originalNames)
              if (listed.ok && refRegular) expect(refRegular.some((m) => m.name === MANIFEST)).toBe(true)

              // scanArchive without an internal manifest: every regular member, the manifest included.
              step = 'scanArchive'
              const scanned = await attempt(async () => {
                const out: RefMember[] = []
                for await (const member of scanArchive(ctx, archiveKey, { internalManifestPath: null })) {
                  out.push({ name: member.name, type: 'file', data: Buffer.from(await member.body.bytes()) })
                }
                return out
              })
              if (!scanned.ok) expectTyped(scanned.error, SHARD_ERRORS)
              if (scanned.ok) {
                expect(refRegular, 'scanArchive completed where the reference parse failed').toBeDefined()
                expect(scanned.value.map((m) => m.name)).toEqual((refRegular ?? []).map((m) => m.name))
                for (const [i, m] of scanned.value.entries())
                  expect(m.data.equals((refRegular as RefMember[])[i]?.data as Buffer)).toBe(true)
              }

              // openArchiveMember, one index cache for the archive (ranged reads where the index allows).
              const indexCache = new LruCache<never>(4)
              const names = new Set([
                ...originalNames,
                MANIFEST,
                'link',
                'hard',
                'absent.txt',
                ...(ref ?? []).map((m) => m.name).slice(0, 8),
              ])
              for (const name of names) {
                step = `openArchiveMember(${JSON.stringify(name)})`
                const opened = await attempt(async () => {
                  const body = await openArchiveMember(ctx, archiveKey, name, { indexCache })
                  expect(body, 'openArchiveMember resolved to undefined for an archive that exists').toBeDefined()
                  return Buffer.from((await body?.bytes()) ?? [])
                })
                if (!opened.ok) expectTyped(opened.error, [...SHARD_ERRORS, ObjectNotFoundError])
                if (parsed === undefined || ref === undefined) continue
                const candidates = ref.filter((m) => m.name === name)
                const first = candidates[0]
                if (opened.ok) {
                  // Never bytes that are not those of a regular member of that name: one a parse from
                  // the start finds, or (a ranged read at an indexed offset) one found from a block.
                  const holds = (members: RefMember[]) =>
                    members.some((m) => m.name === name && isRegular(m) && m.data.equals(opened.value))
                  expect(
                    holds(candidates) || holds(await membersAtBlocks(parsed.tar)),
                    `openArchiveMember(${JSON.stringify(name)}) returned bytes no regular member of that name has`,
                  ).toBe(true)
                } else if (first === undefined) {
                  expect(opened.error).toBeInstanceOf(ObjectNotFoundError)
                  expect((opened.error as ObjectNotFoundError).key).toBe(`${archiveKey}#${name}`)
                } else if (isRegular(first)) {
                  throw new Error(`openArchiveMember(${JSON.stringify(name)}) failed on a readable archive: ${String(opened.error)}`)
                } else {
                  expect(opened.error).toBeInstanceOf(ShardReadError)
                }
              }
              await expectNoUnhandledRejection()
            }),
          ),
          parameters(shardRuns),
        )
        // Some runs must get through whole, or the agreement checks above never ran.
        if (CAMPAIGN === undefined || shardRuns >= 50) expect(completed).toBeGreaterThan(0)
      },
      timeoutFor(shardRuns, 2000),
    )

    // -----------------------------------------------------------------------------------------
    // 3. A declared size never becomes memory

    interface DeclaredCase {
      target: 'member' | 'manifest'
      size: bigint
      encoding: 'octal' | 'base256' | 'pax'
      gzip: boolean
      limit: number | undefined
      viaContext: boolean
    }

    const declaredCase: fc.Arbitrary<DeclaredCase> = fc.record({
      target: fc.constantFrom('member' as const, 'manifest' as const),
      size: fc.oneof(
        fc.constantFrom(8n * 2n ** 40n, 2n ** 40n + 1n, 2n ** 40n, 2n ** 40n - 1n, 513n * 2n ** 20n, 64n * 2n ** 20n, 2n ** 53n + 1n),
        fc.bigInt({ min: 4096n, max: 2n ** 88n - 1n }),
      ),
      encoding: fc.constantFrom('octal' as const, 'base256' as const, 'pax' as const),
      gzip: fc.boolean(),
      limit: fc.option(fc.constantFrom(1 * MiB, 512 * MiB, 2 ** 40, 4 * 2 ** 40), { freq: 2 }).map((l) => l ?? undefined),
      viaContext: fc.boolean(),
    })

    function declaredArchive(test: DeclaredCase, archiveKey: string): { bytes: Buffer; size: bigint } {
      // Octal holds 12 digits at most: bigger sizes fall back to base-256.
      const encoding = test.encoding === 'octal' && test.size.toString(8).length > 12 ? 'base256' : test.encoding
      const lines = Buffer.from(internalManifestFor(archiveKey, [{ name: 'huge.bin', data: 'x' }]).repeat(3))
      const header = (name: string): Buffer => {
        if (encoding === 'pax') {
          const records = Buffer.from(paxRecord(`size=${test.size}`))
          const paxHeader = extensionBlock('x', records, records.byteLength)
          return Buffer.concat([paxHeader, tarHeader({ name, size: 0 })])
        }
        const block = tarHeader({ name, size: 0 })
        writeSize(block, 0, test.size, encoding)
        fixChecksum(block, 0)
        return block
      }
      // The declared member is followed by a few bytes of data (JSONL, for the manifest) and nothing else.
      const tar =
        test.target === 'manifest'
          ? Buffer.concat([header(MANIFEST), lines])
          : Buffer.concat([
              tarHeader({ name: MANIFEST, size: lines.byteLength }),
              lines,
              tarPadding(lines.byteLength),
              header('huge.bin'),
              lines,
            ])
      return { bytes: test.gzip ? gzipSync(tar) : tar, size: test.size }
    }

    const declaredRuns = runsOf(40, 0.25)
    it(
      `a huge declared size ends in a typed error and the heap stays flat (${declaredRuns} runs)`,
      async () => {
        reportRunInProgress()
        const archiveKey = s3.key('fuzz/declared')
        await fc.assert(
          fc.asyncProperty(
            declaredCase,
            tracked(async (test) => {
              const { bytes, size } = declaredArchive(test, archiveKey)
              await upload(archiveKey, bytes)
              const shard: ShardEntry = { kind: 'shard', archive_key: archiveKey }
              const option = test.target === 'member' ? 'maxMemberBytes' : 'maxInternalManifestBytes'
              const limit = test.limit ?? DEFAULT_LIMITS[option]
              const limits = test.limit === undefined ? {} : { [option]: test.limit }
              const context: S3Context = test.viaContext ? { ...ctx, limits } : ctx
              const options = test.viaContext ? {} : limits
              const above = Number(size) > limit

              const base = process.memoryUsage()
              let peak = 0
              const sample = () => {
                const now = process.memoryUsage()
                peak = Math.max(peak, now.heapUsed + now.arrayBuffers - base.heapUsed - base.arrayBuffers)
              }
              const reads: (() => Promise<unknown>)[] = [
                async () => {
                  for await (const { body } of readShardMembers(context, shard, options)) {
                    sample()
                    await body.bytes()
                  }
                },
                async () => {
                  for await (const { body } of scanArchive(context, archiveKey, options)) await body.bytes()
                },
              ]
              if (test.target === 'manifest') reads.push(() => readInternalManifest(context, shard, options))
              for (const read of reads) {
                const outcome = await attempt(read)
                sample()
                expect(outcome.ok).toBe(false)
                const error = (outcome as { error: unknown }).error
                if (above) {
                  expectTyped(error, [LimitExceededError])
                  expect((error as LimitExceededError).limit).toBe(option)
                  expect((error as LimitExceededError).value).toBe(limit)
                } else {
                  expectTyped(error, [ShardReadError])
                  expect((error as ShardReadError).memberPath).toBe(test.target === 'member' ? 'huge.bin' : MANIFEST)
                  expect((error as Error).message).toMatch(/truncated/)
                }
                expect((error as { archiveKey?: string; key?: string }).archiveKey ?? (error as { key?: string }).key).toBe(archiveKey)
              }
              // openArchiveMember: a ranged read has no limit to apply (the read is cut short); streaming the
              // archive up to the member applies the same limits as the readers above.
              const single = await attempt(async () => (await openArchiveMember(context, archiveKey, 'huge.bin'))?.bytes())
              sample()
              expect(single.ok).toBe(false)
              expectTyped((single as { error: unknown }).error, above ? [ShardReadError, LimitExceededError] : [ShardReadError])
              expect(peak).toBeLessThan(64 * MiB)
              await expectNoUnhandledRejection()
            }),
          ),
          parameters(declaredRuns),
        )
      },
      timeoutFor(declaredRuns, 2000),
    )
  })
})
