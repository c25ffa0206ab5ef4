// ESM entry: the same module instance as require('spartan-sparsity'), so classes
// such as SpartanError are shared between import and require.
import cjs from '../dist/index.js';
export * from '../dist/index.js';
export default cjs;
