/**
 * `partitionFromEnv(env = process.env)`: this worker's `{ index, count }` from the environment
 * the engine running it sets, for the `partition` option of the reads (or the `partition`
 * stage), so that the same code runs on a laptop (the whole dataset) and as N workers of a job
 * (each its share), with no argument to pass.
 *
 * | engine | index | count | documented at |
 * | --- | --- | --- | --- |
 * | explicit (wins over the rest) | `S3X_PARTITION_INDEX` | `S3X_PARTITION_COUNT` | this library |
 * | Kubernetes Indexed Job | `JOB_COMPLETION_INDEX` (set by Kubernetes) | `JOB_COMPLETIONS`: **set it yourself** in the pod template to the Job's `.spec.completions` (Kubernetes puts no count in the environment, and the downward API cannot read a Job's spec) | https://kubernetes.io/docs/tasks/job/indexed-parallel-processing-static/ |
 * | AWS Batch array job | `AWS_BATCH_JOB_ARRAY_INDEX` | `AWS_BATCH_JOB_ARRAY_SIZE` | https://docs.aws.amazon.com/batch/latest/userguide/job_env_vars.html |
 * | Slurm job array | `SLURM_ARRAY_TASK_ID`, mapped to a position by `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_MAX` and `SLURM_ARRAY_TASK_STEP` | `SLURM_ARRAY_TASK_COUNT` | https://slurm.schedmd.com/job_array.html, https://slurm.schedmd.com/sbatch.html (output environment variables) |
 * | torchrun (and launchers that follow it: DeepSpeed, Accelerate) | `RANK` | `WORLD_SIZE` | https://docs.pytorch.org/docs/stable/elastic/run.html (environment variables) |
 * | Open MPI (`mpirun`) | `OMPI_COMM_WORLD_RANK` | `OMPI_COMM_WORLD_SIZE` | https://docs.open-mpi.org/en/v5.0.x/tuning-apps/environment-var.html |
 *
 * A Slurm array's task ids need not start at 0 (`--array=1-8`) nor be consecutive
 * (`--array=0-30:10`, with `SLURM_ARRAY_TASK_STEP`): the index is the task's position in the
 * array, `(id - min) / step`. An array with gaps and no step (`--array=1,2,7`) has no position
 * Slurm tells; it is refused rather than guessed.
 *
 * Returns undefined when no engine's variables are set (run everything, as one worker). Throws
 * `ConfigurationError`, naming the variables and their values, for a half-set engine (an index
 * without its count), a value that is not a whole number, an index out of range, or two engines
 * that disagree (torchrun inside a Slurm array task, say: then say what you mean with
 * `S3X_PARTITION_INDEX` / `S3X_PARTITION_COUNT`, which win). Empty variables count as unset.
 *
 * @example
 * ```ts
 * import { partitionFromEnv, S3ExchangeStore } from 's3exchange'
 *
 * const store = S3ExchangeStore.fromEnv()
 * // A Kubernetes Indexed Job, an AWS Batch or Slurm array, torchrun, mpirun: each worker its share.
 * for await (const { entry, body } of store.iterObjects('ds/manifest.jsonl', { partition: partitionFromEnv() })) {
 *   console.log(entry.key, (await body.bytes()).byteLength)
 * }
 * ```
 */
import { ConfigurationError } from './errors.js'

/** The engines `partitionFromEnv` reads, by the name it reports. */
export type PartitionEngine = 'explicit' | 'kubernetes' | 'aws-batch' | 'slurm' | 'torchrun' | 'open-mpi'

/** A worker's share as the environment gives it: `{ index, count }` and where they came from. */
export interface EnvPartition {
  /** This worker's number, from 0 to `count - 1`. */
  index: number
  /** How many workers share the dataset. */
  count: number
  /** The engine whose variables gave them. */
  engine: PartitionEngine
  /** The variables read, with their values (for logs). */
  variables: Record<string, string>
}

/** The environment to read: `process.env`, or any record of strings. */
export type EnvRecord = Record<string, string | undefined>

interface EngineSpec {
  engine: PartitionEngine
  index: string
  count: string
  /** Why the count may be missing, for the error. */
  countHint?: string
}

const ENGINES: EngineSpec[] = [
  { engine: 'explicit', index: 'S3X_PARTITION_INDEX', count: 'S3X_PARTITION_COUNT' },
  {
    engine: 'kubernetes',
    index: 'JOB_COMPLETION_INDEX',
    count: 'JOB_COMPLETIONS',
    countHint:
      "Kubernetes puts no completions count in the environment: set JOB_COMPLETIONS in the pod template to the Job's .spec.completions",
  },
  { engine: 'aws-batch', index: 'AWS_BATCH_JOB_ARRAY_INDEX', count: 'AWS_BATCH_JOB_ARRAY_SIZE' },
  { engine: 'slurm', index: 'SLURM_ARRAY_TASK_ID', count: 'SLURM_ARRAY_TASK_COUNT' },
  { engine: 'torchrun', index: 'RANK', count: 'WORLD_SIZE' },
  { engine: 'open-mpi', index: 'OMPI_COMM_WORLD_RANK', count: 'OMPI_COMM_WORLD_SIZE' },
]

