// Which instruction made each layer. tsbuild records the Dockerfile line of every history entry
// at build time (src/image/provenance.ts); images from elsewhere (imported, loaded, pulled) only
// have the history's created_by, which is shown as is.
import type { ImageConfig } from '../image/config.js';
import type { Provenance } from '../image/provenance.js';

export type InstructionKind = 'RUN' | 'COPY' | 'ADD' | 'WORKDIR' | 'other';

export interface LayerOrigin {
  /** The instruction as written in the Dockerfile, or the history's created_by. */
  readonly text: string;
  readonly instruction: InstructionKind;
  /** Dockerfile and line, when tsbuild built the image and recorded them. */
  readonly file?: string;
  readonly line?: number;
  /** Index of the history entry that made the layer, when the history names one. */
  readonly history?: number;
  /** The layer came with the base image (FROM), not from this Dockerfile's own steps. */
  readonly base: boolean;
}

/**
 * One origin per layer, bottom first. Each history entry without `empty_layer` made the next
 * layer, as `docker history` pairs them. Without provenance, the bottom layer counts as the base
 * image and the rest as the user's (dive's rule, for want of better knowledge).
 */
export function layerOrigins(config: ImageConfig, layerCount: number, provenance: Provenance | undefined): LayerOrigin[] {
  const steps = new Map((provenance?.steps ?? []).map((s) => [s.history, s]));
  const out: LayerOrigin[] = [];
  let layer = 0;
  config.history.forEach((h, i) => {
    if (h.empty_layer || layer >= layerCount) return;
    const step = steps.get(i);
    const base = provenance ? step === undefined : layer === 0;
    if (step) {
      out.push({ text: step.text, instruction: instructionOf(step.text), file: step.file, line: step.line, history: i, base });
    } else {
      const text = h.created_by || (h.comment ? `(${h.comment})` : '(missing)');
      out.push({ text, instruction: instructionOf(h.created_by ?? ''), history: i, base });
    }
    layer++;
  });
  while (out.length < layerCount) {
    // A history shorter than the layer list (allowed: history is optional metadata).
    out.push({ text: '(missing)', instruction: 'other', base: provenance ? true : out.length === 0 });
  }
  return out;
}

/**
 * The instruction behind a Dockerfile line or a created_by: BuildKit writes `RUN /bin/sh -c ...`
 * and `COPY src dst # buildkit`; the classic builder `/bin/sh -c #(nop) COPY file:... in /dst`
 * for COPY/ADD and `/bin/sh -c <command>` for RUN.
 */
export function instructionOf(text: string): InstructionKind {
  const t = text.trim();
  const word = /^(RUN|COPY|ADD|WORKDIR)\b/i.exec(t)?.[1]?.toUpperCase();
  if (word) return word as InstructionKind;
  const nop = /#\(nop\)\s+(COPY|ADD|WORKDIR)\b/.exec(t)?.[1];
  if (nop) return nop as InstructionKind;
  if (/#\(nop\)/.test(t)) return 'other';
  if (/^(\|\d+ .*)?\/bin\/(ba)?sh -c /.test(t)) return 'RUN';
  return 'other';
}

/** `Dockerfile:3 COPY big.bin /tmp/` or, without a line, `layer 2 (RUN /bin/sh -c ...)`. */
export function describeOrigin(o: LayerOrigin, index: number, maxText = 60): string {
  const flat = o.text.replace(/\s*\n\s*/g, ' ');
  const text = flat.length > maxText ? `${flat.slice(0, maxText - 1)}…` : flat;
  return o.file !== undefined && o.line !== undefined ? `${o.file}:${o.line} \`${text}\`` : `layer ${index} (\`${text}\`)`;
}
