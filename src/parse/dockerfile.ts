// The parser's entry point: Dockerfile text → BuildPlan. Nothing is expanded and nothing touches
// the filesystem; every mistake Docker would report before building is reported here, as a
// DockerfileError naming the first line of the instruction.
import { DockerfileError, type SourceLocation } from '../errors.js';
import { syntaxDirective } from './directives.js';
import { parseInstruction } from './instructions.js';
import { readDockerfile } from './lines.js';
import type { ArgStep, BuildPlan, FromClause, PlanWarning, Stage, Step } from './plan.js';

interface OpenStage {
  readonly name?: string;
  readonly from: FromClause;
  readonly steps: Step[];
}

export function parseDockerfile(text: string, file = 'Dockerfile'): BuildPlan {
  const start = { file, line: 1 };
  if (text.length === 0) throw new DockerfileError(start, 'the Dockerfile cannot be empty');
  const source = readDockerfile(text, file);
  if (source.lines.length === 0) throw new DockerfileError(start, 'file with no instructions');

  const globalArgs: ArgStep[] = [];
  const stages: OpenStage[] = [];
  for (const line of source.lines) {
    const instruction = parseInstruction(line, source.escapeChar);
    if (instruction.kind === 'FROM') {
      const { name, from } = instruction;
      if (name !== undefined && stages.some((stage) => stage.name === name)) {
        throw new DockerfileError(line.loc, `Duplicate stage name ${JSON.stringify(name)}, stage names should be unique`);
      }
      stages.push({ from, steps: [], ...(name === undefined ? {} : { name }) });
      continue;
    }
    const current = stages[stages.length - 1];
    if (current !== undefined) {
      current.steps.push(instruction.step);
    } else if (instruction.step.kind === 'ARG') {
      // ARGs before the first FROM are global: visible to FROM lines, re-declarable in stages.
      globalArgs.push(instruction.step);
    } else {
      throw new DockerfileError(line.loc, 'no build stage in current context');
    }
  }
  if (stages.length === 0) throw new DockerfileError(start, 'dockerfile contains no stages to build');

  // `# check=` configures BuildKit's linter, which tsbuild does not have: accepted, unused.
  const warnings: PlanWarning[] = [];
  let syntax: string | undefined;
  for (const directive of source.directives) {
    if (directive.name !== 'syntax') continue;
    const { ref, warning } = syntaxDirective(directive);
    syntax = ref;
    if (warning !== undefined) warnings.push(warning);
  }

  return {
    file,
    globalArgs,
    stages: stages.map((stage, index): Stage => ({ index, ...stage })),
    escapeChar: source.escapeChar,
    ...(syntax === undefined ? {} : { syntax }),
    ...(warnings.length === 0 ? {} : { warnings }),
  };
}

/**
 * A base image's ONBUILD trigger (the text its config records, as `ONBUILD` took it) as the
 * steps it runs, each located at the FROM line that ran it (the trigger's own text has no line
 * in this Dockerfile). A trigger that does not parse is an error at that line.
 */
export function parseTrigger(trigger: string, from: SourceLocation): Step[] {
  let steps: readonly Step[];
  try {
    // On its own, with the default escape character, as BuildKit parses a trigger.
    steps = parseDockerfile(`FROM scratch\n${trigger}\n`, from.file).stages[0]!.steps;
  } catch (err) {
    const detail = err instanceof DockerfileError ? err.detail : (err as Error).message;
    throw new DockerfileError(from, `invalid ONBUILD trigger "${trigger}" in the base image: ${detail}`);
  }
  return steps.map((step) => ({ ...step, loc: from }));
}