const SLURM_POSITION = ['SLURM_ARRAY_TASK_MIN', 'SLURM_ARRAY_TASK_MAX', 'SLURM_ARRAY_TASK_STEP'] as const

/** This worker's share from the engine's environment; see the module comment. */
export function partitionFromEnv(env: EnvRecord = process.env): EnvPartition | undefined {
  const found: EnvPartition[] = []
  for (const spec of ENGINES) {
    const partition = readEngine(env, spec)
    if (partition === undefined) continue
    // An explicit partition is what the user means, whatever the engines say.
    if (spec.engine === 'explicit') return partition
    found.push(partition)
  }
  const [first, ...others] = found
  if (first === undefined) return undefined
  const disagreeing = others.find((other) => other.index !== first.index || other.count !== first.count)
  if (disagreeing) {
    throw new ConfigurationError(
      `the environment gives two partitions: ${describe(first)} (${first.engine}) and ${describe(disagreeing)} (${disagreeing.engine}); ` +
        'set S3X_PARTITION_INDEX and S3X_PARTITION_COUNT to say which share this worker reads',
    )
  }
  return first
}

/** One engine's partition, or undefined when none of its variables is set. */
function readEngine(env: EnvRecord, spec: EngineSpec): EnvPartition | undefined {
  const index = variable(env, spec.index)
  const count = variable(env, spec.count)
  if (index === undefined && count === undefined) return undefined
  if (index === undefined || count === undefined) {
    const [set, unset] = index === undefined ? [spec.count, spec.index] : [spec.index, spec.count]
    throw new ConfigurationError(
      `${set}=${index ?? count} is set but ${unset} is not: a ${spec.engine} partition needs both` +
        (spec.countHint ? ` (${spec.countHint})` : ''),
    )
  }
  const variables: Record<string, string> = { [spec.index]: index, [spec.count]: count }
  const total = wholeNumber(spec.count, count)
  if (total < 1) throw new ConfigurationError(`${spec.count}=${count}: the number of workers must be at least 1`)
  let position = wholeNumber(spec.index, index)
  if (spec.engine === 'slurm') position = slurmPosition(env, position, total, variables)
  if (position >= total) {
    throw new ConfigurationError(`${describe({ variables })}: the index must be below the count (from 0 to ${total - 1})`)
  }
  return { index: position, count: total, engine: spec.engine, variables }
}

/**
 * A Slurm array task's position: `(id - min) / step`, the array being `count` ids from `min` by
 * `step` (`--array=min-max:step`). Without SLURM_ARRAY_TASK_MIN, ids are taken to start at 0.
 */
function slurmPosition(env: EnvRecord, id: number, count: number, variables: Record<string, string>): number {
  const [minText, maxText, stepText] = SLURM_POSITION.map((name) => variable(env, name))
  for (const [i, text] of [minText, maxText, stepText].entries()) if (text !== undefined) variables[SLURM_POSITION[i] as string] = text
  const min = minText === undefined ? 0 : wholeNumber('SLURM_ARRAY_TASK_MIN', minText)
  const max = maxText === undefined ? undefined : wholeNumber('SLURM_ARRAY_TASK_MAX', maxText)
  // Without a step, only an array without gaps (max - min + 1 = count) has positions one can tell:
  // guessing a step for a list such as 0,1,2,6 would give two tasks the same share.
  const step =
    stepText !== undefined ? wholeNumber('SLURM_ARRAY_TASK_STEP', stepText) : max === undefined || max - min === count - 1 ? 1 : 0
  const evenlySpaced = step >= 1 && (max === undefined || max - min === step * (count - 1)) && id >= min && (id - min) % step === 0
  if (!evenlySpaced) {
    throw new ConfigurationError(
      `${describe({ variables })}: the task id is not a position in an evenly spaced array (--array=min-max:step); ` +
        'submit such an array, or set S3X_PARTITION_INDEX and S3X_PARTITION_COUNT',
    )
  }
  return (id - min) / step
}

/** The variable's value, trimmed; undefined when unset or empty. */
function variable(env: EnvRecord, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

/** A whole number ≥ 0 written in decimal digits, or a `ConfigurationError` naming the variable. */
function wholeNumber(name: string, text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(value)) throw new ConfigurationError(`${name}=${text}: not a whole number ≥ 0`)
  return value
}

function describe(partition: Pick<EnvPartition, 'variables'>): string {
  return Object.entries(partition.variables)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ')
}
