/**
 * A socket error as Go's net package words it, which is what users know from dockerd
 * ("dial tcp: lookup reg.example: no such host", "dial tcp 127.0.0.1:5000: connect:
 * connection refused"); other errors keep Node's message.
 */
export function netErrorText(e: unknown, url: URL): string {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  const host = err.hostname ?? url.hostname.replace(/^\[|\]$/g, '');
  const address = err.address !== undefined ? ` ${err.address.includes(':') ? `[${err.address}]` : err.address}${err.port !== undefined ? ':' + err.port : ''}` : '';
  switch (err.code) {
    case 'ENOTFOUND':
      return `dial tcp: lookup ${host}: no such host`;
    case 'EAI_AGAIN':
      return `dial tcp: lookup ${host}: temporary failure in name resolution`;
    case 'ECONNREFUSED':
      return `dial tcp${address}: connect: connection refused`;
    case 'EHOSTUNREACH':
      return `dial tcp${address}: connect: no route to host`;
    case 'ENETUNREACH':
      return `dial tcp${address}: connect: network is unreachable`;
    case 'ETIMEDOUT':
      return `dial tcp${address}: i/o timeout`;
    case 'ECONNRESET':
      return 'read: connection reset by peer';
    default:
      return err instanceof Error ? err.message : String(e);
  }
}
