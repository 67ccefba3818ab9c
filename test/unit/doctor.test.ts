/** `roam6 doctor`: the kernel config parser and the report's format (pure). */
import { describe, expect, it } from 'vitest';
import { doctorExitCode, formatDoctorReport, parseKernelConfig, type DoctorReport } from '../../src/doctor/doctor.js';

describe('roam6 doctor', () => {
  it('parses a kernel config: set, module, not set', () => {
    const c = parseKernelConfig(['CONFIG_IPV6=y', 'CONFIG_TUN=m', '# CONFIG_IPV6_TUNNEL is not set', 'CONFIG_LOCALVERSION="-fc"', ''].join('\n'));
    expect(c.get('CONFIG_IPV6')).toBe('y');
    expect(c.get('CONFIG_TUN')).toBe('m');
    expect(c.get('CONFIG_IPV6_TUNNEL')).toBe('n');
    expect(c.get('CONFIG_LOCALVERSION')).toBe('"-fc"');
    expect(c.has('CONFIG_BRIDGE')).toBe(false);
  });

  const report: DoctorReport = {
    kernel: '6.1.0-56-amd64',
    root: true,
    configSource: '/proc/config.gz',
    checks: [
      { id: 'config_ipv6_seg6_lwtunnel', title: 'seg6 encap and seg6local — the kernel data plane', status: 'ok', detail: 'CONFIG_IPV6_SEG6_LWTUNNEL=y; probe: ip -6 route add … encap seg6' },
      { id: 'config_ipv6_subtrees', title: 'source-specific routes — default from <MNP>', status: 'missing', detail: '# CONFIG_IPV6_SUBTREES=n', fix: 'rebuild with CONFIG_IPV6_SUBTREES=y' },
      { id: 'accept-ra', title: 'accept_ra on RA uplinks — keep the default route', status: 'warn', detail: 'eth0 (accept_ra=1)', fix: 'sysctl -w net.ipv6.conf.eth0.accept_ra=2' },
      { id: 'tool-xl', title: 'xl — the xen driver', status: 'skipped', detail: 'not asked', role: 'xen' },
    ],
  };

  it('prints one line per check, what needs it, the fix for anything not ok, and a summary', () => {
    expect(formatDoctorReport(report)).toBe(
      [
        'roam6 doctor: kernel 6.1.0-56-amd64; kernel config: /proc/config.gz',
        '',
        '  ok       seg6 encap and seg6local  CONFIG_IPV6_SEG6_LWTUNNEL=y; probe: ip -6 route add … encap seg6',
        '                                     needed for: the kernel data plane',
        '  MISSING  source-specific routes    # CONFIG_IPV6_SUBTREES=n',
        '                                     needed for: default from <MNP>',
        '                                     fix: rebuild with CONFIG_IPV6_SUBTREES=y',
        '  warn     accept_ra on RA uplinks   eth0 (accept_ra=1)',
        '                                     needed for: keep the default route',
        '                                     fix: sysctl -w net.ipv6.conf.eth0.accept_ra=2',
        '  skipped  xl                        not asked',
        '                                     needed for: the xen driver [xen]',
        '',
        '1 ok, 1 missing, 1 warning(s), 1 skipped',
        '',
      ].join('\n'),
    );
  });

  it('exits 1 only when something is missing', () => {
    expect(doctorExitCode(report)).toBe(1);
    expect(doctorExitCode({ ...report, checks: report.checks.filter((c) => c.status !== 'missing') })).toBe(0);
  });

  it('says when it could not probe', () => {
    expect(formatDoctorReport({ ...report, root: false, configSource: null }).split('\n')[0]).toBe(
      'roam6 doctor: kernel 6.1.0-56-amd64 (not root: kernel features not probed); kernel config: not available',
    );
  });
});
