/**
 * zstd against gzip shards (issue 16): the same members written as seekable .tar.zst and as
 * seekable .tar.gz (this library's defaults for each), then, in the same run and interleaved:
 * iterating the shards (every member's bytes read, one archive at a time, so decompression and tar
 * parsing are what is measured), reading members one by one by virtual key (the index cached:
 * one ranged GET and one frame or segment decompressed each), and the archives' sizes. Figures are
 * zstd's, beside gzip's; the ratio says how many times faster (or smaller) zstd is.
 *
 * The members are text-like (JSON lines with numbers and words), so both codecs have work to do
 * and compress them several times over.
 *
 *   npx pnpm@10 bench --only zstd --quick
 */
import type { S3Client } from '@aws-sdk/client-s3'
import { S3ExchangeStore, type ShardEntry, type ShardItem } from 's3exchange'
import { compare, fmt, type Row } from './lib.ts'

const KiB = 1024
const MiB = 1024 * KiB
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima']

/** A text-like member of `size` bytes: JSON lines with varying numbers and words (compresses about 4 to 6 times). */
function member(seed: number, size: number): Buffer {
  const lines: string[] = []
  let bytes = 0
  let x = seed * 2654435761
  for (let i = 0; bytes < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    const line = `{"id":${seed * 100_000 + i},"label":"${WORDS[x % WORDS.length]}","score":${(x % 100_000) / 1000},"tags":["${WORDS[(x >>> 8) % WORDS.length]}","${WORDS[(x >>> 16) % WORDS.length]}"],"t":${1_700_000_000 + (x % 86_400)}}\n`
    lines.push(line)
    bytes += line.length
  }
  return Buffer.from(lines.join('')).subarray(0, size)
}

/** How much data the section writes and reads. */
interface ZstdSizes {
  /** Shards × members of `small` bytes (iteration, small member reads). */
  shards: number
  members: number
  small: number
  /** One shard of `bigMembers` members of 1 MiB (iteration, large member reads). */
  bigMembers: number
  /** Members read one by one by virtual key, per kind. */
  reads: number
}

const FULL: ZstdSizes = { shards: 8, members: 256, small: 64 * KiB, bigMembers: 128, reads: 64 }
const QUICK: ZstdSizes = { shards: 4, members: 64, small: 64 * KiB, bigMembers: 16, reads: 16 }

type Codec = 'gzip' | 'zstd'
const CODECS: Codec[] = ['zstd', 'gzip']
const EXTENSION: Record<Codec, string> = { gzip: 'tar.gz', zstd: 'tar.zst' }

/** Writes the shards of one codec; resolves to their entries and the seconds it took. */
async function writeShards(store: S3ExchangeStore, codec: Codec, sizes: ZstdSizes): Promise<{ small: ShardEntry[]; big: ShardEntry }> {
  const small: ShardEntry[] = []
  for (let s = 0; s < sizes.shards; s++) {
    const items: ShardItem[] = Array.from({ length: sizes.members }, (_, i) => ({
      source: member(s * sizes.members + i, sizes.small),
      member_path: `m/${String(i).padStart(5, '0')}.jsonl`,
    }))
    small.push((await store.putShardArchive(`zstd-bench/small/${s}.${EXTENSION[codec]}`, items, { compression: codec })).entry)
  }
  const bigItems: ShardItem[] = Array.from({ length: sizes.bigMembers }, (_, i) => ({
    source: member(1_000_000 + i, MiB),
    member_path: `big/${String(i).padStart(5, '0')}.jsonl`,
  }))
  const big = (await store.putShardArchive(`zstd-bench/big.${EXTENSION[codec]}`, bigItems, { compression: codec })).entry
  return { small, big }
}

/** Reads every member of the shards (one archive at a time); resolves to the bytes read. */
async function iterate(store: S3ExchangeStore, shards: ShardEntry[]): Promise<number> {
  let bytes = 0
  for await (const { body } of store.iterObjects(shards, { shardConcurrency: 1 })) bytes += (await body.bytes()).byteLength
  return bytes
}

/** Reads `keys` one by one by virtual key. */
async function readEach(store: S3ExchangeStore, keys: string[], size: number): Promise<void> {
  for (const key of keys) {
    const bytes = await (await store.getObject(key)).bytes()
    if (bytes.byteLength !== size) throw new Error(`short member ${key}`)
  }
}

/** Members spread over the archive, the same for both codecs. */
function pick(count: number, of: number): number[] {
  return Array.from({ length: count }, (_, i) => (i * 7919) % of)
}

