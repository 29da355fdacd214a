// `node --import <this file>` installs ts-hooks.mjs (tests only; see there): in-thread through
// module.registerHooks where Node has it, else through module.register (deprecated on Node 26).
import module from 'node:module';
import { loadSync, resolveSync } from './ts-hooks.mjs';

if (typeof module.registerHooks === 'function') module.registerHooks({ resolve: resolveSync, load: loadSync });
else module.register('./ts-hooks.mjs', import.meta.url);
