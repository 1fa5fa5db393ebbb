// `build --progress rawjson`: the build as one JSON object per line, for programs (CI logs,
// editors) to follow, as buildx's rawjson; the schema is in docs/commands/build.md. A command's
// output comes as `log` events, one per line with its newline, so that the data of a step's
// events put together is its output exactly. Characters a terminal would act on are written as
// JSON escapes (forTerminal): the stream stays valid JSON when it is shown on a terminal.
import { StringDecoder } from 'node:string_decoder';
import type { Digest } from '../src/digest.js';
import type { BuildEnd, ProgressView, StepStart } from './progress.js';
import { forTerminal } from './terminal.js';

type Stream = 'stdout' | 'stderr';

export class JsonView implements ProgressView {
  private step: number | undefined;
  /** Per stream of the running step: its decoder and its line not yet ended. */
  private streams = new Map<Stream, { decoder: StringDecoder; partial: string }>();

  constructor(private readonly to: NodeJS.WritableStream) {}

  private emit(event: Record<string, unknown>): void {
    this.to.write(forTerminal(`${JSON.stringify(event)}\n`));
  }

  start(s: StepStart): void {
    this.step = s.index;
    this.streams.clear();
    this.emit({
      type: 'step-start',
      step: s.index,
      total: s.total,
      stage: s.stage,
      instruction: s.text,
      file: s.file,
      line: s.line,
      time: new Date(s.startedAt).toISOString(),
    });
  }

  cached(): void {}

  layer(diffId: Digest, size: number): void {
    this.emit({ type: 'layer', step: this.step, diffId, size });
  }

  note(text: string): void {
    this.emit({ type: 'status', step: this.step, message: text });
  }

  output(stream: Stream, chunk: Buffer): void {
    let s = this.streams.get(stream);
    if (!s) this.streams.set(stream, (s = { decoder: new StringDecoder('utf8'), partial: '' }));
    const lines = (s.partial + s.decoder.write(chunk)).split(/(?<=\n)/);
    s.partial = lines.at(-1)!.endsWith('\n') ? '' : lines.pop()!;
    for (const data of lines) this.emit({ type: 'log', step: this.step, stream, data });
  }

  /** The running step's last lines that did not end with a newline. */
  private flush(): void {
    for (const [stream, s] of this.streams) {
      const data = s.partial + s.decoder.end();
      if (data) this.emit({ type: 'log', step: this.step, stream, data });
    }
    this.streams.clear();
  }

  end(s: StepStart, durationMs: number, cached: boolean): void {
    this.flush();
    this.emit({ type: 'step-end', step: s.index, durationMs, cached });
  }

  warning(message: string): void {
    this.emit({ type: 'warning', message });
  }

  close(end: BuildEnd): void {
    this.flush();
    if (end.error) this.emit({ type: 'error', ...(end.error.step ? { step: end.error.step.index } : {}), message: end.error.message });
    this.emit({
      type: 'build-end',
      durationMs: end.durationMs,
      steps: end.steps,
      cached: end.cached,
      ...(end.imageId ? { imageId: end.imageId } : {}),
    });
  }
}
