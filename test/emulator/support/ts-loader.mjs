// `node --import <this file>` registers ts-hooks.mjs (tests only; see there).
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
