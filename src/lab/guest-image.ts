/**
 * The lab's QEMU guest image: deploy/guest-image/build.sh run on this machine from Debian
 * packages (the installed kernel, busybox-static, gcc). The script skips the build when its
 * inputs have not changed, so calling this before every lab is cheap.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface GuestImage {
  readonly kernel: string;
  readonly initrd: string;
  readonly kernelVersion: string;
  readonly key: string;
}

export const DEFAULT_GUEST_IMAGE_DIR = process.env.ROAM6_GUEST_IMAGE_DIR ?? '/var/tmp/roam6-guest-image';

export function guestImageScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the roam6 checkout above the lab module');
    dir = up;
  }
  return join(dir, 'deploy', 'guest-image', 'build.sh');
}

/** Build (or reuse) the guest image in `dir`; throws with the script's message when it cannot. */
export function ensureGuestImage(dir = DEFAULT_GUEST_IMAGE_DIR): GuestImage {
  try {
    execFileSync('bash', [guestImageScript(), dir], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`building the QEMU guest image failed: ${(err.stderr ?? err.message).trim()}`);
  }
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as GuestImage;
}
