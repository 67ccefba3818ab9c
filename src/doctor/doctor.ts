/**
 * `roam6 doctor`: can this host run roam6? Each check reports ok, missing or warn, and how to fix
 * it. Kernel features are read from the kernel config when it is available (/proc/config.gz,
 * /boot/config-<release>) and, as root, *probed* in a throwaway network namespace: a seg6 route,
 * a seg6local route, a source-specific route, an ipproto rule, a bridge, a TAP, a veth pair and
 * an nftables table. Nothing outside that namespace is changed. docs/deployment.md lists the same
 * features.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type CheckStatus = 'ok' | 'missing' | 'warn' | 'skipped';

export interface DoctorCheck {
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** How to fix it (missing/warn). */
  readonly fix?: string;
  /** Only some roles need it (e.g. `lab`, `qemu`, `ha`). */
  readonly role?: string;
}

export interface DoctorReport {
  readonly kernel: string;
  readonly root: boolean;
  readonly configSource: string | null;
  readonly checks: readonly DoctorCheck[];
}

/** `CONFIG_X=y|m|"…"` lines → map; `# CONFIG_X is not set` → 'n'. */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_[A-Z0-9_]+)=(.*)$/.exec(line);
    if (set) out.set(set[1]!, set[2]!);
    const unset = /^# (CONFIG_[A-Z0-9_]+) is not set/.exec(line);
    if (unset) out.set(unset[1]!, 'n');
  }
  return out;
}

/** What roam6 needs from the kernel, and why. */
export const KERNEL_FEATURES: readonly { option: string; title: string; why: string; role?: string; probe?: string }[] = [
  { option: 'CONFIG_IPV6', title: 'IPv6', why: 'everything' },
  { option: 'CONFIG_LWTUNNEL', title: 'lightweight tunnels', why: 'seg6 routes are lwtunnel encaps' },
  { option: 'CONFIG_IPV6_SEG6_LWTUNNEL', title: 'seg6 encap and seg6local', why: 'the kernel data plane: IPv6-in-IPv6 by `encap seg6 mode encap.red`, decap by `seg6local End.DT6/End.DX6`', probe: 'seg6' },
  { option: 'CONFIG_IPV6_SUBTREES', title: 'source-specific routes', why: 'a host sends each guest\'s traffic (`default from <MNP>`) into its tunnel', probe: 'subtrees' },
  { option: 'CONFIG_IPV6_MULTIPLE_TABLES', title: 'policy routing (ip -6 rule)', why: 'roam6\'s tables 6100–6102 and the ipproto rule for decapsulation', probe: 'rules' },
  { option: 'CONFIG_BRIDGE', title: 'bridges', why: 'each guest\'s link is a bridge', probe: 'bridge' },
  { option: 'CONFIG_TUN', title: 'TUN/TAP', why: 'QEMU guests\' TAPs; the userspace data plane\'s TUN', probe: 'tun' },
  { option: 'CONFIG_NF_TABLES', title: 'nftables', why: 'the HA drops the ICMPv6 redirects it would send into the tunnel', probe: 'nft' },
  { option: 'CONFIG_VETH', title: 'veth pairs', why: '`roam6 lab` and the netns driver', role: 'lab', probe: 'veth' },
  { option: 'CONFIG_NET_NS', title: 'network namespaces', why: '`roam6 lab`, and this doctor\'s probes', role: 'lab' },
];

const FIX: Record<string, string> = {
  CONFIG_IPV6: 'a kernel with IPv6 (every distribution kernel has it)',
  CONFIG_LWTUNNEL: 'rebuild with CONFIG_LWTUNNEL=y (Debian, Ubuntu, Fedora kernels have it)',
  CONFIG_IPV6_SEG6_LWTUNNEL: 'rebuild with CONFIG_IPV6_SEG6_LWTUNNEL=y (Debian/Ubuntu/Fedora kernels have it), or run the userspace data plane (dataplane.backend)',
  CONFIG_IPV6_SUBTREES: 'rebuild with CONFIG_IPV6_SUBTREES=y (Debian/Ubuntu kernels have it)',
  CONFIG_IPV6_MULTIPLE_TABLES: 'rebuild with CONFIG_IPV6_MULTIPLE_TABLES=y',
  CONFIG_BRIDGE: 'modprobe bridge, or rebuild with CONFIG_BRIDGE',
  CONFIG_TUN: 'modprobe tun, or rebuild with CONFIG_TUN',
  CONFIG_NF_TABLES: 'modprobe nf_tables, or rebuild with CONFIG_NF_TABLES; apt-get install nftables',
  CONFIG_VETH: 'modprobe veth (only the lab needs it)',
  CONFIG_NET_NS: 'rebuild with CONFIG_NET_NS=y (only the lab and the probes need it)',
};

