/**
 * One 1 GiB shard write in a process of its own, so that its peak RSS is its own:
 *
 *   node bench/write-shard-child.ts ours <endpoint> <bucket> <key> [MiB]   # ShardWriter, 1,024 (or MiB) × 1 MiB members
 *   node bench/write-shard-child.ts raw  <endpoint> <bucket> <key> [MiB]   # lib-storage Upload of the same bytes, streamed
 *
 * Prints `{ seconds, bytes, members, mbPerSecond, peakRssMb }` as JSON.
 */
import { Readable } from 'node:stream'
import { Upload } from '@aws-sdk/lib-storage'
import { ShardWriter } from 's3exchange'
import { benchClient, peakRssMb, time } from './lib.ts'

const [mode, endpoint, bucket, key, mib] = process.argv.slice(2) as [string, string, string, string, string | undefined]
const client = benchClient(endpoint)
const MiB = 1024 * 1024
const MEMBERS = Number(mib ?? 1024)
let bytes = 0

function member(i: number): Buffer {
  const block = Buffer.alloc(MiB, i & 0xff)
  block.writeUInt32BE(i, 0)
  return block
}

const seconds = await time(async () => {
  if (mode === 'ours') {
    const writer = new ShardWriter({ client, bucket }, key, { compression: null })
    for (let i = 0; i < MEMBERS; i++)
      await writer.add({ source: member(i), member_path: `${String(i).padStart(5, '0')}.bin`, id: String(i) })
    const entry = await writer.finish()
    bytes = entry.size_bytes ?? 0
  } else {
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < MEMBERS; i++) yield member(i)
      })(),
    )
    await new Upload({ client, params: { Bucket: bucket, Key: key, Body: body }, partSize: 8 * MiB, queueSize: 4 }).done()
    bytes = MEMBERS * MiB
  }
})
client.destroy()
console.log(JSON.stringify({ seconds, bytes, members: MEMBERS, mbPerSecond: bytes / 1e6 / seconds, peakRssMb: peakRssMb() }))
