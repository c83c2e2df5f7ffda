/**
 * Permissions a Bitbucket HTTP access token can carry.
 * @example
 * const write: BitbucketPermission[] = ['REPO_WRITE', 'PROJECT_READ'];
 * bitbucketAccessTokens({
 *   baseUrl,
 *   encryptionKeys: [{ id: 'k1', key: process.env.TOKEN_ENCRYPTION_KEY! }],
 *   permissions: { write },
 * });
 */
export type BitbucketPermission =
  | 'REPO_READ'
  | 'REPO_WRITE'
  | 'REPO_ADMIN'
  | 'PROJECT_READ'
  | 'PROJECT_WRITE'
  | 'PROJECT_ADMIN';

export const BITBUCKET_PERMISSIONS: readonly BitbucketPermission[] = [
  'REPO_READ',
  'REPO_WRITE',
  'REPO_ADMIN',
  'PROJECT_READ',
  'PROJECT_WRITE',
  'PROJECT_ADMIN',
];
