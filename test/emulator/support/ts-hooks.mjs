// Node module hooks that run the emulator's TypeScript sources in a child process (tests only):
// `./x.js` imports resolve to `./x.ts` when only the .ts exists, and .ts files are transpiled
// with the project's own TypeScript (types are not checked here; tsc does that).
// Two forms of the same hooks: synchronous ones for module.registerHooks (Node 22.15+, where
// module.register is deprecated) and asynchronous ones for module.register (older lines).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

function tsCandidate(specifier, context) {
  const relative = specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:');
  if (!relative || !specifier.endsWith('.js') || !context.parentURL) return undefined;
  const candidate = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
  return existsSync(fileURLToPath(candidate)) ? { url: candidate.href, shortCircuit: true } : undefined;
}

function transpiled(url) {
  const fileName = fileURLToPath(url);
  const { outputText } = ts.transpileModule(readFileSync(fileName, 'utf8'), {
    fileName,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}

export function resolveSync(specifier, context, nextResolve) {
  try {
    return nextResolve(specifier, context);
  } catch (error) {
    const candidate = tsCandidate(specifier, context);
    if (candidate) return candidate;
    throw error;
  }
}

export function loadSync(url, context, nextLoad) {
  return url.endsWith('.ts') ? transpiled(url) : nextLoad(url, context);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const candidate = tsCandidate(specifier, context);
    if (candidate) return candidate;
    throw error;
  }
}

export async function load(url, context, nextLoad) {
  return url.endsWith('.ts') ? transpiled(url) : nextLoad(url, context);
}
