/** The exit code for configuration errors (sysexits EX_CONFIG); service units key on it. */
export const EX_CONFIG = 78;

/** One problem in a config file, located by its key path (e.g. `accounts[0].wsUrl`). */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** A config that could not be found, read, parsed or validated. Carries every problem found. */
export class ConfigError extends Error {
  readonly file: string | null;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string | null, problems: ConfigProblem[]) {
    super(formatProblems(file, problems));
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

function formatProblems(file: string | null, problems: ConfigProblem[]): string {
  const where = file ? `config error in ${file}` : 'config error';
  if (problems.length === 1 && problems[0]!.path === '') return `${where}: ${problems[0]!.message}`;
  const lines = problems.map((p) => `  ${p.path === '' ? '(top level)' : p.path}: ${p.message}`);
  return `${where}:\n${lines.join('\n')}`;
}
