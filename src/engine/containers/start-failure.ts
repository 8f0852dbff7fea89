/**
 * A failed start as dockerd's translateContainerdStartErr reads the runtime's message: the exit
 * code it gives the container, whether the fault is the container's config (a 400, not a 500),
 * and its hint for a file mounted on a directory or the other way round. `daemonsOwn`: a failure
 * dockerd reports before asking the runtime, without the runtime's prefix.
 */
export function startFailure(message: string): { exitCode: number; invalidConfig: boolean; message: string; daemonsOwn?: boolean } {
  // A working directory that is a file: dockerd finds it before the runtime (SetupWorkingDirectory),
  // in its own words, with no runtime's prefix; 128, as any start error of dockerd's own.
  const cwd = /^chdir to cwd \("(.*)"\) set in config\.json failed: not a directory$/.exec(message);
  if (cwd) return { exitCode: 128, invalidConfig: true, message: `Cannot mkdir: ${cwd[1]} is not a directory`, daemonsOwn: true };
  const lower = message.toLowerCase();
  if (lower.includes('not a directory')) {
    return { exitCode: 127, invalidConfig: true, message: `${message}: Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type` };
  }
  if (lower.includes('permission denied')) return { exitCode: 126, invalidConfig: true, message };
  if (lower.includes('executable file not found') || lower.includes('no such file or directory')) return { exitCode: 127, invalidConfig: true, message };
  if (/not found/.test(lower)) return { exitCode: 127, invalidConfig: false, message };
  return { exitCode: 128, invalidConfig: false, message };
}
