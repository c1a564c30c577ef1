/** partitionFromEnv on environment records, without any engine: each engine's variables, the explicit override, and every refusal. */
import { describe, expect, it } from 'vitest'
import { ConfigurationError } from './errors.js'
import { partitionFromEnv } from './partition-env.js'

/** The ConfigurationError `partitionFromEnv(env)` throws (fails the test when it does not). */
function refusal(env: Record<string, string>): ConfigurationError {
  try {
    partitionFromEnv(env)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError)
    return error as ConfigurationError
  }
  throw new Error(`partitionFromEnv(${JSON.stringify(env)}) did not throw`)
}

describe('partitionFromEnv', () => {
  it('outside any engine: undefined (the process reads everything)', () => {
    expect(partitionFromEnv({})).toBeUndefined()
    expect(partitionFromEnv({ PATH: '/usr/bin', HOME: '/root', SLURM_JOB_ID: '42', LOCAL_RANK: '1' })).toBeUndefined()
    // Empty variables count as unset.
    expect(partitionFromEnv({ JOB_COMPLETION_INDEX: '', JOB_COMPLETIONS: ' ' })).toBeUndefined()
  })

  it('reads process.env by default', () => {
    const saved = { index: process.env.S3X_PARTITION_INDEX, count: process.env.S3X_PARTITION_COUNT }
    process.env.S3X_PARTITION_INDEX = '1'
    process.env.S3X_PARTITION_COUNT = '2'
    try {
      expect(partitionFromEnv()).toMatchObject({ index: 1, count: 2, engine: 'explicit' })
    } finally {
      for (const [name, value] of [
        ['S3X_PARTITION_INDEX', saved.index],
        ['S3X_PARTITION_COUNT', saved.count],
      ] as const) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
    }
  })

  it.each([
    ['explicit', { S3X_PARTITION_INDEX: '2', S3X_PARTITION_COUNT: '5' }, 2, 5],
    ['kubernetes', { JOB_COMPLETION_INDEX: '3', JOB_COMPLETIONS: '4' }, 3, 4],
    ['aws-batch', { AWS_BATCH_JOB_ARRAY_INDEX: '0', AWS_BATCH_JOB_ARRAY_SIZE: '10' }, 0, 10],
    ['slurm', { SLURM_ARRAY_TASK_ID: '6', SLURM_ARRAY_TASK_COUNT: '8', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '7' }, 6, 8],
    ['torchrun', { RANK: '7', WORLD_SIZE: '8', LOCAL_RANK: '3', LOCAL_WORLD_SIZE: '4' }, 7, 8],
    ['open-mpi', { OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '3', OMPI_COMM_WORLD_LOCAL_RANK: '1' }, 1, 3],
  ] as const)('%s: %j → index %i of %i', (engine, env, index, count) => {
    const partition = partitionFromEnv(env)
    expect(partition).toMatchObject({ index, count, engine })
    // The variables read are reported, with their values.
    for (const [name, value] of Object.entries(partition?.variables ?? {})) expect(env[name as keyof typeof env]).toBe(value)
  })

  it.each([
    // --array=1-4: ids from 1
    [{ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '4' }, 0],
    [{ SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '4' }, 3],
    // --array=0-30:10: a step
    [
      {
        SLURM_ARRAY_TASK_ID: '20',
        SLURM_ARRAY_TASK_COUNT: '4',
        SLURM_ARRAY_TASK_MIN: '0',
        SLURM_ARRAY_TASK_MAX: '30',
        SLURM_ARRAY_TASK_STEP: '10',
      },
      2,
    ],
    [
      {
        SLURM_ARRAY_TASK_ID: '30',
        SLURM_ARRAY_TASK_COUNT: '4',
        SLURM_ARRAY_TASK_MIN: '0',
        SLURM_ARRAY_TASK_MAX: '30',
        SLURM_ARRAY_TASK_STEP: '10',
      },
      3,
    ],
    // --array=5-5: one task
    [{ SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_COUNT: '1', SLURM_ARRAY_TASK_MIN: '5', SLURM_ARRAY_TASK_MAX: '5' }, 0],
    // no min: ids from 0
    [{ SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '3' }, 2],
  ])('slurm: %j → position %i', (env, index) => {
    expect(partitionFromEnv(env)).toMatchObject({ index, engine: 'slurm', count: Number(env.SLURM_ARRAY_TASK_COUNT) })
  })

  it('the explicit variables win over any engine, even ones that disagree', () => {
    expect(
      partitionFromEnv({
        S3X_PARTITION_INDEX: '5',
        S3X_PARTITION_COUNT: '16',
        SLURM_ARRAY_TASK_ID: '1',
        SLURM_ARRAY_TASK_COUNT: '4',
        RANK: '1',
        WORLD_SIZE: '4',
      }),
    ).toMatchObject({ index: 5, count: 16, engine: 'explicit' })
  })

  it('engines that agree give the partition (torchrun launched by mpirun, with its variables mapped)', () => {
    expect(partitionFromEnv({ RANK: '2', WORLD_SIZE: '4', OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4' })).toMatchObject({
      index: 2,
      count: 4,
    })
  })

  it('a half-set engine: ConfigurationError naming the variable set and the one missing', () => {
    const kubernetes = refusal({ JOB_COMPLETION_INDEX: '3' })
    expect(kubernetes.message).toContain('JOB_COMPLETION_INDEX=3 is set but JOB_COMPLETIONS is not')
    expect(kubernetes.message).toContain('.spec.completions')
    expect(refusal({ AWS_BATCH_JOB_ARRAY_INDEX: '0' }).message).toContain(
      'AWS_BATCH_JOB_ARRAY_INDEX=0 is set but AWS_BATCH_JOB_ARRAY_SIZE is not',
    )
    expect(refusal({ SLURM_ARRAY_TASK_ID: '0' }).message).toContain('SLURM_ARRAY_TASK_ID=0 is set but SLURM_ARRAY_TASK_COUNT is not')
    expect(refusal({ WORLD_SIZE: '8' }).message).toContain('WORLD_SIZE=8 is set but RANK is not')
    expect(refusal({ OMPI_COMM_WORLD_RANK: '1' }).message).toContain('OMPI_COMM_WORLD_RANK=1 is set but OMPI_COMM_WORLD_SIZE is not')
    expect(refusal({ S3X_PARTITION_COUNT: '4' }).message).toContain('S3X_PARTITION_COUNT=4 is set but S3X_PARTITION_INDEX is not')
    // Even beside a complete engine: a half-set one is a mistake to report.
    expect(refusal({ RANK: '0', WORLD_SIZE: '2', JOB_COMPLETION_INDEX: '0' }).message).toContain('JOB_COMPLETIONS is not')
  })

  it('out of range or not a whole number: ConfigurationError naming the variables and values', () => {
    expect(refusal({ JOB_COMPLETION_INDEX: '4', JOB_COMPLETIONS: '4' }).message).toBe(
      'JOB_COMPLETION_INDEX=4, JOB_COMPLETIONS=4: the index must be below the count (from 0 to 3)',
    )
    expect(refusal({ RANK: '0', WORLD_SIZE: '0' }).message).toBe('WORLD_SIZE=0: the number of workers must be at least 1')
    for (const bad of ['-1', '1.5', 'two', '0x2', '1e3', '9007199254740993']) {
      expect(refusal({ AWS_BATCH_JOB_ARRAY_INDEX: bad, AWS_BATCH_JOB_ARRAY_SIZE: '4' }).message, bad).toBe(
        `AWS_BATCH_JOB_ARRAY_INDEX=${bad}: not a whole number ≥ 0`,
      )
    }
    expect(refusal({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: 'many' }).message).toBe(
      'OMPI_COMM_WORLD_SIZE=many: not a whole number ≥ 0',
    )
  })

  it('a Slurm task id that is no position of an evenly spaced array: refused, naming the array variables', () => {
    // --array=1,2,7: three tasks, ids 1 to 7, no step Slurm can tell
    const list = refusal({ SLURM_ARRAY_TASK_ID: '7', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '7' })
    expect(list.message).toContain('SLURM_ARRAY_TASK_ID=7, SLURM_ARRAY_TASK_COUNT=3, SLURM_ARRAY_TASK_MIN=1, SLURM_ARRAY_TASK_MAX=7')
    expect(list.message).toContain('S3X_PARTITION_INDEX')
    // gaps without a step: not guessed (0,1,2,6 would give id 2 the share of position 1)
    refusal({ SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '6' })
    refusal({ SLURM_ARRAY_TASK_ID: '30', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '30' })
    // an id below the minimum, or off the step
    refusal({ SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '4' })
    refusal({
      SLURM_ARRAY_TASK_ID: '15',
      SLURM_ARRAY_TASK_COUNT: '4',
      SLURM_ARRAY_TASK_MIN: '0',
      SLURM_ARRAY_TASK_MAX: '30',
      SLURM_ARRAY_TASK_STEP: '10',
    })
    // a step that does not fit min, max and count
    refusal({
      SLURM_ARRAY_TASK_ID: '0',
      SLURM_ARRAY_TASK_COUNT: '4',
      SLURM_ARRAY_TASK_MIN: '0',
      SLURM_ARRAY_TASK_MAX: '30',
      SLURM_ARRAY_TASK_STEP: '7',
    })
    // ids from 0 by default: an id past the count is out of range
    expect(refusal({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '3' }).message).toContain('the index must be below the count')
  })

  it('two engines that disagree: ConfigurationError naming both, and the way out', () => {
    const error = refusal({ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '4', RANK: '3', WORLD_SIZE: '8' })
    expect(error.message).toBe(
      'the environment gives two partitions: SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=4 (slurm) and RANK=3, WORLD_SIZE=8 (torchrun); ' +
        'set S3X_PARTITION_INDEX and S3X_PARTITION_COUNT to say which share this worker reads',
    )
  })
})
