/** Text that arrives in chunks (a pipe, a socket), handed on one complete line at a time. */
export function splitLines(onLine: (line: string) => void): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!; // what follows the last newline: the start of a line to come
    for (const line of lines) onLine(line);
  };
}
