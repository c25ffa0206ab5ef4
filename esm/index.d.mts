export * from '../dist/index.js';
import * as spartan from '../dist/index.js';
export default spartan;
