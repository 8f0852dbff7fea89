/** Talks to a command server (src/common/command-server.ts) as its native clients do. */
import net from 'node:net';

/** Sends one request of these fields (each gets its NUL) and resolves with all the server answered. */
export function rawRequest(socketPath: string, fields: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const conn = net.connect(socketPath);
    let text = '';
    conn.on('data', (d) => (text += d));
    conn.on('end', () => resolve(text));
    conn.on('error', reject);
    const payload = Buffer.from(fields.map((f) => f + '\0').join(''));
    conn.write(`request ${payload.length}\n`);
    conn.write(payload);
  });
}
