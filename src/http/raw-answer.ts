/**
 * Answers written straight to a socket, for the few requests that never get
 * a response object: a malformed request the HTTP parser gave up on, and a
 * refused socket upgrade. They carry the same security headers as the rest.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { CitadelError } from '../errors/catalogue.ts';

/** An HTTP/1.1 answer with a JSON body, closing the connection. */
export function rawAnswer(
  status: number,
  headers: Readonly<Record<string, string>>,
  body: object,
): string {
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    'Connection: close',
    `Content-Length: ${Buffer.byteLength(text)}`,
  ];
  return `${lines.join('\r\n')}\r\n\r\n${text}`;
}

/**
 * A `clientError` listener: a request the parser refused is answered 400
 * `invalid_request` with the security headers. A reset or timed-out
 * connection gets no answer, as there is no one left to read it.
 */
export function answerMalformedRequest(
  headers: Readonly<Record<string, string>>,
): (error: NodeJS.ErrnoException, socket: Duplex) => void {
  return (error, socket) => {
    const silent = error.code === 'ECONNRESET' || error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (silent || !socket.writable) {
      socket.destroy();
      return;
    }
    const refusal = new CitadelError('invalid_request', {
      message: 'The request could not be parsed as HTTP/1.1.',
    });
    socket.end(rawAnswer(refusal.status, headers, refusal.toBody()));
  };
}
