/**
 * `express-api-tokens/testing`: the contract suite every `TokenStore` passes, for people who
 * write their own store. Needs vitest (an optional peer dependency of this entry only).
 */
export {
  type ContractOptions,
  expectStoreError,
  makeRecord,
  runTokenStoreContract,
  type StoreHarness,
} from './token-store-contract.js';
