/**
 * NSQ's name rules (nsqd `internal/protocol/names.go`): 1 to 64 characters of `[.a-zA-Z0-9_-]`,
 * optionally ending in `#ephemeral`. Checked here, before the engine is touched, so that a bad
 * name is the protocol's E_BAD_TOPIC / E_BAD_CHANNEL (or HTTP INVALID_TOPIC), as nsqd answers.
 */
const VALID = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= 64 && VALID.test(name);
}
