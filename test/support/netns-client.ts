/**
 * Run inside a test's network namespace: makes one plain HTTP request given
 * as a JSON argument and prints the response as JSON.
 */
import { type PlainRequest, plainRequest } from './raw-http.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as PlainRequest;
const response = await plainRequest(options);
process.stdout.write(JSON.stringify(response));
