// Ctrl-C and SIGTERM abort the running operation, which unmounts and removes what it made, and
// then the process exits with 128+signal as shells expect.
const CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export function abortOnSignals(): { signal: AbortSignal; exitCode(): number | undefined; dispose(): void } {
  const controller = new AbortController();
  let received: string | undefined;
  const handlers = Object.keys(CODES).map((sig) => {
    const h = () => {
      received ??= sig;
      controller.abort(new Error(`interrupted by ${sig}`));
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return {
    signal: controller.signal,
    exitCode: () => (received ? CODES[received] : undefined),
    dispose: () => handlers.forEach(([sig, h]) => process.off(sig, h)),
  };
}