/** The zstd section; returns rows for RESULTS.md. */
export async function runZstdBenches(client: S3Client, bucket: string, runs: number, quick: boolean): Promise<Row[]> {
  const sizes = quick ? QUICK : FULL
  const store = new S3ExchangeStore({ client, bucket })
  const written: Record<Codec, { small: ShardEntry[]; big: ShardEntry }> = {} as never
  const writeSeconds: Record<Codec, number> = { gzip: 0, zstd: 0 }
  for (const codec of CODECS) {
    const start = process.hrtime.bigint()
    written[codec] = await writeShards(store, codec, sizes)
    writeSeconds[codec] = Number(process.hrtime.bigint() - start) / 1e9
  }
  const rows: Row[] = []
  const python = 'Python: gzip only (cannot read zstd)'
  const smallBytes = sizes.shards * sizes.members * sizes.small
  const bigBytes = sizes.bigMembers * MiB
  const archiveBytes = (codec: Codec, which: 'small' | 'big') =>
    (which === 'big' ? [written[codec].big] : written[codec].small).reduce((sum, shard) => sum + (shard.size_bytes ?? 0), 0)

  // Iteration: every member's bytes, one archive at a time.
  for (const which of ['small', 'big'] as const) {
    const total = which === 'small' ? smallBytes : bigBytes
    const t = await compare(runs, {
      zstd: async () => {
        if ((await iterate(store, which === 'small' ? written.zstd.small : [written.zstd.big])) !== total) throw new Error('short read')
      },
      gzip: async () => {
        if ((await iterate(store, which === 'small' ? written.gzip.small : [written.gzip.big])) !== total) throw new Error('short read')
      },
    })
    const [zstd, gzip] = [t.zstd as number, t.gzip as number]
    const mb = (seconds: number) => `${fmt.int(total / 1e6 / seconds)} MB/s`
    rows.push({
      workload:
        which === 'small'
          ? `iterate ${sizes.shards} shards of ${sizes.members} × ${sizes.small / KiB} KiB text-like members (${fmt.int(total / 1e6)} MB), one archive at a time`
          : `iterate one shard of ${sizes.bigMembers} × 1 MiB text-like members (${fmt.int(total / 1e6)} MB)`,
      ours: `.tar.zst: ${fmt.s(zstd)} (${mb(zstd)})`,
      baseline: `.tar.gz: ${fmt.s(gzip)} (${mb(gzip)})`,
      ratio: `${fmt.ratio(gzip / zstd)} faster`,
      python,
      target: 'faster than .tar.gz',
      met: zstd < gzip,
    })
  }

  // Member reads by virtual key, the index cached (a warm-up read fills it): one ranged GET each.
  for (const which of ['small', 'big'] as const) {
    const keysOf = (codec: Codec) =>
      which === 'small'
        ? pick(sizes.reads, sizes.shards * sizes.members).map((n) => {
            const shard = written[codec].small[Math.floor(n / sizes.members)] as ShardEntry
            return `${shard.archive_key}#m/${String(n % sizes.members).padStart(5, '0')}.jsonl`
          })
        : pick(sizes.reads, sizes.bigMembers).map((n) => `${written[codec].big.archive_key}#big/${String(n).padStart(5, '0')}.jsonl`)
    const size = which === 'small' ? sizes.small : MiB
    const t = await compare(runs, {
      zstd: () => readEach(store, keysOf('zstd'), size),
      gzip: () => readEach(store, keysOf('gzip'), size),
    })
    const per = (seconds: number) => `${((seconds / sizes.reads) * 1000).toFixed(2)} ms a member`
    const [zstd, gzip] = [t.zstd as number, t.gzip as number]
    rows.push({
      workload: `read ${sizes.reads} ${which === 'small' ? `${sizes.small / KiB} KiB members (in frames / segments of grouped members)` : '1 MiB members (a frame / segment each)'} one by one by virtual key, index cached`,
      ours: `.tar.zst: ${per(zstd)}`,
      baseline: `.tar.gz: ${per(gzip)}`,
      ratio: `${fmt.ratio(gzip / zstd)} faster`,
      python: 'Python: downloads the whole archive for each',
      target: 'faster than .tar.gz',
      met: zstd < gzip,
    })
  }

  // Sizes and writing, informational (written once, above).
  const [zSize, gSize] = [
    archiveBytes('zstd', 'small') + archiveBytes('zstd', 'big'),
    archiveBytes('gzip', 'small') + archiveBytes('gzip', 'big'),
  ]
  rows.push({
    workload: `the same shards' size (${fmt.int((smallBytes + bigBytes) / 1e6)} MB of members), zstd level 3 against gzip level 6`,
    ours: `.tar.zst: ${fmt.int(zSize / 1e6)} MB`,
    baseline: `.tar.gz: ${fmt.int(gSize / 1e6)} MB`,
    ratio: `${fmt.ratio(gSize / zSize)} smaller`,
    python,
    target: 'informational',
    met: undefined,
  })
  rows.push({
    workload: 'writing those shards (putShardArchive, one at a time; one run, informational)',
    ours: `.tar.zst: ${fmt.s(writeSeconds.zstd)}`,
    baseline: `.tar.gz: ${fmt.s(writeSeconds.gzip)}`,
    ratio: `${fmt.ratio(writeSeconds.gzip / writeSeconds.zstd)} faster`,
    python,
    target: 'informational',
    met: undefined,
  })
  return rows
}
