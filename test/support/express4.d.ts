// The Express 4 copy installed for the compatibility suites, typed as Express.
declare module 'express4' {
  import express from 'express';
  export default express;
}