export function readKernelConfig(): { source: string; config: Map<string, string> } | null {
  const candidates = ['/proc/config.gz', `/boot/config-${release()}`];
  for (const path of candidates) {
    try {
      const raw = readFileSync(path);
      return { source: path, config: parseKernelConfig((path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')) };
    } catch {
      /* next */
    }
  }
  return null;
}

interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

const run = (cmd: string, args: string[], input?: string): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input !== undefined ? { input } : {}), timeout: 10_000 });

function errText(e: unknown): string {
  const x = e as { stderr?: string; message?: string };
  const lines = (x.stderr || x.message || String(e)).trim().split('\n').map((l) => l.trim());
  return lines.find((l) => /error|not supported|denied|no such|invalid|unknown/i.test(l)) ?? lines[0] ?? 'failed';
}

/** Probe kernel features in a throwaway namespace (root). Only 2001:db8::/32 addresses, only inside it. */
export function probeKernel(nsName = `r6doctor${process.pid}`): Record<string, ProbeResult> {
  const out: Record<string, ProbeResult> = {};
  try {
    run('ip', ['netns', 'add', nsName]);
  } catch (e) {
    const r = { ok: false, detail: `cannot create a network namespace: ${errText(e)}` };
    for (const k of ['netns', 'seg6', 'seg6local', 'subtrees', 'rules', 'bridge', 'tun', 'veth', 'nft']) out[k] = r;
    return out;
  }
  out.netns = { ok: true, detail: 'created a throwaway namespace' };
  const ip = (...args: string[]) => run('ip', ['-n', nsName, ...args]);
  const probe = (key: string, what: string, fn: () => void) => {
    try {
      fn();
      out[key] = { ok: true, detail: `probe: ${what}` };
    } catch (e) {
      out[key] = { ok: false, detail: `probe failed: ${what}: ${errText(e)}` };
    }
  };
  try {
    ip('link', 'set', 'lo', 'up');
    ip('-6', 'addr', 'add', '2001:db8:ffff::1/64', 'dev', 'lo', 'nodad');
    probe('seg6', 'ip -6 route add … encap seg6 mode encap.red segs …', () =>
      ip('-6', 'route', 'add', '2001:db8:fffe::/64', 'encap', 'seg6', 'mode', 'encap.red', 'segs', '2001:db8:ffff::2', 'dev', 'lo'));
    probe('seg6local', 'ip -6 route add … encap seg6local action End.DT6 table 254', () =>
      ip('-6', 'route', 'add', '2001:db8:fffd::1/128', 'encap', 'seg6local', 'action', 'End.DT6', 'table', '254', 'dev', 'lo', 'table', '100'));
    probe('subtrees', 'ip -6 route add … from <prefix> (source-specific)', () =>
      ip('-6', 'route', 'add', '2001:db8:fffc::/64', 'from', '2001:db8:fffb::/64', 'dev', 'lo'));
    probe('rules', 'ip -6 rule add … ipproto ipv6 lookup 100', () =>
      ip('-6', 'rule', 'add', 'pref', '10', 'to', '2001:db8:ffff::1/128', 'ipproto', 'ipv6', 'lookup', '100'));
    probe('bridge', 'ip link add … type bridge', () => ip('link', 'add', 'r6dbr', 'type', 'bridge'));
    probe('tun', 'ip tuntap add mode tap', () => ip('tuntap', 'add', 'mode', 'tap', 'name', 'r6dtap'));
    probe('veth', 'ip link add … type veth', () => ip('link', 'add', 'r6dva', 'type', 'veth', 'peer', 'name', 'r6dvb'));
    probe('nft', 'nft add table inet r6doctor (in the namespace)', () =>
      run('ip', ['netns', 'exec', nsName, 'nft', '-f', '-'], 'table inet r6doctor {\n  chain out {\n    type filter hook output priority 0;\n    icmpv6 type nd-redirect counter drop\n  }\n}\n'));
  } finally {
    try {
      run('ip', ['netns', 'del', nsName]);
    } catch {
      /* gone */
    }
  }
  return out;
}

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return null;
}

