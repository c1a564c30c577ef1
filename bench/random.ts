/**
 * Random access and parallel reads (issue 5): one member of a 256 MiB shard by virtual key (plain
 * tar and seekable tar.gz, both written by this library) beside one raw ranged GET of the same
 * bytes; 8 shards read with prefetch beside one at a time, on loopback and through a proxy that
 * adds 20 ms before each response (as a real S3's time to first byte).
 */
import { createHash } from 'node:crypto'
import { constants, inflateRawSync } from 'node:zlib'
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { startS3Proxy } from '@s3exchange/testing'
import { type FileEntry, readInternalManifest, S3ExchangeStore, type ShardEntry, ShardWriter } from 's3exchange'
import { benchClient, compare, fmt, type Row } from './lib.ts'

const MiB = 1024 * 1024

function block(i: number, size: number): Buffer {
  const seed = createHash('sha256').update(`r${i}`).digest()
  const buf = Buffer.alloc(size)
  for (let off = 0; off < size; off += seed.length) seed.copy(buf, off)
  // Some incompressible bytes, so gzip has work to do but does not shrink everything to nothing.
  buf.write(createHash('sha256').update(`x${i}`).digest('hex').repeat(64), 0)
  return buf
}

async function writeShard(
  client: S3Client,
  bucket: string,
  key: string,
  compression: 'gzip' | null,
  members: number,
  size: number,
): Promise<ShardEntry> {
  const writer = new ShardWriter({ client, bucket }, key, { compression })
  for (let i = 0; i < members; i++)
    await writer.add({ source: block(i, size), member_path: `${String(i).padStart(5, '0')}.bin`, id: String(i) })
  return writer.finish()
}

/** The random-access benchmarks; returns rows for RESULTS.md. */
export async function runRandomBenches(client: S3Client, endpoint: string, bucket: string, runs: number): Promise<Row[]> {
  const rows: Row[] = []
  for (const compression of [null, 'gzip'] as const) {
    const key = `r/256/shard.tar${compression ? '.gz' : ''}`
    const shard = await writeShard(client, bucket, key, compression, 256, MiB)
    const entries: FileEntry[] = await readInternalManifest({ client, bucket }, shard)
    const member = entries[200] as FileEntry
    const virtual = member.key
    const warm = new S3ExchangeStore({ client, bucket })
    await (await warm.getObject(virtual)).bytes()
    // The raw baseline reads exactly the member's bytes: a plain tar's data range, or the gzip segment.
    const start = compression ? (member.gz_offset as number) : (member.offset as number)
    const end = compression ? start + (member.gz_size as number) - 1 : start + MiB - 1
    const t = await compare(runs * 5, {
      cold: async () => {
        const body = await new S3ExchangeStore({ client, bucket }).getObject(virtual)
        if ((await body.bytes()).byteLength !== MiB) throw new Error('short member')
      },
      warm: async () => {
        if ((await (await warm.getObject(virtual)).bytes()).byteLength !== MiB) throw new Error('short member')
      },
      raw: async () => {
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}` }))
        const bytes = (await response.Body?.transformToByteArray()) ?? new Uint8Array(0)
        // For gzip, doing the same by hand means inflating the segment too.
        if (compression) inflateRawSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH })
      },
    })
    const cold = t.cold as number
    const warmSeconds = t.warm as number
    const raw = t.raw as number
    rows.push({
      workload: `read one 1 MiB member of a 256 MiB ${compression ? 'seekable tar.gz' : 'plain tar'} shard by virtual key`,
      ours: `${(cold * 1000).toFixed(1)} ms (index not cached: head + member), ${(warmSeconds * 1000).toFixed(1)} ms (cached)`,
      baseline: `one raw ranged GET of the ${compression ? 'compressed segment, inflated' : 'member bytes'}: ${(raw * 1000).toFixed(1)} ms`,
      ratio: `${fmt.ratio(cold / raw)} cold, ${fmt.ratio(warmSeconds / raw)} cached`,
      python: `Python: 935 ms (downloads the whole archive); ours ${fmt.ratio(0.935 / cold)} faster cold`,
      target: '≤ 2× a raw ranged GET (index cached; uncached adds the head read)',
      met: warmSeconds / raw <= 2,
    })
  }

  // 8 shards of 64 × 64 KiB, one at a time and with prefetch.
  const manifest: ShardEntry[] = []
  for (let s = 0; s < 8; s++) manifest.push(await writeShard(client, bucket, `r/eight/shard-${s}.tar.gz`, 'gzip', 64, 64 * 1024))
  for (const latency of [0, 20, 50]) {
    const proxy = latency > 0 ? await startS3Proxy({ target: endpoint, intercept: () => ({ delayMs: latency }) }) : undefined
    const viaClient = proxy ? benchClient(proxy.endpoint) : client
    const store = new S3ExchangeStore({ client: viaClient, bucket })
    const read = async (shardConcurrency: number) => {
      let n = 0
      for await (const { body } of store.iterObjects(manifest, { shardConcurrency, maxBufferedBytes: 256 * MiB })) {
        await body.bytes()
        n++
      }
      if (n !== 8 * 64) throw new Error(`read ${n}`)
    }
    const t = await compare(runs, { sequential: () => read(1), prefetch: () => read(8) })
    const seq = t.sequential as number
    const pre = t.prefetch as number
    rows.push({
      workload: `iterate 8 tar.gz shards (64 × 64 KiB each)${latency ? `, ${latency} ms added before each response (a real S3's time to first byte)` : ', loopback (CPU-bound: client and server share 2 cores)'}`,
      ours: `shardConcurrency 8: ${fmt.s(pre)}`,
      baseline: `shardConcurrency 1 (one at a time): ${fmt.s(seq)}`,
      ratio: `${fmt.ratio(seq / pre)} faster`,
      python: 'Python: one archive at a time, each downloaded whole',
      target: latency ? '≥ 2× faster than one at a time' : 'informational (no latency to hide)',
      met: latency ? seq / pre >= 2 : true,
    })
    if (proxy) {
      viaClient.destroy()
      await proxy.stop()
    }
  }
  return rows
}
