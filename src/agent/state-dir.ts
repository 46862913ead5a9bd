/**
 * The agent's state directory: its identity (agent id and token) and its
 * outbox of unacknowledged reports. The directory is private to the agent
 * (mode 0700) and every file in it is written atomically with mode 0600.
 *
 * The identity is never deleted by the agent: an unreadable or damaged
 * identity file stops the agent with an error instead of being replaced, so
 * that an operator can look at it.
 */
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './atomic-file.ts';
import { ClientError } from './errors.ts';

/** What the agent keeps between runs to hold its place at the server. */
export interface AgentIdentity {
  readonly agentId: string;
  readonly token: string;
  /** ISO-8601. */
  readonly tokenExpiresAt: string;
  /** The server origin the identity belongs to. */
  readonly server: string;
  /** ISO-8601; when this agent id was last issued by enrollment. */
  readonly enrolledAt: string;
}

const identityFileSchema = z.object({
  version: z.literal(1),
  agent_id: z.string().min(1),
  token: z.string().min(1),
  token_expires_at: z.string().min(1),
  server: z.string(),
  enrolled_at: z.string(),
});

export const identityFileName = 'identity.json';
export const outboxDirectoryName = 'outbox';

/** Creates the state directory if needed and makes it private (0700). */
export async function prepareStateDirectory(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
    const info = await stat(path);
    if (!info.isDirectory()) {
      throw new ClientError('state_unusable', { message: `${path} is not a directory` });
    }
    if ((info.mode & 0o077) !== 0) await chmod(path, 0o700);
  } catch (error) {
    if (error instanceof ClientError) throw error;
    throw new ClientError('state_unusable', {
      message: `cannot prepare the state directory ${path}: ${describe(error)}`,
      cause: error,
    });
  }
}

/** Reads and checks the agent identity; `undefined` when the agent never enrolled. */
export async function loadIdentity(stateDirectory: string): Promise<AgentIdentity | undefined> {
  const path = join(stateDirectory, identityFileName);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ClientError('state_unusable', {
      message: `cannot read ${path}: ${describe(error)}`,
      cause: error,
    });
  }

  let parsed: z.infer<typeof identityFileSchema>;
  try {
    parsed = identityFileSchema.parse(JSON.parse(text));
  } catch (error) {
    throw new ClientError('state_unusable', {
      message: `${path} is damaged; move it away to enroll again`,
      cause: error,
    });
  }
  return {
    agentId: parsed.agent_id,
    token: parsed.token,
    tokenExpiresAt: parsed.token_expires_at,
    server: parsed.server,
    enrolledAt: parsed.enrolled_at,
  };
}

/** Writes the agent identity atomically, readable by the owner alone. */
export async function saveIdentity(stateDirectory: string, identity: AgentIdentity): Promise<void> {
  const body = {
    version: 1,
    agent_id: identity.agentId,
    token: identity.token,
    token_expires_at: identity.tokenExpiresAt,
    server: identity.server,
    enrolled_at: identity.enrolledAt,
  };
  await writeFileAtomic(join(stateDirectory, identityFileName), JSON.stringify(body) + '\n', 0o600);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