/** Interfaces with a default route learnt from RAs and the accept_ra each has. */
function raDefaultRoutes(): { ifname: string; acceptRa: string }[] {
  try {
    const text = run('ip', ['-6', 'route', 'show', 'default', 'proto', 'ra']);
    const ifs = [...new Set([...text.matchAll(/ dev (\S+)/g)].map((m) => m[1]!))];
    return ifs.map((ifname) => {
      let acceptRa = '?';
      try {
        acceptRa = readFileSync(`/proc/sys/net/ipv6/conf/${ifname}/accept_ra`, 'utf8').trim();
      } catch {
        /* unknown */
      }
      return { ifname, acceptRa };
    });
  } catch {
    return [];
  }
}

function repoRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

export interface DoctorOptions {
  /** Probe in a throwaway namespace (default: when root). */
  readonly probe?: boolean;
  /** Also check what these need: `qemu`, `libvirt`, `xen`, `lab`. */
  readonly roles?: readonly string[];
}

export function runDoctor(opts: DoctorOptions = {}): DoctorReport {
  const root = process.getuid?.() === 0;
  const roles = new Set(opts.roles ?? []);
  const kc = readKernelConfig();
  const probes = (opts.probe ?? root) ? probeKernel() : null;
  const checks: DoctorCheck[] = [];

  for (const f of KERNEL_FEATURES) {
    const v = kc?.config.get(f.option);
    const configured = v === 'y' || v === 'm';
    const probe = f.probe ? probes?.[f.probe] : undefined;
    const extra = f.probe === 'seg6' ? probes?.seg6local : undefined;
    const parts: string[] = [];
    if (v !== undefined) parts.push(`${f.option}=${v}`);
    else if (kc) parts.push(`${f.option} absent from ${kc.source}`);
    if (probe) parts.push(probe.detail);
    if (extra) parts.push(extra.detail);
    let status: CheckStatus;
    if (probe || extra) status = probe?.ok !== false && extra?.ok !== false ? 'ok' : 'missing';
    else if (v !== undefined) status = configured ? 'ok' : 'missing';
    else status = f.option === 'CONFIG_NET_NS' && probes?.netns?.ok ? 'ok' : 'skipped';
    if (f.option === 'CONFIG_NET_NS' && probes?.netns) parts.push(probes.netns.ok ? 'probe: created a throwaway namespace' : probes.netns.detail);
    if (status === 'ok' && v === 'm') parts.push('(a module: make sure it loads at boot)');
    if (status === 'skipped') parts.push(root ? 'no kernel config and no probe' : 'no kernel config; run as root to probe');
    checks.push({
      id: f.option.toLowerCase(),
      title: `${f.title} — ${f.why}`,
      status,
      detail: parts.join('; '),
      ...(status !== 'ok' ? { fix: FIX[f.option] ?? `enable ${f.option}` } : {}),
      ...(f.role ? { role: f.role } : {}),
    });
  }

  const node = process.versions.node.split('.').map(Number);
  const nodeOk = (node[0] ?? 0) > 20 || ((node[0] ?? 0) === 20 && (node[1] ?? 0) >= 19);
  checks.push({ id: 'node', title: 'Node.js ≥ 20.19', status: nodeOk ? 'ok' : 'missing', detail: `node ${process.versions.node}`, ...(nodeOk ? {} : { fix: 'install Node 20.19 or newer' }) });

  const rootDir = repoRoot();
  const addon = rootDir && ['native/build/Release/roam6_native.node', 'native/build/Release/roam6.node'].map((p) => join(rootDir, p)).find((p) => existsSync(p));
  checks.push({
    id: 'native-addon',
    title: 'roam6 native addon (raw MH sockets, TUN)',
    status: addon ? 'ok' : 'missing',
    detail: addon ?? 'native/build/Release/*.node not found',
    ...(addon ? {} : { fix: 'npm ci (builds it with node-gyp against /usr/include/node; set npm_config_nodedir=/usr offline)' }),
  });

  for (const [cmd, pkg, role, why] of [
    ['ip', 'iproute2', undefined, 'the lab and this doctor'],
    ['nft', 'nftables', undefined, 'the HA\'s redirect filter (deploy/nftables)'],
    ['redis-server', 'redis-server', 'ha', 'Redis, unless REDIS_URL points elsewhere'],
    ['qemu-system-x86_64', 'qemu-system-x86', 'qemu', 'the qemu driver'],
    ['virsh', 'libvirt-clients', 'libvirt', 'the libvirt driver'],
    ['xl', 'xen-utils', 'xen', 'the xen driver'],
  ] as const) {
    if (role && !roles.has(role) && role !== 'ha') continue;
    const p = which(cmd);
    const status: CheckStatus = p ? 'ok' : role === 'ha' && !roles.has('ha') ? 'warn' : 'missing';
    checks.push({ id: `tool-${cmd}`, title: `${cmd} — ${why}`, status, detail: p ?? 'not on PATH', ...(p ? {} : { fix: `apt-get install ${pkg}` }), ...(role ? { role } : {}) });
  }
  if (roles.has('qemu')) {
    const dev = existsSync('/dev/kvm');
    const cpu = (() => {
      try {
        return /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
      } catch {
        return false;
      }
    })();
    const kvm = dev && cpu;
    checks.push({
      id: 'kvm',
      title: 'KVM — hardware virtualisation for QEMU guests',
      status: kvm ? 'ok' : 'warn',
      detail: kvm
        ? '/dev/kvm present, CPU has vmx/svm'
        : `${dev ? '/dev/kvm present but the CPU shows no vmx/svm (nested virtualisation off)' : 'no /dev/kvm'}: guests run under TCG (slow, but migrations work; accel "tcg")`,
      ...(kvm ? {} : { fix: 'enable VT-x/AMD-V (nested virtualisation in a VM) and load kvm_intel/kvm_amd; set accel "kvm"' }),
      role: 'qemu',
    });
  }

  const fwd = (() => {
    try {
      return readFileSync('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').trim();
    } catch {
      return '?';
    }
  })();
  const ra = raDefaultRoutes().filter((r) => r.acceptRa !== '2');
  checks.push({
    id: 'accept-ra',
    title: 'accept_ra on RA uplinks — RA-configured uplinks keep their default route when forwarding is on',
    status: ra.length ? 'warn' : 'ok',
    detail: ra.length
      ? `default route learnt from RAs on ${ra.map((r) => `${r.ifname} (accept_ra=${r.acceptRa})`).join(', ')}; forwarding=${fwd}: writing all.forwarding=1 deletes it`
      : `no RA-learnt default route at risk (all.forwarding=${fwd})`,
    ...(ra.length ? { fix: `sysctl -w ${ra.map((r) => `net.ipv6.conf.${r.ifname}.accept_ra=2`).join(' ')} before the agent starts (deploy/sysctl/90-roam6.conf)` } : {}),
  });

  return { kernel: release(), root, configSource: kc?.source ?? null, checks };
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok', missing: 'MISSING', warn: 'warn', skipped: 'skipped' };

/** The report as text: one line per check, the fix under anything not ok, a summary. PURE. */
export function formatDoctorReport(r: DoctorReport): string {
  const width = Math.min(48, Math.max(...r.checks.map((c) => c.title.split(' — ')[0]!.length)));
  const lines = [`roam6 doctor: kernel ${r.kernel}${r.root ? '' : ' (not root: kernel features not probed)'}; kernel config: ${r.configSource ?? 'not available'}`, ''];
  for (const c of r.checks) {
    const [name, why] = c.title.split(' — ');
    lines.push(`  ${LABEL[c.status].padEnd(8)} ${name!.padEnd(width)}  ${c.detail}`);
    if (why) lines.push(`  ${''.padEnd(8)} ${''.padEnd(width)}  needed for: ${why}${c.role ? ` [${c.role}]` : ''}`);
    if (c.fix && c.status !== 'ok') lines.push(`  ${''.padEnd(8)} ${''.padEnd(width)}  fix: ${c.fix}`);
  }
  const n = (s: CheckStatus) => r.checks.filter((c) => c.status === s).length;
  lines.push('', `${n('ok')} ok, ${n('missing')} missing, ${n('warn')} warning(s), ${n('skipped')} skipped`);
  return `${lines.join('\n')}\n`;
}

/** Exit status: 1 when anything required is missing. */
export function doctorExitCode(r: DoctorReport): number {
  return r.checks.some((c) => c.status === 'missing') ? 1 : 0;
}
