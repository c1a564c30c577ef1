/**
 * `s3x follow` as a user runs it (a spawned `node packages/cli/dist/bin.js`): it prints a
 * manifest's entries, then the parts appended while it runs, as they appear; `--json` prints
 * `{entry, cursor}` lines and `--after` starts after one; SIGINT ends it cleanly (exit 0); a bad
 * `--interval` or a garbage cursor is an error naming it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { type FileEntry, S3ExchangeStore } from 's3exchange'
import { beforeAll, expect, inject, it } from 'vitest'

const BIN = join(import.meta.dirname, '..', 'dist', 'bin.js')
const s3 = useTestS3()
let store: S3ExchangeStore

beforeAll(() => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
})

const file = (name: string): FileEntry => ({ kind: 'file', key: s3.key(name), size_bytes: 7 })

interface Running {
  child: ChildProcess
  lines: string[]
  /** Resolves once at least `n` lines were printed. */
  lineCount(n: number): Promise<void>
  exit: Promise<{ code: number | null; stderr: string }>
}

function s3x(args: string[]): Running {
  const connection = inject('s3')
  const env = {
    ...process.env,
    S3_ENDPOINT_URL: connection.endpoint,
    S3_AWS_ACCESS_KEY_ID: connection.credentials.accessKeyId,
    S3_AWS_SECRET_ACCESS_KEY: connection.credentials.secretAccessKey,
    S3_REGION: connection.region,
    S3_FORCE_PATH_STYLE: String(connection.forcePathStyle),
    S3_BUCKET: s3.bucket,
  }
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let partial = ''
  let stderr = ''
  const waiters: { n: number; resolve: () => void }[] = []
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() as string
    lines.push(...parts)
    for (const waiter of waiters.splice(0)) {
      if (lines.length >= waiter.n) waiter.resolve()
      else waiters.push(waiter)
    }
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stderr }))
  })
  const lineCount = (n: number) =>
    lines.length >= n
      ? Promise.resolve()
      : Promise.race([
          new Promise<void>((resolve) => waiters.push({ n, resolve })),
          exit.then(({ code, stderr }) => {
            throw new Error(`s3x exited (${code}) after ${lines.length} lines: ${stderr}`)
          }),
        ])
  return { child, lines, lineCount, exit }
}

it('prints the entries, then those appended as they appear, and ends cleanly on SIGINT', async () => {
  const root = s3.key('follow/manifest.jsonl')
  await store.writeManifest(root, [file('a'), file('b')], { mode: 'append_parts' })
  const run = s3x(['follow', root, '--interval', '50'])
  await run.lineCount(2)
  await store.writeManifest(root, [file('c')], { mode: 'append_parts' })
  await run.lineCount(3)
  await store.writeManifest(root, [file('d'), file('e')], { mode: 'append_parts' })
  await run.lineCount(5)
  run.child.kill('SIGINT')
  const { code, stderr } = await run.exit
  expect(code, stderr).toBe(0)
  expect(run.lines).toStrictEqual(['a', 'b', 'c', 'd', 'e'].map((name) => `file\t${s3.key(name)}\t7`))
})

it('--json prints {entry, cursor} lines, and --after starts after one', async () => {
  const root = s3.key('json/manifest.jsonl')
  await store.writeManifest(root, [file('x'), file('y'), file('z')], { mode: 'append_parts' })
  const first = s3x(['follow', root, '--json', '--interval', '50'])
  await first.lineCount(3)
  first.child.kill('SIGINT')
  expect((await first.exit).code).toBe(0)
  const printed = first.lines.map((line) => JSON.parse(line) as { entry: FileEntry; cursor: string })
  expect(printed.map((p) => p.entry.key)).toStrictEqual([s3.key('x'), s3.key('y'), s3.key('z')])
  const resumed = s3x(['follow', root, '--json', '--interval', '50', '--after', printed[0]?.cursor as string])
  await resumed.lineCount(2)
  resumed.child.kill('SIGINT')
  expect((await resumed.exit).code).toBe(0)
  expect(resumed.lines.map((line) => (JSON.parse(line) as { entry: FileEntry }).entry.key)).toStrictEqual([s3.key('y'), s3.key('z')])
})

it('a bad --interval or a garbage cursor is an error naming it', async () => {
  const root = s3.key('json/manifest.jsonl')
  const interval = await s3x(['follow', root, '--interval', 'soon']).exit
  expect(interval.code).toBe(2)
  expect(interval.stderr).toContain('--interval')
  const garbage = await s3x(['follow', root, '--after', 'not-a-cursor']).exit
  expect(garbage.code).toBe(1)
  expect(garbage.stderr).toContain('Invalid cursor')
})
