/**
 * Every example runs, as a user runs it: `node examples/<name>.ts` in its own process, against
 * the built packages (dist/: `npx pnpm@10 test` builds them first). Each must exit 0 and print
 * the lines that say it did its job. An example starts its own embedded S3, or uses the server
 * named by S3_ENDPOINT_URL when the suite runs against one.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function runExample(name: string, args: string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'examples', name), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Exit code 0, with the output shown when it is not. */
function expectSuccess(run: Run): void {
  expect(run.code, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0)
}

it('the packages are built (examples import dist/; run `npx pnpm@10 build`)', () => {
  for (const pkg of ['core', 'store', 'testing']) expect(existsSync(join(root, 'packages', pkg, 'dist', 'index.js')), pkg).toBe(true)
})

describe.concurrent('examples', () => {
  it('quickstart.ts: writes, reads back, and reads what Python wrote', async () => {
    const run = await runExample('quickstart.ts')
    expectSuccess(run)
    expect(run.stdout).toMatch(/^root: \d+ lines; objects: 4 loose \+ 26 shard members, \d+ bytes$/m)
    expect(run.stdout).toContain("getObject('prod/training-service/jobs/123/samples/shards/shard-00001.tar.gz#0009.txt') → \"sample 9:")
    expect(run.stdout).toContain('Done: written by TypeScript and read back; written by Python and read by TypeScript.')
  })

  it('read-python-dataset.ts: reads every root the Python library published', async () => {
    const run = await runExample('read-python-dataset.ts')
    expectSuccess(run)
    for (const root of ['loose', 'parts', 'shards', 'writer', 'mixed'])
      expect(run.stdout).toContain(`== exchange/shared/${root}/manifest.jsonl`)
    expect(run.stdout).toContain('A TypeScript service read everything a Python service published.')
  })

  it('custom-etl.ts: read, transform, re-shard and publish with the core operators', async () => {
    const run = await runExample('custom-etl.ts')
    expectSuccess(run)
    expect(run.stdout).toMatch(/^source dataset: .*\/raw\/manifest\.jsonl \(6 loose files and 1 shard of 10\)$/m)
    expect(run.stdout).toMatch(/^published .*\/clean\/manifest\.jsonl: 4 shards in 1 part\(s\)$/m)
    expect(run.stdout).toMatch(/#rec-0\.txt: "recording 0: hello world"$/m)
    expect(run.stdout).toContain('clean dataset: 16 objects in 4 shards, each at most 5 members')
  })

  it('partitioned-etl.ts: for each engine, 3 worker processes with its variables append to one root, every record exactly once', async () => {
    const run = await runExample('partitioned-etl.ts', ['--workers', '3'])
    expectSuccess(run)
    for (const [engine, variables] of [
      ['kubernetes', 'JOB_COMPLETION_INDEX, JOB_COMPLETIONS'],
      ['aws-batch', 'AWS_BATCH_JOB_ARRAY_INDEX, AWS_BATCH_JOB_ARRAY_SIZE'],
      ['slurm', 'SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_MAX, SLURM_ARRAY_TASK_STEP'],
      ['torchrun', 'RANK, WORLD_SIZE'],
      ['open-mpi', 'OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE'],
      ['explicit', 'S3X_PARTITION_INDEX, S3X_PARTITION_COUNT'],
    ]) {
      const line = new RegExp(
        `^${engine}: 3 workers \\(${variables}\\) read (\\d+) \\+ (\\d+) \\+ (\\d+) = 52 records and appended 3 parts to one root.*: every record exactly once; a retried worker added nothing$`,
        'm',
      )
      const match = run.stdout.match(line)
      expect(match, `${engine}\n${run.stdout}`).not.toBeNull()
      // Each worker had a share, and the shares add up to the dataset.
      const shares = (match as RegExpMatchArray).slice(1, 4).map(Number)
      expect(shares.every((n) => n > 0)).toBe(true)
      expect(shares.reduce((a, b) => a + b, 0)).toBe(52)
    }
    expect(run.stdout).toContain('Done: each engine ran the same ETL, and the output root holds every record exactly once.')
  })

  it('partitioned-etl-job.yaml: an Indexed Job whose pods get JOB_COMPLETIONS = completions and run the example as a worker', async () => {
    const yaml = await readFile(join(root, 'examples', 'partitioned-etl-job.yaml'), 'utf8')
    expect(yaml).toMatch(/^ {2}completionMode: Indexed$/m)
    const completions = yaml.match(/^ {2}completions: (\d+)$/m)?.[1]
    expect(completions).toBeDefined()
    expect(yaml).toMatch(new RegExp(`- name: JOB_COMPLETIONS.*\\n\\s+value: "${completions}"`))
    expect(yaml).toContain('command: ["node", "examples/partitioned-etl.ts", "--worker"]')
    for (const name of ['SOURCE_MANIFEST', 'OUTPUT_ROOT', 'S3_BUCKET']) expect(yaml).toContain(`- name: ${name}`)
  })

  it('shuffled-epochs.ts: 3 epochs over 3 workers, each sample exactly once per epoch, each epoch its own order, reproducible', async () => {
    const run = await runExample('shuffled-epochs.ts')
    expectSuccess(run)
    expect(run.stdout).toMatch(/^dataset: 68 samples/m)
    for (let epoch = 0; epoch < 3; epoch++) {
      expect(run.stdout).toMatch(new RegExp(`^epoch ${epoch}: 68 samples across 3 workers, each exactly once`, 'm'))
    }
    expect(run.stdout).toContain('every epoch in its own order; epoch 1 read again gave the same order')
  })

  it('partitioned-loader.ts: 3 worker processes read disjoint shares that make the whole dataset', async () => {
    const run = await runExample('partitioned-loader.ts', ['3'])
    expectSuccess(run)
    const dataset = run.stdout.match(/^dataset: 10 shards \(tar and tar\.gz\) and 12 loose files, (\d+) objects, (\d+) bytes$/m)
    expect(dataset, run.stdout).not.toBeNull()
    const workers = [...run.stdout.matchAll(/^worker (\d)\/3: (\d+) shards \+ (\d+) loose files = (\d+) objects/gm)]
    expect(workers.map((match) => Number(match[1]))).toStrictEqual([0, 1, 2])
    expect(workers.reduce((sum, match) => sum + Number(match[2]), 0)).toBe(10)
    expect(workers.reduce((sum, match) => sum + Number(match[3]), 0)).toBe(12)
    expect(workers.reduce((sum, match) => sum + Number(match[4]), 0)).toBe(Number(dataset?.[1]))
    expect(run.stdout).toContain(
      `shares are disjoint and complete: ${dataset?.[1]} objects, ${dataset?.[2]} bytes, every shard read whole by one worker`,
    )
  })

  it('write-options.ts: an SSE-KMS store and an SSE-C store write, and read back what they wrote', async () => {
    const run = await runExample('write-options.ts')
    expectSuccess(run)
    // A server may refuse an option (Ceph RGW refuses encryption over plain HTTP): the example says so.
    const kms = /^SSE-KMS store wrote .*\/kms\/clips\/0001\.wav: encryption .*, metadata \{"sample-rate":"16000"\}$/m
    const sseC = /^SSE-C store read back 52 bytes; one member by range: "secret member"$/m
    if (process.env.S3_ENDPOINT_URL) {
      expect(run.stdout).toMatch(new RegExp(`${kms.source}|^this server refused a write option: `, 'm'))
      expect(run.stdout).toMatch(new RegExp(`${sseC.source}|^this server refused SSE-C: `, 'm'))
    } else {
      expect(run.stdout).toMatch(kms)
      expect(run.stdout).toMatch(/^SSE-KMS store wrote .*\/kms\/shards\/shard-00000\.tar: .*metadata \{"pipeline":"ingest"\}$/m)
      expect(run.stdout).toMatch(sseC)
      expect(run.stdout).toContain('read without the key: answered (this server does not enforce SSE-C)')
    }
  })
})
