/** The user-space program's entry point: `node runtime/user/entry.js` speaks the runtime protocol on stdio. */
import { main } from './main.js';

main();
