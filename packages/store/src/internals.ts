/**
 * `s3exchange/internals`: the few building blocks of `@s3exchange/core/internals` that `s3x`
 * (`@s3exchange/cli`) uses and that the public surface leaves out: reading a tar stream member by
 * member, parsing an internal manifest, ETags without quotes (none for an empty one), typed S3 errors. May change between
 * minor versions.
 *
 * @example
 * ```ts
 * import { getObjectBody } from 's3exchange'
 * import { readTarMembers } from 's3exchange/internals'
 *
 * for await (const member of readTarMembers(await getObjectBody(ctx, key), { archiveKey: key })) console.log(member.name)
 * ```
 */
export {
  answeredEtag,
  checkOption,
  describeRule,
  isRegularFile,
  mapS3Error,
  OPTION_RULES,
  parseInternalManifest,
  readTarMembers,
  type TarMember,
  unquoteEtag,
} from '@s3exchange/core/internals'
