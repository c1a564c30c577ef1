/**
 * Seekable gzip shards are standard .tar.gz files: the system `tar -xzf`, and a plain `gunzip`
 * followed by `tar -xf`, give exactly the files the internal manifest lists, with the same bytes;
 * `gzip -t` finds the stream sound. (GNU tar and gzip are on every machine of this project.)
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { readInternalManifest, type ShardItem, ShardWriter } from 's3exchange'
import { afterAll, beforeAll, expect, it } from 'vitest'

const s3 = useTestS3()
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 's3x-seekable-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort()
}

it('tar -xzf and gunzip + tar -xf of a seekable shard give the files its internal manifest lists, byte for byte', async () => {
  const items: ShardItem[] = [
    ...Array.from({ length: 40 }, (_, i) => ({ source: Buffer.from(`small member ${i} `.repeat(i * 7)), member_path: `small/${i}.txt` })),
    { source: randomBytes(3 * 1024 * 1024 + 17), member_path: 'big/random.bin' },
    { source: Buffer.alloc(0), member_path: 'empty.bin' },
    { source: Buffer.from('ünï'), member_path: 'nested/dir/ünïcode name.txt' },
    { source: randomBytes(512), member_path: `${'long-directory-name/'.repeat(8)}file.bin` },
  ]
  const key = s3.key('seekable/system-tools.tar.gz')
  const writer = new ShardWriter({ client: s3.client, bucket: s3.bucket }, key, { compression: 'gzip' })
  for (const item of items) await writer.add(item)
  const shard = await writer.finish()
  const listed = await readInternalManifest({ client: s3.client, bucket: s3.bucket }, shard)
  // Seekable: every member has its segment.
  for (const entry of listed) expect(typeof entry.gz_offset === 'number' && typeof entry.gz_size === 'number').toBe(true)

  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  const archive = join(dir, 'shard.tar.gz')
  await writeFile(archive, Buffer.from(await (response.Body as NonNullable<typeof response.Body>).transformToByteArray()))
  execFileSync('gzip', ['-t', archive])

  const viaTar = join(dir, 'tar-xzf')
  execFileSync('mkdir', ['-p', viaTar])
  execFileSync('tar', ['-xzf', archive, '-C', viaTar])
  const viaGunzip = join(dir, 'gunzip')
  execFileSync('mkdir', ['-p', viaGunzip])
  execFileSync('sh', [
    '-c',
    `gunzip -c "${archive}" > "${join(dir, 'shard.tar')}" && tar -xf "${join(dir, 'shard.tar')}" -C "${viaGunzip}"`,
  ])

  const expected = [...listed.map((entry) => entry.member_path as string), '__manifest__.jsonl'].sort()
  for (const root of [viaTar, viaGunzip]) {
    expect(await listFiles(root)).toEqual(expected)
    for (const [i, entry] of listed.entries()) {
      const bytes = await readFile(join(root, entry.member_path as string))
      expect(bytes.byteLength).toBe(entry.size_bytes)
      expect(sha(bytes)).toBe(sha((items[i] as ShardItem).source as Uint8Array))
    }
  }
})
