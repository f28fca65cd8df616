import { ConveyorError } from '../core/errors.ts';

/**
 * nsqd's name rule (`internal/protocol/names.go` IsValidTopicName / IsValidChannelName): 1 to 64
 * characters of `[.a-zA-Z0-9_-]`, optionally followed by `#ephemeral` (which counts toward the 64).
 */
const VALID_NAME = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;
const EPHEMERAL = '#ephemeral';

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && name.length >= 1 && name.length <= 64 && VALID_NAME.test(name);
}

export function isEphemeralName(name: string): boolean {
  return name.endsWith(EPHEMERAL);
}

/** Throws ERR_BAD_NAME unless `name` is a valid topic or channel name. */
export function assertValidName(kind: 'topic' | 'channel', name: unknown): asserts name is string {
  if (!isValidName(name)) {
    throw new ConveyorError(
      'ERR_BAD_NAME',
      `invalid ${kind} name ${JSON.stringify(name)}: 1-64 characters of [.a-zA-Z0-9_-], optionally ending in #ephemeral`,
      { details: { [kind]: name } },
    );
  }
}
