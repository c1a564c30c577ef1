/**
 * One big-shard read in a process of its own, so that its peak RSS is its own:
 *
 *   node bench/read-shard-child.ts ours <endpoint> <bucket> <manifest-key>   # s3exchange iterObjects
 *   node bench/read-shard-child.ts raw  <endpoint> <bucket> <archive-key>    # one raw GetObject, streamed
 *
 * Prints `{ seconds, bytes, members, mbPerSecond, peakRssMb }` as JSON.
 */
import type { Readable } from 'node:stream'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { S3ExchangeStore } from 's3exchange'
import { benchClient, peakRssMb, time } from './lib.ts'

const [mode, endpoint, bucket, key] = process.argv.slice(2) as [string, string, string, string]
const client = benchClient(endpoint)
let bytes = 0
let members = 0

const seconds = await time(async () => {
  if (mode === 'ours') {
    const store = new S3ExchangeStore({ client, bucket })
    for await (const { body } of store.iterObjects(key)) {
      for await (const chunk of body) bytes += (chunk as Uint8Array).byteLength
      members++
    }
  } else {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    for await (const chunk of response.Body as Readable) bytes += (chunk as Uint8Array).byteLength
    members = 1
  }
})
client.destroy()
console.log(JSON.stringify({ seconds, bytes, members, mbPerSecond: bytes / 1e6 / seconds, peakRssMb: peakRssMb() }))
